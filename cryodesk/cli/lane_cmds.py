"""``cryodesk lane add|list|show|remove|status|sync`` and ``cryodesk worker run-job``.

A lane is where jobs run: ``local`` (this app), ``worker`` (``cryodesk worker run --lane NAME`` on
another host sharing the database) or ``slurm`` (a cluster).  ``cryodesk job queue P J --lane NAME``
sends jobs there, ``cryodesk job run P J --lane NAME`` also waits for them, and ``lane sync``
follows a SLURM lane's jobs (the GUI does so on its own while it runs).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from ..base.errors import UsageError
from ..core import lanes
from ..core.jobs import refresh
from ..core.sessions import lane_run
from ..db import ACTIVE_STATUSES
from . import output


def _lane_options(args) -> dict:
    opts = {}
    if args.script_file:
        try:
            opts["script"] = Path(args.script_file).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise UsageError(f"--script-file {args.script_file}: cannot read it ({exc})") from None
    for key in ("submit", "status", "cancel", "prefix", "num_cpu", "ram_gb", "cryodesk_cmd", "worker", "host"):
        if getattr(args, key, None) is not None:
            opts[key] = getattr(args, key)
    if args.node_db_url:
        opts["db_url"] = args.node_db_url
    if args.var:
        opts["vars"] = lanes.parse_vars(args.var)
    return opts


def _add(args):
    info = lanes.add_lane(args.name, args.type, replace=args.replace, **_lane_options(args))
    if args.json:
        output.emit_json(info.as_dict())
    else:
        print(f"lane {info.name} ({info.type}) {'redefined' if args.replace else 'added'}")
    return 0


def _list(args):
    infos = lanes.list_lanes()
    if args.json:
        output.emit_json({"lanes": [i.as_dict() for i in infos]})
    elif not infos:
        print("no lanes (jobs run in this app, or by 'cryodesk worker run'); add one with 'cryodesk lane add'")
    else:
        output.table([[i.name, i.type, str(i.active_jobs), i.config.get("prefix") or i.config.get("host") or ""]
                      for i in infos], ["name", "type", "active jobs", "via"])
    return 0


def _show(args):
    info = lanes.show_lane(args.name)
    from ..db import redact

    d = info.as_dict()
    if d["config"].get("db_url"):  # the nodes' database URL: shown without its password
        d["config"] = {**d["config"], "db_url": redact(str(d["config"]["db_url"]))}
    if args.json:
        output.emit_json(d)
        return 0
    print(f"lane {info.name}: {info.type}, {info.active_jobs} active job(s)")
    for key, value in sorted(d["config"].items()):
        if key == "script":
            continue
        print(f"  {key}: {value}")
    if "script" in info.config:
        print("  submission script template:")
        for line in info.config["script"].splitlines():
            print(f"    {line}")
    return 0


def _remove(args):
    lanes.remove_lane(args.name)
    if not args.json:
        print(f"lane {args.name} removed")
    else:
        output.emit_json({"removed": args.name})
    return 0


def _status(args):
    st = lanes.lane_status(args.name)
    if args.json:
        output.emit_json(st)
    else:
        jobs = ", ".join(f"{n} {s}" for s, n in sorted(st["jobs"].items())) or "no active jobs"
        print(f"lane {st['name']} ({st['type']}): {'ok' if st['ok'] else 'UNREACHABLE'}; {jobs}")
        if st["message"]:
            print(f"  {st['message']}")
    return 0 if st["ok"] else 1


def sync_all(lane: str | None = None) -> lanes.SyncReport:
    """One pass over the SLURM lanes: their jobs, then live-session restores on them."""
    return lane_run.sync(lane, lanes.sync(lane))


def follow(lane: str | None, jobs=None, interval: float = 1.0, timeout: float | None = None,
           quiet: bool = False) -> list:
    """Sync ``lane`` until ``jobs`` (or all its jobs) have ended; returns the sync errors seen last."""
    deadline = None if timeout is None else time.monotonic() + timeout
    seen: dict[str, str] = {}
    errors: list = []
    try:
        while True:
            report = sync_all(lane)
            errors = report.errors
            for e in report.errors:
                print(f"lane: {e}", file=sys.stderr)
            for p, j, s in report.changed:
                if not quiet and seen.get(f"{p} {j}") != s:
                    print(f"{p} {j}: {s}", file=sys.stderr)
                seen[f"{p} {j}"] = s
            active = (any(j.status in ACTIVE_STATUSES for j in refresh(jobs)) if jobs is not None
                      else lanes.lane_jobs_active(lane) + lane_run.active_count(lane) > 0)
            if not active or (deadline is not None and time.monotonic() > deadline):
                return errors
            time.sleep(interval)
    except KeyboardInterrupt:
        print("\ncryodesk: stopped following; the jobs go on on the lane ('cryodesk lane sync --wait' "
              "follows them again)", file=sys.stderr)
        raise


def _sync(args):
    if args.wait:
        errors = follow(args.lane, interval=args.interval, timeout=args.timeout or None)
        report = lanes.SyncReport(errors=errors)
    else:
        report = sync_all(args.lane)
    if args.json:
        output.emit_json({"submitted": [{"project": p, "job": j, "cluster_job_id": c} for p, j, c in report.submitted],
                          "changed": [{"project": p, "job": j, "status": s} for p, j, s in report.changed],
                          "errors": report.errors,
                          "active": lanes.lane_jobs_active(args.lane) + lane_run.active_count(args.lane)})
    else:
        for p, j, c in report.submitted:
            print(f"{p} {j}: submitted as {c}")
        for p, j, s in report.changed:
            print(f"{p} {j}: {s}")
        for e in report.errors:
            print(f"error: {e}", file=sys.stderr)
    return 1 if report.errors else 0


def _run_job(args):
    from ..engine.run_job import run_lane_job

    def log(text):
        print(text, file=sys.stderr, flush=True)

    job = run_lane_job(args.project, args.job, worker=args.worker, log=log)
    print(f"{args.project} {job.uid}: {job.status}" + (f" ({job.error})" if job.error else ""), flush=True)
    return 0 if job.status == "completed" else (143 if job.status == "killed" else 1)


def _run_session(args):
    from ..engine.run_job import run_lane_session

    state, _message = run_lane_session(args.project, args.session, restore=args.restore, worker=args.worker,
                                       log=lambda text: print(text, file=sys.stderr, flush=True))
    print(f"{args.project} {args.session}: {state}", flush=True)
    return 0 if state == "completed" else (143 if state == "killed" else 1)


def add_parser(cli) -> None:
    variables = "\n".join(f"  {{{{ {k} }}}}: {v}" for k, v in lanes.SCRIPT_VARIABLES.items())
    lsub = cli.group("lane", help="where jobs run: this app, another workstation, a SLURM cluster")
    import argparse

    c = lsub.add_parser("add", help="add a lane", formatter_class=argparse.RawDescriptionHelpFormatter,
                        description="Add a lane. A SLURM lane's submission script is a template; its variables:\n"
                        + variables + "\n  and every --var NAME (per lane here, or per job on 'job queue --lane');"
                        "\n  of the built-in names --var may set only " + ", ".join(lanes.OVERRIDABLE) + "."
                        "\nIn the script body values are shell-quoted (run_cmd is already a quoted command line):"
                        "\nwrite each placeholder as a word of its own, not inside quotes. A value in a #SBATCH"
                        "\nline may hold only letters, digits and . _ - / : = , @ % + (Slurm does not unquote);"
                        "\ncontrol characters are refused in every value."
                        "\nThe default script:\n\n" + lanes.DEFAULT_SCRIPT)
    c.add_argument("name")
    c.add_argument("--type", required=True, choices=lanes.KINDS)
    c.add_argument("--script-file", metavar="FILE", help="the submission script template (slurm)")
    c.add_argument("--submit", metavar="CMD", help="submit command template (default: sbatch --parsable ...)")
    c.add_argument("--status", metavar="CMD", help="status command: prints 'id|STATE' lines (default: squeue)")
    c.add_argument("--cancel", metavar="CMD", help="cancel command template (default: scancel ...)")
    c.add_argument("--prefix", metavar="CMD", help="run the commands through this, e.g. 'ssh login-node'")
    c.add_argument("--num-cpu", type=int, metavar="N", help="{{ num_cpu }} (default 1)")
    c.add_argument("--ram-gb", type=int, metavar="N", help="{{ ram_gb }} (default 1)")
    c.add_argument("--var", action="append", metavar="NAME=VALUE", help="a custom template variable (repeatable)")
    c.add_argument("--cryodesk-cmd", metavar="CMD", help="how the node starts cryodesk (default: this one)")
    c.add_argument("--node-db-url", metavar="URL", help="the database URL as the node opens it (default: this one)")
    c.add_argument("--worker", metavar="NAME", help="the node's worker name (SSD cache; default: its host name)")
    c.add_argument("--host", metavar="HOST", help="worker lane: the host that runs its jobs (informative)")
    c.add_argument("--replace", action="store_true", help="redefine an existing lane")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=_add)
    c = lsub.add_parser("list", help="list lanes")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=_list)
    for name, func, hlp in (("show", _show, "a lane's settings and script template"),
                            ("remove", _remove, "remove a lane (none of its jobs may be active)"),
                            ("status", _status, "is the lane's scheduler reachable; its active jobs")):
        c = lsub.add_parser(name, help=hlp)
        c.add_argument("name")
        c.add_argument("--json", action="store_true")
        c.set_defaults(func=func)
    c = lsub.add_parser("sync", help="submit ready jobs and update SLURM lane jobs from the scheduler")
    c.add_argument("lane", nargs="?", help="only this lane")
    c.add_argument("--wait", action="store_true", help="keep following until no job is active on the lane")
    c.add_argument("--interval", type=float, default=1.0, metavar="SECONDS")
    c.add_argument("--timeout", type=float, default=0, metavar="SECONDS", help="with --wait: give up after this")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=_sync)

    wsub = cli.group("worker")
    c = wsub.add_parser("run-job", help="run one job submitted to a lane (what a cluster node runs)")
    c.add_argument("project")
    c.add_argument("job")
    c.add_argument("--worker", metavar="NAME", help="this node's worker name (its SSD cache)")
    c.set_defaults(func=_run_job)
    c = wsub.add_parser("run-session", help="run a live session's restore submitted to a lane (what a node runs)")
    c.add_argument("project")
    c.add_argument("session")
    c.add_argument("--restore", action="store_true", help="restore it (mark it restoring first)")
    c.add_argument("--worker", metavar="NAME", help="this node's worker name (its SSD cache)")
    c.set_defaults(func=_run_session)
