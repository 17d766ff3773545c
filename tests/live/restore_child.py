"""Child process of test_cli_and_crash.py: ``DB KILL_AT`` runs ``cryodesk session restore P1 S1`` and
SIGKILLs itself when the KILL_AT-th stage has written its files but before it is recorded."""

from __future__ import annotations

import os
import signal
import sys


def main(argv: list[str]) -> int:
    from cryodesk.base import hooks
    from cryodesk.cli.main import main as cli

    db, kill_at = argv[0], int(argv[1])
    count = [0]

    def stage_written(**info):
        count[0] += 1
        if count[0] == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    hooks.register("live.stage_written", stage_written)
    return cli(["--db", db, "session", "restore", "P1", "S1"])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
