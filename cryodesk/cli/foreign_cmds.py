"""Other programs' projects (issue 16): ``project open DIR``, ``relion ...``, ``cryosparc preview``.

``cryodesk project open DIR``   recognise a RELION, CryoSPARC or cryodesk project directory and register it
``cryodesk relion clean P [--jobs J..] [--harsh|--gentle] [--intermediate] [--preprocessing] [--failed] [--trash]``
                                plan (``--dry-run`` prints it as JSON) and carry it out through the deletion service
``cryodesk relion delete P J..`` RELION's Delete: to ``Trash/<Type>/jobNNN/`` with ``deleted_pipeline.star``
``cryodesk cryosparc preview P`` CryoSPARC's Cleanup Data, tab by tab, read only
``cryodesk job import-from P_SRC J --into P``  an Import Particles job in cryodesk project P reading J's particles
"""

from __future__ import annotations

from ..core.units import human_bytes
from . import output


def _open(args):
    from ..core.foreign.service import open_project

    project, info = open_project(args.dir)
    if args.json:
        output.emit_json(info)
        return
    size = info.get("size") or {}
    extra = " — managed by CryoSPARC — read-only" if info.get("read_only") else ""
    print(f"opened {project.directory} as {project.uid} '{project.title}' ({info['kind']}{extra})")
    if "jobs" in info:
        print(f"  jobs: {info['jobs']}  size: {human_bytes(size.get('measured_bytes') or 0)}  "
              f"raw/linked data (not counted): {human_bytes(size.get('linked_bytes') or 0)}"
              + (f"  Trash/: {human_bytes(size['trash_bytes'])}" if info["kind"] == "relion" else ""))
    for note in info.get("notes", []):
        print(f"  not read: {note}")


def _show_plan(args, plan, results=None):
    if args.json or args.dry_run:
        d = plan.to_dict()
        d["bytes"] = plan.bytes
        if results is not None:
            d["results"] = [{"job": r.job, "action": r.action, "ok": r.ok, "message": r.message, "bytes": r.bytes}
                            for r in results]
        output.emit_json(d)
        return
    for r in results or []:
        print(f"  {r.job:6} {r.action:20} {'ok' if r.ok else 'FAILED'}  {human_bytes(r.bytes)}  {r.message}")
    freed = sum(r.bytes for r in results or [] if r.ok)
    print(f"freed {human_bytes(freed)} of {human_bytes(plan.bytes)} planned ({len(plan.items)} item(s))")


def _results_status(results) -> int:
    return 0 if all(r.ok for r in results) else 1


def _clean(args):
    from ..core.foreign import relion_clean

    if args.harsh or args.gentle:
        plan = relion_clean.plan_clear(args.project, args.jobs or None, harsh=args.harsh)
    else:
        plan = relion_clean.plan_cleanup(args.project, preprocessing=args.preprocessing,
                                         intermediate=args.intermediate, failed=args.failed, trash=args.trash)
    return _carry_out(args, plan)


def _delete(args):
    from ..core.foreign import relion_clean

    return _carry_out(args, relion_clean.plan_delete(args.project, args.jobs))


def _carry_out(args, plan) -> int:
    """Print the plan (``--dry-run``), or carry it out and print what each item did."""
    from ..core.foreign import relion_clean

    if args.dry_run:
        _show_plan(args, plan)
        return 0
    results = relion_clean.execute(args.project, plan)
    _show_plan(args, plan, results)
    return _results_status(results)


def _preview(args):
    from ..core.foreign import cryosparc_audit

    d = cryosparc_audit.preview(args.project)
    if args.json:
        output.emit_json(d)
        return
    print(d["read_only"] or "")
    for tab, t in d["tabs"].items():
        print(f"  {tab:14} {len(t['jobs']):4} job(s)  {human_bytes(t['bytes'])}")


def _import_from(args):
    from ..core.foreign.particles import import_particles

    job = import_particles(args.into, args.project, args.job, workspace=args.workspace)
    if args.json:
        output.emit_json({"project": job.project.uid, "job": job.uid, "params": job.params})
    else:
        print(f"created {job.project.uid} {job.uid} '{job.title}' (import_particles, building): queue it with "
              f"'cryodesk job queue {job.project.uid} {job.uid}', then restack or export its particles")


def add_parser(cli) -> None:
    i = cli.group("job").add_parser("import-from", help="import a RELION or CryoSPARC job's particles into a "
                                                         "cryodesk project (an Import Particles job)")
    i.add_argument("project", help="the RELION or CryoSPARC project (P2)")
    i.add_argument("job", help="its job (J7)")
    i.add_argument("--into", required=True, help="the cryodesk project to import into")
    i.add_argument("--workspace", default=None)
    i.add_argument("--json", action="store_true")
    i.set_defaults(func=_import_from)
    o = cli.group("project").add_parser("open", help="open a RELION, CryoSPARC (read-only) or cryodesk project "
                                                     "directory in place")
    o.add_argument("dir")
    o.add_argument("--json", action="store_true")
    o.set_defaults(func=_open)
    rel = cli.group("relion", help="clean and delete in RELION projects, as RELION does (under its lock)")
    c = rel.add_parser("clean", help="plan and carry out a clean-up of a RELION project")
    c.add_argument("project")
    c.add_argument("--jobs", nargs="*", metavar="J", help="with --harsh/--gentle: only these jobs")
    kind = c.add_mutually_exclusive_group()
    kind.add_argument("--harsh", action="store_true", help="RELION's harsh clean (PipeLine::cleanupJob rules)")
    kind.add_argument("--gentle", action="store_true", help="RELION's gentle clean (log and metadata files)")
    c.add_argument("--preprocessing", action="store_true", help="harsh clean of MotionCorr/CtfFind/picking/Extract")
    c.add_argument("--intermediate", action="store_true", help="iterations before the last no job reads")
    c.add_argument("--failed", action="store_true", help="delete failed and aborted jobs (to Trash/)")
    c.add_argument("--trash", action="store_true", help="empty RELION's Trash/")
    c.add_argument("--dry-run", action="store_true", help="print the plan as JSON, change nothing")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=_clean)
    d = rel.add_parser("delete", help="RELION's Delete: jobs (and the jobs reading them) to Trash/")
    d.add_argument("project")
    d.add_argument("jobs", nargs="+", metavar="J")
    d.add_argument("--dry-run", action="store_true")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=_delete)
    cs = cli.group("cryosparc", help="audit CryoSPARC project directories (read only)")
    p = cs.add_parser("preview", help="what CryoSPARC's Cleanup Data would free, tab by tab")
    p.add_argument("project")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_preview)
