"""``cryodesk job run|queue|kill`` and ``cryodesk worker run``: the job engine, headless.

``job run`` drives the scheduler of the GUI's :class:`~cryodesk.engine.Engine`
headless (:class:`~cryodesk.engine.headless.HeadlessEngine`: thread pools, no
Qt loaded): jobs named together start in dependency order,
a progress bar goes to stderr, Ctrl-C cancels (jobs end *killed*), and the
exit status is 0 only when every job completed.

``job queue`` only marks jobs *queued* (owned by nobody); ``worker run``
claims such jobs from the database and runs them.  ``job kill`` works across
processes: a queued job is killed at once, a running one gets a kill request
that its engine picks up at its next poll (about a second).
"""

from __future__ import annotations

import sys
import time

from ..base.errors import Refused
from ..core import lifecycle
from ..core.jobs import describe_jobs, get_jobs, refresh
from ..core.projects import get_project
from ..core.units import human_bytes
from ..db import ACTIVE_STATUSES
from . import output

_SIGNAL_EXIT = {2: 130, 15: 143}  # SIGINT, SIGTERM: the shell's 128 + n


def _project(uid):
    p = get_project(uid)
    output.recover(p)  # finish what a process that died left: a deletion, "running" jobs, temp files
    return p


def _make_engine(args):
    # the scheduler of the GUI's engine, without Qt: a job run starts in a fraction of the time
    from ..engine.headless import HeadlessEngine, TerminalProgress

    engine = HeadlessEngine(cpu_threads=getattr(args, "cpu_threads", None), poll_interval_ms=500)
    for job in engine.start():
        print(f"{job.project.uid} {job.uid}: marked killed ({job.error})", file=sys.stderr)
    return engine, TerminalProgress(engine, sys.stderr)


def _cancelling(signum):
    print("\ncryodesk: cancelling running jobs (they end killed)...", file=sys.stderr, flush=True)


def _abandon(engine, signum) -> None:
    """Jobs that did not stop when cancelled (blocked where a cancel cannot reach): record them killed, exit.

    The process ends at once (``os._exit``): a pool thread blocked in a system call would
    otherwise keep it alive, and the user asked twice (or waited) for it to stop.
    """
    import os

    from ..core import lifecycle
    from ..core.jobs import get_job

    for project_uid, job_uid in engine.jobs()["running"]:
        try:
            job = get_job(project_uid, job_uid)
            lifecycle.mark_interrupted(job, "killed", f"killed: it did not stop when cancelled (signal {signum}); "
                                       "cryodesk ended without waiting for it")
            print(f"{project_uid} {job_uid}: killed (it did not stop when cancelled)", flush=True)
        except Exception as exc:  # noqa: BLE001 - the process ends either way; say what was not recorded
            print(f"cryodesk: could not record {project_uid} {job_uid} as killed: {exc}", file=sys.stderr)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_code(False, signum))


def _report(jobs: list, as_json: bool, refused=()) -> bool:
    """Print each job's final state; True if every job completed and none was refused.

    A job deleted while it ran (its row gone) is said so, and is not a success.
    """
    fresh = refresh(jobs)
    gone = [j for j in jobs if j.id not in {f.id for f in fresh}]
    for job in gone:
        print(f"{job.project.uid} {job.uid}: it was deleted while it ran; its result was not recorded",
              file=sys.stderr)
    if gone:
        refused = [*refused, *((j.uid, "deleted while it ran") for j in gone)]
    jobs = fresh
    if as_json:
        descs = []
        for pid in dict.fromkeys(j.project_id for j in jobs):  # a worker may run several projects
            group = [j for j in jobs if j.project_id == pid]
            descs += describe_jobs(group[0].project, group)
        output.emit_json({"jobs": [{k: d[k] for k in ("uid", "project", "type", "status", "error", "size_bytes",
                                                      "outputs")} for d in descs],
                          "refused": [{"uid": u, "message": m} for u, m in refused]})
    else:
        for job in jobs:
            took = ""
            if job.started_at and job.completed_at:
                took = f" in {(job.completed_at - job.started_at).total_seconds():.1f} s"
            size = f", {human_bytes(job.size_bytes)}" if job.status == "completed" else ""
            print(f"{job.project.uid} {job.uid}: {job.status}{took}{size}")
    for job in jobs:
        if job.status != "completed" and job.error:
            print(f"{job.project.uid} {job.uid}: {job.error}", file=sys.stderr)
    return not refused and all(j.status == "completed" for j in jobs)


def _exit_code(ok: bool, signum) -> int:
    if signum:
        return _SIGNAL_EXIT.get(int(signum), 1)
    return 0 if ok else 1


def _send(args, wait: bool):
    """``job queue|run --lane NAME``: send the jobs to a lane (and with ``wait`` follow them to their end)."""
    from ..core import lanes

    p = _project(args.project)
    result = lanes.send(p, args.jobs, args.lane, lanes.parse_vars(getattr(args, "var", None)))
    for _, message in result.refused:
        print(f"refused: {message}", file=sys.stderr)
    ids = {j: c for _, j, c in result.submitted}
    if not args.json:
        for job in result.queued:
            where = f"submitted as {ids[job.uid]}" if job.uid in ids else "queued (waiting for its inputs)"
            print(f"{job.uid}: {where} on lane {result.lane}", file=sys.stderr if wait else sys.stdout)
    if wait and result.queued:
        from .lane_cmds import follow

        if lanes.get_lane(args.lane).type == "slurm":
            follow(args.lane, result.queued)
        else:
            while any(j.status in ACTIVE_STATUSES for j in refresh(result.queued)):
                time.sleep(1.0)
        return _exit_code(_report(result.queued, args.json, result.refused), None)
    if args.json:
        output.emit_json({"queued": [j.uid for j in result.queued], "lane": result.lane,
                          "submitted": [{"uid": j, "cluster_job_id": c} for _, j, c in result.submitted],
                          "refused": [{"uid": u, "message": m} for u, m in result.refused]})
    return 0 if not result.refused else 1


def _run(args):
    from ..engine.headless import run_until_idle

    if args.lane:
        return _send(args, wait=True)
    p = _project(args.project)
    get_jobs(p, args.jobs)  # unknown uids: a clear error before anything starts
    engine, progress = _make_engine(args)
    signum = None
    try:
        plan = engine.queue(p, args.jobs)
        for _, message in plan.refused:
            print(f"refused: {message}", file=sys.stderr)
        if plan.jobs:
            signum = run_until_idle(engine, on_interrupt=_cancelling, on_force=lambda s: _abandon(engine, s))
    finally:
        engine.shutdown()
        progress.close()
    ok = _report(plan.jobs, args.json, plan.refused)
    return _exit_code(ok, signum)


def _queue(args):
    if args.lane:
        return _send(args, wait=False)
    p = _project(args.project)
    plan = lifecycle.plan_queue(p, get_jobs(p, args.jobs))
    queued = lifecycle.mark_queued(plan.jobs)
    taken = {j.id for j in queued}  # (another process may have queued or started some since they were planned)
    plan.refused += [(j.uid, f"{j.uid}: it is already {j.status} (another process took it)")
                     for j in refresh([j for j in plan.jobs if j.id not in taken])]
    for _, message in plan.refused:
        print(f"refused: {message}", file=sys.stderr)
    if args.json:
        output.emit_json({"queued": [j.uid for j in queued],
                          "refused": [{"uid": u, "message": m} for u, m in plan.refused]})
    elif queued:
        print(f"queued {' '.join(j.uid for j in queued)}; a 'cryodesk worker run' process runs them")
    return 0 if not plan.refused else 1


def _kill(args):
    from ..core import lanes

    p = _project(args.project)
    jobs = get_jobs(p, args.jobs)
    failed = False
    outcomes: dict[str, dict] = {}
    for job in jobs:
        try:
            outcome = lanes.kill(p, job)  # a SLURM lane's job: its cancel command (scancel) too
        except Refused as exc:
            outcomes[job.uid] = {"outcome": "refused", "message": str(exc)}
            if not args.json:
                print(f"refused: {exc}", file=sys.stderr)
            failed = True
            continue
        message = "killed" if outcome == "killed" else \
            "kill requested; its engine stops it at its next cancellation point"
        outcomes[job.uid] = {"outcome": outcome, "message": message}
        if not args.json:
            print(f"{job.uid}: {message}")
    if args.wait:
        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline and any(j.status in ACTIVE_STATUSES for j in refresh(jobs)):
            time.sleep(0.2)
        for job in refresh(jobs):
            if not args.json:
                print(f"{job.uid}: {job.status}")
            failed |= job.status in ACTIVE_STATUSES and outcomes[job.uid]["outcome"] != "refused"
    if args.json:
        output.emit_json({"jobs": [{"uid": j.uid, "status": j.status, "error": j.error, **outcomes[j.uid]}
                                   for j in refresh(jobs)], "waited": bool(args.wait)})
    return 1 if failed else 0


def _worker(args):
    from ..engine.headless import run_until_idle

    project = _project(args.project) if args.project else None
    engine, progress = _make_engine(args)
    taken: list = []

    def adopt():
        new = engine.adopt_queued(project, args.lane)
        if new:
            print(f"worker: took {' '.join(f'{j.project.uid} {j.uid}' for j in new)}", file=sys.stderr)
        taken.extend(new)

    signum = None
    try:
        adopt()
        if args.once:
            if taken:
                signum = run_until_idle(engine, on_interrupt=_cancelling)
            else:
                print("worker: no queued jobs", file=sys.stderr)
        else:
            print("worker: waiting for queued jobs (Ctrl-C to stop)", file=sys.stderr, flush=True)
            signum = run_until_idle(engine, stop_when_idle=False, tick=adopt, tick_ms=int(args.poll * 1000),
                                    on_interrupt=_cancelling)
    finally:
        engine.shutdown()
        progress.close()
    ok = _report(taken, args.json) if taken else True
    if not args.once and signum and all(j.status == "completed" for j in refresh(taken)):
        return 0  # a worker is normally stopped by a signal: clean if nothing was cut short
    return _exit_code(ok, signum)


def add_parser(cli) -> None:
    jsub = cli.group("job")
    c = jsub.add_parser("run", help="run jobs now (dependency order, progress on stderr)")
    c.add_argument("project")
    c.add_argument("jobs", nargs="+")
    c.add_argument("--cpu-threads", type=int, metavar="N", help="CPU pool size (default: cores - 1)")
    c.add_argument("--lane", metavar="NAME", help="run them on this lane and wait for them (cryodesk lane list)")
    c.add_argument("--var", action="append", metavar="NAME=VALUE", help="with --lane: a script variable")
    c.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    c.set_defaults(func=_run, quick_exit=True)  # (cli.main.entry: no interpreter teardown after the jobs)
    c = jsub.add_parser("queue", help="queue jobs for a 'cryodesk worker run' process, or on a lane")
    c.add_argument("project")
    c.add_argument("jobs", nargs="+")
    c.add_argument("--lane", metavar="NAME", help="send them to this lane (a SLURM lane submits them)")
    c.add_argument("--var", action="append", metavar="NAME=VALUE",
                   help="with --lane: a custom variable of the submission script, for these jobs (repeatable)")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=_queue)
    c = jsub.add_parser("kill", help="kill queued or running jobs (also those run by another process)")
    c.add_argument("project")
    c.add_argument("jobs", nargs="+")
    c.add_argument("--wait", type=float, default=0, metavar="SECONDS", help="wait until they have stopped")
    c.add_argument("--json", action="store_true", help="machine-readable outcome per job on stdout")
    c.set_defaults(func=_kill)

    wsub = cli.group("worker", help="run queued jobs in this process")
    c = wsub.add_parser("run", help="run queued jobs from the database (until Ctrl-C, or --once)")
    c.add_argument("--once", action="store_true", help="run the jobs queued now, then exit")
    c.add_argument("--project", metavar="P", help="only jobs of this project")
    c.add_argument("--lane", metavar="NAME", help="run the jobs sent to this worker lane (default: those sent to none)")
    c.add_argument("--poll", type=float, default=2.0, metavar="SECONDS", help="how often to look for new jobs")
    c.add_argument("--cpu-threads", type=int, metavar="N", help="CPU pool size (default: cores - 1)")
    c.add_argument("--json", action="store_true", help="machine-readable result on stdout")
    c.set_defaults(func=_worker)
