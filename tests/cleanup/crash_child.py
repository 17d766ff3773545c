"""Child process of test_crash.py.

``run DB PLAN N``: execute the saved cleanup plan and SIGKILL this process
just before its N-th file-system or database step (0 = never; prints the
number of steps).  ``recover DB``: what the next command that writes does
(:func:`cryodesk.core.recovery.recover_project`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    from cryodesk import db as dbmod

    mode, db_path = argv[0], argv[1]
    from cryodesk.core.deletion import trash

    trash.SYNC = True  # empty the trash before exiting, as the background emptier would soon after
    dbmod.open_database(db_path)
    with dbmod.db.connection_context():
        from cryodesk.core.projects import get_project

        project = get_project("P1")
        if mode == "recover":  # what the next command does (temp files of the killed write too: no age wait)
            from cryodesk.core.recovery import recover_project

            rec = recover_project(project, min_age_s=0)
            results = rec.deletions
            print(json.dumps({"recovered": len(results), "ok": all(r.ok for r in results),
                              "temp_files": rec.temp_files}))
            return 0
        sys.path.insert(0, str(Path(__file__).parents[1]))
        import jobtypes
        from killpoints import arm

        # the same family as tests/cleanup/conftest.py registers
        jobtypes.family("c", preprocessing=tuple(jobtypes.SHORT), step_extra=77, iter_bytes=(100, 1),
                        iter_multiple=True)

        from cryodesk.core.cleanup import CleanupPlan, execute_cleanup

        plan = CleanupPlan.from_dict(json.loads(Path(argv[2]).read_text()))
        counter = arm(int(argv[3]), ("rename", "replace", "unlink", "rmdir", "fsync", "mkdir"))
        result = execute_cleanup(project, plan)
        print(json.dumps({"steps": counter[0], "ok": result.ok}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
