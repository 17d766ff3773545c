"""``cryodesk cleanup``, ``cryodesk project size`` and ``cryodesk project set``.

``cleanup`` plans first; ``--dry-run`` prints the plan as JSON (entries,
protected jobs and the preview figures) and changes nothing.  Otherwise it
prints a summary and asks before deleting; with stdin not a terminal it
refuses unless ``--yes`` is given.
"""

from __future__ import annotations

import sys

from ..base.errors import CryodeskError, UsageError
from ..core import settings_service, sizes
from ..core.projects import get_project
from ..core.uids import parse_assignment
from ..core.units import human_bytes
from . import output

_VERB = {"clear": "clear", "clear_intermediate": "clear intermediate results of", "delete": "delete"}


def _summary(plan) -> None:
    h, est = plan.header, plan.tabs["estimate"]
    stale = " (out of date: cryodesk project size --refresh)" if h["size_stale"] else ""
    where = (f"project {human_bytes(h['project_size_bytes'] or 0)}" if h["workspace"] else
             f"other files {human_bytes(h.get('other_bytes') or 0)}")
    print(f"scope {h['scope']}: {h['jobs']} jobs, {human_bytes(h['size_bytes'])} on disk ({where}){stale}; "
          f"{h['sessions']} sessions ({human_bytes(h['sessions_bytes'])}, never touched)")
    for e in plan.entries:
        print(f"  {e.uid:>6}  {_VERB[e.action]:<34} {human_bytes(e.bytes):>10}  {'; '.join(e.reasons)}")
    for s in plan.skipped:
        print(f"  {s.uid:>6}  kept ({s.option}): {s.reason}")
    for w in plan.warnings:
        print(f"warning: {w}")
    print(f"{est['jobs_cleared']} cleared, {est['jobs_intermediate_only']} intermediate only, "
          f"{est['jobs_deleted']} deleted ({est['jobs_modified']} jobs): frees {human_bytes(est['bytes_freed'])} "
          f"{estimate_line(est)}")


def estimate_line(est: dict) -> str:
    """"(41.2% of P1 W2, 4.0 MiB; 9.9% of the project, 9.6 MiB)": the scope first, the project beside it."""
    text = f"({est['percent_of_scope']}% of {est['scope']}, {human_bytes(est['scope_bytes'])}"
    if est["scope_bytes"] != est["project_bytes"] or " " in est["scope"]:
        text += f"; {est['percent_of_project']}% of the project, {human_bytes(est['project_bytes'])}"
    return text + ")"


def _confirm(plan, yes: bool) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        raise CryodeskError("refusing to delete without confirmation: stdin is not a terminal "
                            "(pass --yes to proceed, or --dry-run to preview)")
    answer = input(f"Proceed and free {human_bytes(plan.bytes)}? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _cleanup(args):
    from ..core.cleanup import CleanupOptions, execute_cleanup, plan_cleanup

    p = get_project(args.project)
    if not args.dry_run:  # a preview never deletes, not even a crashed deletion's leftovers
        output.recover(p)
    sizes.ensure_project_size(p)
    opts = CleanupOptions(preprocessing=args.preprocessing or (), intermediate=args.intermediate,
                          non_final=args.non_final, killed=args.killed, failed=args.failed, restack=args.restack)
    if opts.empty:
        raise UsageError("nothing to clean up: choose --preprocessing, --restack, --intermediate, --non-final, "
                         "--killed and/or --failed")
    plan = plan_cleanup(p, opts, args.workspace)
    output.warn_cycles(p)
    if args.dry_run:
        output.emit_json(plan.to_dict())
        return 0
    if not args.json:
        _summary(plan)
    if not plan.entries:
        if args.json:
            output.emit_json({"plan": plan.to_dict(), "result": None})
        else:
            print("nothing to do")
        return 0
    if not _confirm(plan, args.yes):
        print("cancelled: nothing was changed")
        return 1
    result = execute_cleanup(p, plan)
    if args.json:
        output.emit_json({"plan": plan.to_dict(), "result": result.to_dict()})
    else:
        for o in result.outcomes:
            if not o["ok"]:
                print(f"{o['uid']}: not done: {o['message']}", file=sys.stderr)
        for err in result.errors:
            print(f"error: {err}", file=sys.stderr)
        print(f"freed {human_bytes(result.bytes_freed)} "
              f"({sum(1 for o in result.outcomes if o['ok'])} of {len(plan.entries)} jobs done)")
    return 0 if result.ok else 1


def _clear_intermediate(args):
    """``job|workspace|project clear-intermediate``: the guide's Actions-menu button at each level.

    Named jobs that keep theirs (a final job, a running one) make the exit
    status 1; at the workspace or project level they are only reported.
    """
    from ..core.cleanup import execute_cleanup, plan_clear_intermediate

    p = get_project(args.project)
    named = getattr(args, "jobs", None)
    if not args.dry_run:
        output.recover(p)
    sizes.ensure_project_size(p)
    plan = plan_clear_intermediate(p, jobs=named, workspace=getattr(args, "workspace", None))
    if args.dry_run:
        output.emit_json(plan.to_dict())
        return 0
    result = execute_cleanup(p, plan) if plan.entries else None
    finals = [j.uid for j in jobs_of(p, named) if j.is_final] if named else []
    refused = bool(named) and bool(plan.skipped or finals)
    if args.json:
        output.emit_json({"plan": plan.to_dict(), "result": result.to_dict() if result else None})
        return 1 if refused or (result and not result.ok) else 0
    entries = {e.uid: e for e in plan.entries}
    for o in (result.outcomes if result else []):
        if o["ok"]:
            kept = ", ".join(f"{g} v{v}" for g, v in sorted(entries[o["uid"]].keep_last.items()))
            print(f"{o['uid']}: clear intermediate results done, freed {human_bytes(o['bytes'])}"
                  + (f" (kept the last version: {kept})" if kept else ""))
        else:
            print(f"{o['uid']}: not done: {o['message']}", file=sys.stderr)
    for s in plan.skipped:
        print(f"{s.uid}: kept its intermediate results: {s.reason}", file=sys.stderr)
    if named:
        touched = set(entries) | {s.uid for s in plan.skipped}
        for uid in dict.fromkeys(j.uid for j in jobs_of(p, named)):
            if uid in finals and uid not in touched:
                print(f"{uid}: kept its results: it is marked as a final result", file=sys.stderr)
            elif uid not in touched:
                print(f"{uid}: no intermediate results to clear")
    elif not plan.entries:
        print(f"{plan.scope}: no intermediate results to clear")
    if result:
        for err in result.errors:
            print(f"error: {err}", file=sys.stderr)
        print(f"total freed: {human_bytes(result.bytes_freed)}")
    return 1 if refused or (result and not result.ok) else 0


def jobs_of(project, uids):
    from ..core.jobs import get_jobs

    return get_jobs(project, uids)


def _size(args):
    p = get_project(args.project)
    d = sizes.refresh_project_size(p) if args.refresh else sizes.ensure_project_size(p)
    if args.json:
        output.emit_json(d)
        return 0
    state = "out of date (jobs changed since; use --refresh)" if d["stale"] else "up to date"
    print(f"{d['project']}  {d['directory']}\n  size: {human_bytes(d['size_bytes'] or 0)} ({state}, "
          f"measured {d['refreshed_at']})")
    print(f"  jobs: {human_bytes(d['jobs_bytes'])} ({d['jobs']} jobs)  sessions: "
          f"{human_bytes(d['sessions_bytes'])} ({d['sessions']})  other: {human_bytes(d['other_bytes'])}")
    print(f"  linked data (symlinks to outside, not part of the project): {human_bytes(d['linked_bytes'])}")
    for err in d.get("errors", []):
        print(f"  unreadable: {err}", file=sys.stderr)
    return 0


def _set(args):
    """``project set P1 KEY=VALUE...``: ``cryodesk settings set KEY VALUE --project P1``, several at once."""
    from ..core.cleanup import project_settings

    p = get_project(args.project)
    given = [parse_assignment(text) for text in args.assignments]  # all parsed before any is written
    for key, value in given:
        settings_service.set_setting("project", key, value, project=p)
    settings = {**project_settings(p), **{k: settings_service.effective(k, project=p)[0] for k, _ in given}}
    if args.json:
        output.emit_json(settings)
    else:
        for k, v in settings.items():
            print(f"{k} = {str(v).lower() if isinstance(v, bool) else v}")
    return 0


def add_parser(cli) -> None:
    c = cli.top.add_parser("cleanup", help="Cleanup Data: clear or delete what is safe to remove (preview first)")
    c.add_argument("project")
    c.add_argument("--workspace", "-w", help="only jobs linked into this workspace")
    c.add_argument("--preprocessing", metavar="CATS", help="clear preprocessing jobs: motion,ctf,picking,extraction")
    c.add_argument("--restack", action="store_true", help="clear restack jobs (restack/downsample particles; "
                   "not part of --preprocessing all)")
    c.add_argument("--intermediate", action="store_true", help="clear intermediate results of every job in scope "
                   "(all but the last version and versions other jobs read; final jobs keep theirs)")
    c.add_argument("--non-final", choices=("clear", "delete"), help="jobs neither final nor ancestor of final")
    c.add_argument("--killed", choices=("clear", "delete"))
    c.add_argument("--failed", choices=("clear", "delete"))
    c.add_argument("--dry-run", action="store_true", help="print the plan as JSON, change nothing")
    c.add_argument("--json", action="store_true", help="machine-readable output")
    c.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")
    c.set_defaults(func=_cleanup)

    help_ci = ("clear intermediate results (every version but the last and those other jobs read; final jobs "
               "keep theirs), as the Actions menu's button")
    for group, extra in (("job", "jobs"), ("workspace", "workspace"), ("project", None)):
        ci = cli.group(group).add_parser("clear-intermediate", help=help_ci)
        ci.add_argument("project")
        if extra == "jobs":
            ci.add_argument("jobs", nargs="+")
        elif extra == "workspace":
            ci.add_argument("workspace")
        ci.add_argument("--dry-run", action="store_true", help="print the plan as JSON, change nothing")
        ci.add_argument("--json", action="store_true", help="machine-readable output")
        ci.set_defaults(func=_clear_intermediate)

    psub = cli.group("project")
    s = psub.add_parser("size", help="project size on disk (jobs, sessions, other, linked data)")
    s.add_argument("project")
    s.add_argument("--refresh", action="store_true", help="measure the directory again")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_size)
    s = psub.add_parser("set", help="change project settings, e.g. delete_intermediate=false "
                        "(= cryodesk settings set KEY VALUE --project P)")
    s.add_argument("project")
    s.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_set)
