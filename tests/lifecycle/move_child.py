"""Child process of test_crash.py (lifecycle).

``move DB DEST N``: move project P1 to DEST and SIGKILL this process just before
its N-th file-system or database step (0 = never; prints the number of
steps).  ``delete DB N``: the same for ``project delete P1 --include-finals``.
``recover DB``: what the next command does first (finish or roll back an
interrupted move or delete; finish a half-done deletion journal).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

KILL_CALLS = ("rename", "replace", "unlink", "rmdir", "mkdir", "symlink", "link", "fsync", "write", "open")


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(Path(__file__).parents[1]))
    import jobtypes
    from killpoints import arm

    jobtypes.family("l")
    from cryodesk import db as dbmod
    from cryodesk.core.deletion import trash

    trash.SYNC = True
    mode, url = argv[0], argv[1]
    dbmod.open_database(url)
    with dbmod.db.connection_context():
        from cryodesk.core import deletion, project_lifecycle, project_move
        from cryodesk.core.projects import get_project, list_projects

        if mode == "recover":
            errors = project_lifecycle.recover_all()
            for p in list_projects():
                if Path(p.directory).is_dir():
                    deletion.recover(p)
            errors += project_lifecycle.recover_all()
            print(json.dumps({"errors": errors}))
            return 0
        project = get_project("P1")
        if mode == "move":
            counter = arm(int(argv[3]), KILL_CALLS)
            out = project_move.move_project(project, argv[2])
            print(json.dumps({"steps": counter[0], "mode": out["mode"]}))
        else:
            plan = project_lifecycle.plan_delete(project, include_finals=True)
            counter = arm(int(argv[2]), KILL_CALLS)
            out = project_lifecycle.execute_delete(project, plan)
            print(json.dumps({"steps": counter[0], "deleted": out["deleted"]}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
