"""One side of a race (tests/core/test_races.py): a process that runs one service per line it reads.

``python race_child.py DB_URL ROLE WINDOW_MS [unguarded]``; then, per race, a
line ``{"job": "J5", "delay_ms": 3.2, ...}`` on stdin, and one JSON line back
on stdout: ``{"ok": bool, "message": str, "t_done": monotonic, ...}``.

The window between a service's check and its write is widened with a test
hook (``cryodesk.base.hooks``), never a sleep in product code.  ``unguarded``
replaces the write guard by a plain transaction (what cryodesk did before),
so the test can show that it detects the race the guard prevents.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _unguard():
    from cryodesk.core import guard
    from cryodesk.db.models import db

    @contextlib.contextmanager
    def plain(project, job_ids=()):
        with db.atomic():  # deferred: no write lock until the first write, no row locks
            yield

    from importlib import import_module

    guard.project_write = plain
    for mod in ("cryodesk.core.finals", "cryodesk.core.jobs", "cryodesk.core.actions",
                "cryodesk.core.deletion.execute", "cryodesk.core.runner"):
        module = import_module(mod)
        if hasattr(module, "project_write"):
            module.project_write = plain


def main(argv: list[str]) -> int:
    url, role, window_ms = argv[0], argv[1], float(argv[2])
    import jobtypes

    from cryodesk import db as dbmod
    from cryodesk.base import hooks
    from cryodesk.core import actions, finals, jobs
    from cryodesk.core.cleanup import CleanupOptions, execute_cleanup, plan_cleanup
    from cryodesk.core.deletion import trash
    from cryodesk.core.projects import get_project
    from cryodesk.db.models import Job

    jobtypes.family("t")
    trash.SYNC = True
    if len(argv) > 3 and argv[3] == "unguarded":
        _unguard()
    window = window_ms / 1000.0
    state: dict = {}

    def widen(**info):
        state["t_write"] = time.monotonic()
        time.sleep(window)
        state["t_write"] = time.monotonic()

    if role in ("clear", "delete", "cleanup"):
        hooks.register("deletion.rechecked", lambda refused, **i: None if refused else widen())
    elif role == "set_param":
        hooks.register("jobs.set_params.checked", widen)
    elif role == "final":
        hooks.register("finals.checked", lambda **i: time.sleep(window / 4))

    dbmod.open_database(url)
    with dbmod.db.connection_context():
        project = get_project("P1")
        print(json.dumps({"ready": True}), flush=True)
        prepared = {}
        for line in sys.stdin:
            req = json.loads(line)
            if req.get("prepare"):  # plan ahead: the race is about executing a plan made earlier
                plan = plan_cleanup(project, CleanupOptions(non_final="clear"))
                plan.entries = [e for e in plan.entries if e.uid == req["job"]]
                prepared[req["job"]] = plan
                print(json.dumps({"prepared": len(plan.entries)}), flush=True)
                continue
            time.sleep(req.get("delay_ms", 0) / 1000.0)
            state.clear()
            t_start = time.monotonic()
            try:
                # (inside the try: the other side may have deleted it already — that is an outcome too)
                job = Job.get((Job.project == project) & (Job.number == int(req["job"][1:])))
                if role == "clear":
                    r = actions.clear_jobs(project, [job])
                    out = {"ok": r.ok, "message": "; ".join(o.message for o in r.outcomes)}
                elif role == "delete":
                    r = actions.delete_jobs(project, [job])
                    out = {"ok": r.ok, "message": "; ".join(o.message for o in r.outcomes)}
                elif role == "cleanup":
                    plan = prepared.pop(req["job"])
                    r = execute_cleanup(project, plan)
                    out = {"ok": bool(plan.entries) and r.ok, "message": json.dumps(r.outcomes)}
                elif role == "final":
                    r = finals.set_final(project, [job])
                    out = {"ok": r.ok, "message": "; ".join(o.message for o in r.outcomes)}
                elif role == "set_param":
                    jobs.set_params(project, job, {"nbytes": req["value"]})
                    out = {"ok": True, "message": ""}
                else:
                    raise SystemExit(f"unknown role {role}")
            except Exception as exc:  # a refusal is an outcome of the race, reported as such
                out = {"ok": False, "message": f"{type(exc).__name__}: {exc}"}
            out.update(t_start=t_start, t_done=time.monotonic(), t_write=state.get("t_write"))
            print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
