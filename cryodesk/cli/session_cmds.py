"""``cryodesk session ...``: live sessions (create, start/pause/complete, export, compact, restore).

``start`` and ``restore`` run the session in the foreground on this
machine's engine (the local lane) until it is paused or completed (from any
process), the restore ends, or Ctrl-C — the session then stays *running* and
the next ``start`` (or the app) resumes it where it stopped.  ``--no-wait``
only changes the status (a running app picks the session up).
``restore --lane NAME`` (or a session whose lane is a SLURM lane) submits
the restore as one cluster job (:mod:`cryodesk.core.sessions.lane_run`) and
follows it; ``kill`` cancels it there.
"""

from __future__ import annotations

import sys

from ..core import sessions
from ..core.uids import parse_assignment
from ..core.units import human_bytes
from . import output


def _project(args, writes: bool = True):
    from ..core.projects import get_project

    p = get_project(args.project)
    if writes:
        output.recover(p)
    return p


def _assignments(pairs) -> dict:
    return dict(parse_assignment(s) for s in pairs or [])


def _summary_line(d: dict) -> str:
    c = d["stage_counts"]
    busy = sum(c[k] for k in sessions.TODO_STAGES)
    rate = f", {d['throughput_per_min']:g}/min" if d["throughput_per_min"] else ""
    return (f"{d['project']} {d['uid']}  {d['status']}  {d['exposures_total']} exposures: {c['ready']} ready, "
            f"{busy} in progress, {c['failed']} failed, {c['compacted']} compacted; {d['accepted']} accepted "
            f"({d['particles_accepted']} particles){rate}; {human_bytes(d['size_bytes'])}")


def _emit(args, p, s, text: str | None = None) -> None:
    d = sessions.describe(p, s, with_exposures=False)
    if args.json:
        output.emit_json(d)
    else:
        print(text or _summary_line(d))


def _create(args):
    p = _project(args)
    s = sessions.create(p, args.movies, args.title or "", _assignments(args.param), lane=args.lane)
    _emit(args, p, s, f"created {p.uid} {s.uid} watching {s.params['movies']} (paused; "
                      f"start it with: cryodesk session start {p.uid} {s.uid})")


def _list(args):
    p = _project(args, writes=False)
    descs = [sessions.describe(p, s, with_exposures=False) for s in sessions.list_sessions(p)]
    if args.json:
        output.emit_json(descs)
        return
    output.table([[d["uid"], d["status"], str(d["exposures_total"]), str(d["stage_counts"]["ready"]),
                   str(d["accepted"]), str(d["particles_accepted"]), human_bytes(d["size_bytes"]), d["title"]]
                  for d in descs], ["uid", "status", "exposures", "ready", "accepted", "particles", "size", "title"])


def _show(args):
    p = _project(args, writes=False)
    d = sessions.describe(p, args.session)
    if args.json:
        output.emit_json(d)
        return
    print(_summary_line(d))
    print(f"  movies: {d['params']['movies']}  lane: {d['lane']}  directory: {d['directory']}")
    t = {k: v for k, v in d["params"]["thresholds"].items() if v is not None}
    print(f"  thresholds: {', '.join(f'{k}={v:g}' for k, v in t.items()) or 'none'}")
    if d["error"]:
        print(f"  error: {d['error']}")
    if d["lane_run"]:
        r = d["lane_run"]
        print(f"  restore on lane {r['lane']}: {r['state']} (cluster job {r.get('cluster_job_id') or '-'})"
              + (f": {r['message']}" if r.get("message") else ""))
    output.table([[e["uid"], e["stage"], "-" if e["defocus_A"] is None else f"{e['defocus_A']:.0f}",
                   "-" if e["ctf_fit"] is None else f"{e['ctf_fit']:.3f}",
                   "-" if e["n_particles"] is None else str(e["n_particles"]), e["judgement"],
                   (e["error"] or e["movie"])[:90]] for e in d["exposures"]],
                 ["exposure", "stage", "defocus_A", "ctf_fit", "particles", "status", "movie / error"])


def _run(args, p, s) -> int:
    from ..engine.live import run_session

    def progress():
        if not args.json and sys.stderr.isatty():
            d = sessions.describe(p, s, with_exposures=False)
            sys.stderr.write("\r\x1b[K" + _summary_line(d)[:200])
            sys.stderr.flush()

    why, errors = run_session(p, s, idle_exit_s=args.exit_when_idle, on_change=progress)
    if not args.json and sys.stderr.isatty():
        sys.stderr.write("\r\x1b[K")
    for e in errors:
        print(f"cryodesk: {e}", file=sys.stderr)
    s = sessions.get_session(p, s.uid)
    if why == "interrupted":
        print(f"cryodesk: {p.uid} {s.uid} interrupted; it is still {s.status} and resumes at the next "
              f"start/restore", file=sys.stderr)
    _emit(args, p, s)
    return 130 if why == "interrupted" else (1 if s.status == "restoration_failed" or errors else 0)


def _start(args):
    p = _project(args)
    s = sessions.transition(p, args.session, "start")
    if args.no_wait:
        _emit(args, p, s)
        return 0
    return _run(args, p, s)


def _simple(args):
    p = _project(args)
    s = sessions.transition(p, args.session, args.action)
    _emit(args, p, s)


def _set(args):
    p = _project(args)
    s = sessions.set_params(p, args.session, _assignments(args.param))
    _emit(args, p, s, f"{p.uid} {s.uid}: parameters set")


def _judge(args):
    p = _project(args)
    status = {"accept": "accept", "reject": "reject", "unjudge": None}[args.action]
    n = sessions.set_manual(p, args.session, args.exposures, status)
    _emit(args, p, sessions.get_session(p, args.session), f"{n} exposure(s) marked {args.action}")


def _picks(args):
    p = _project(args)
    picks = []
    for text in args.pick:
        x, sep, y = text.partition(",")
        if not sep:
            from ..base.errors import UsageError

            raise UsageError(f"a pick is X,Y in micrograph pixels, got {text!r}")
        picks.append((x, y))
    e = sessions.set_manual_picks(p, args.session, args.exposure, picks)
    _emit(args, p, sessions.get_session(p, args.session),
          f"{e.uid}: {len(e.manual_picks)} manual pick(s); stage {e.stage}")


def _reset_failed(args):
    p = _project(args)
    n = sessions.reset_failed(p, args.session)
    _emit(args, p, sessions.get_session(p, args.session), f"{n} failed exposure(s) reset")


def _export(args):
    from ..core.jobs import create_job
    from ..core.runner import run_job

    p = _project(args)
    s = sessions.get_session(p, args.session)
    sessions.refuse_if_compacted(p, s, "export particles")
    job = create_job(p, "session_export", args.workspace, (), {"session": s.uid, "which": args.which},
                     args.title or f"particles of {s.uid}")
    job = run_job(p, job)
    if args.json:
        output.emit_json({"job": job.uid, "status": job.status, "error": job.error, "session": s.uid})
    elif job.status == "completed":
        print(f"{p.uid} {job.uid}: exported the {args.which} particles of {s.uid} "
              f"(restack them before compacting {s.uid}: cryodesk job create {p.uid} restack_particles -i particles={job.uid})")
    if job.status != "completed":
        print(f"cryodesk: {p.uid} {job.uid}: {job.error}", file=sys.stderr)
        return 1
    return 0


def _compact(args):
    p = _project(args)
    if args.dry_run:
        plan = sessions.compaction_plan(p, args.session)
        if args.json:
            output.emit_json(plan.to_dict())
        else:
            d = plan.to_dict()
            print(f"compacting {p.uid} {plan.session} would free {human_bytes(plan.bytes)}:")
            for kind, size in d["bytes_by_kind"].items():
                print(f"  {kind}: {human_bytes(size)} in {d['files_by_kind'][kind]} file(s)")
            print(f"  kept: {', '.join(d['keeps'])}")
        for w in plan.warnings:
            print(f"warning: {w}", file=sys.stderr)
        return 0
    result = sessions.compact(p, args.session)
    for w in result["plan"]["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    if args.json:
        output.emit_json(result)
    else:
        print(f"{p.uid} {result['plan']['session']}: compacted, freed {human_bytes(result['freed_bytes'])}")
    return 0


def _restore(args):
    p = _project(args)
    s = sessions.get_session(p, args.session)
    lane = sessions.lane_run.session_lane(args.lane or s.lane)
    s = sessions.lane_run.restore(p, s, args.lane)
    if lane is not None:
        if not args.json:
            print(f"{p.uid} {s.uid}: {s.lane_run['message']}", file=sys.stderr)
        return _emit(args, p, s) if args.no_wait else _follow_lane(args, p, s)
    if args.no_wait:
        _emit(args, p, s)
        return 0
    return _run(args, p, s)


def _follow_lane(args, p, s) -> int:
    """Follow a restore on a SLURM lane (lane sync) until it ends; Ctrl-C leaves it running there."""
    import time

    from .lane_cmds import sync_all

    shown = None
    try:
        while True:
            report = sync_all(s.lane_run["lane"])
            for e in report.errors:
                print(f"lane: {e}", file=sys.stderr)
            s = sessions.get_session(p, s.uid)
            run = s.lane_run or {}
            if run.get("state") != shown and not args.json:
                print(f"{p.uid} {s.uid}: lane restore {run.get('state')}: {run.get('message', '')}", file=sys.stderr)
                shown = run.get("state")
            if not sessions.lane_run.is_active(s):
                break
            time.sleep(1.0)
    except KeyboardInterrupt:
        print(f"\ncryodesk: stopped following; the restore goes on on lane {run.get('lane')!r} "
              f"(cryodesk session kill {p.uid} {s.uid} stops it)", file=sys.stderr)
        raise
    _emit(args, p, s)
    return 0 if run.get("state") == "completed" else 1


def _kill(args):
    p = _project(args)
    outcome = sessions.lane_run.kill(p, args.session)
    _emit(args, p, sessions.get_session(p, args.session), f"{p.uid} {args.session}: restore kill {outcome}")


def _set_lane(args):
    p = _project(args)
    s = sessions.set_lane(p, args.session, args.lane)
    _emit(args, p, s, f"{p.uid} {s.uid}: its restores run on lane {s.lane!r}")


def add_parser(cli) -> None:
    sub = cli.group("session", "live sessions: stream, export, compact and restore exposures")

    def cmd(name, func, help, session=True):
        c = sub.add_parser(name, help=help)
        c.add_argument("project")
        if session:
            c.add_argument("session")
        c.add_argument("--json", action="store_true", help="machine-readable output")
        c.set_defaults(func=func)
        return c

    c = cmd("create", _create, "create a live session watching a glob of movies (paused)", session=False)
    c.add_argument("--movies", required=True, metavar="GLOB", help="e.g. '/data/run1/*.mrc' (quote it)")
    c.add_argument("--title")
    c.add_argument("--lane", default="local", help="where its restores run: local (default) or a SLURM lane; "
                   "the live stream itself runs where 'session start' runs")
    c.add_argument("--param", "-p", action="append", default=[], metavar="KEY=VALUE",
                   help="e.g. pick.diameter_A=80, extract.box_size_px=64, runner.max_parallel=2")
    cmd("list", _list, "list the project's sessions", session=False)
    cmd("show", _show, "show a session and its exposures")
    for name, func, help in (("start", _start, "start (or resume) the session and run it here"),
                             ("restore", _restore, "restore a compacted session (resumable) and run it here")):
        c = cmd(name, func, help)
        c.add_argument("--no-wait", action="store_true", help="only set the status; do not run it here")
        c.add_argument("--exit-when-idle", type=float, metavar="SECONDS",
                       help="stop once nothing was left to do and no movie arrived for SECONDS")
        if name == "restore":
            c.add_argument("--lane", metavar="NAME", help="restore on this lane: local (here) or a SLURM lane, "
                           "one cluster job (default: the session's lane)")
    cmd("kill", _kill, "kill the session's restore on a SLURM lane (scancel); restore again continues it")
    c = cmd("set-lane", _set_lane, "where the session's restores run: local or a SLURM lane")
    c.add_argument("lane")
    cmd("pause", _simple, "pause the session (in-flight exposures finish their stage)")
    cmd("complete", _simple, "mark the session completed (it can then be compacted)")
    c = cmd("set", _set, "change parameters or thresholds (thresholds.ctf_fit_min=0.1, ...)")
    c.add_argument("param", nargs="+", metavar="KEY=VALUE")
    for name in ("accept", "reject", "unjudge"):
        c = cmd(name, _judge, f"{name} exposures by hand" if name != "unjudge" else "hand exposures back to the "
                "thresholds")
        c.add_argument("exposures", nargs="+", metavar="E<n>")
    c = cmd("picks", _picks, "set an exposure's manual picks (it is re-extracted)")
    c.add_argument("exposure", metavar="E<n>")
    c.add_argument("pick", nargs="*", metavar="X,Y")
    cmd("reset-failed", _reset_failed, "retry the failed exposures from the stage they failed in")
    c = cmd("export", _export, "export accepted particles as the outputs of a new job")
    c.add_argument("--which", choices=("accepted", "all"), default="accepted")
    c.add_argument("--workspace", "-w")
    c.add_argument("--title")
    c = cmd("compact", _compact, "remove micrographs, thumbnails, spectra and particle stacks (completed only)")
    c.add_argument("--dry-run", action="store_true", help="show the plan (bytes per kind), change nothing")
