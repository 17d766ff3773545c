"""Entry point of the frozen app (/opt/cryodesk/cryodesk): runtime setup, then the CLI."""

import sys

# Installed under root-owned /opt: never try to write .pyc next to the shipped sources.
sys.dont_write_bytecode = True

from cryodesk._runtime import configure  # noqa: E402  (must run before numba loads)

configure()

from cryodesk.cli.main import entry  # noqa: E402

if __name__ == "__main__":
    entry()
