"""``cryodesk job ...``: create, inspect, select and act on jobs."""

from __future__ import annotations

import sys

from ..core import graph, jobs, registry, settings_service
from ..core.projects import get_project, get_workspace
from ..core.uids import parse_assignment, parse_input_spec
from ..core.units import human_bytes
from . import output


def _project(args, writes: bool = True):
    """The project named on the command line; before a write, finish what a process that died left.

    That is a deletion half-done, jobs still "running" whose process is gone (marked killed) and
    unfinished temp files (:mod:`cryodesk.core.recovery`).  Read commands never recover (recovery
    deletes, and may take the project lock).
    """
    p = get_project(args.project)
    if writes:
        output.recover(p)
    return p


def _describe(p, js):
    return jobs.describe_jobs(p, js)


def _create(args):
    p = _project(args)
    specs = [jobs.InputSpec(*parse_input_spec(s)) for s in args.input]
    params = dict(parse_assignment(s) for s in args.param)
    job = jobs.create_job(p, args.type, args.workspace, specs, params, args.title or "")
    if args.json:
        output.emit_json(_describe(p, [job])[0])
    else:
        print(f"created {p.uid} {job.uid} ({job.type})")


def _list(args):
    p = _project(args, writes=False)
    descs = _describe(p, jobs.list_jobs(p, args.workspace))
    if args.json:
        output.emit_json(descs)
    else:
        output.table(output.job_rows(descs), output.JOB_HEADERS)


def _show(args):
    p = _project(args, writes=False)
    d = _describe(p, [jobs.get_job(p, args.job)])[0]
    output.warn_cycles(p)
    if args.json:
        output.emit_json(d)
        return
    print(f"{p.uid} {d['uid']}  {d['type']} ({d['category'] or 'a type not known here'})  '{d['title']}'")
    print(f"  status: {d['status']}  {output.flags(d)}  size: {human_bytes(d['size_bytes'])}")
    print(f"  workspaces: {', '.join(d['workspaces'])}")
    print(f"  parents: {', '.join(d['parents']) or '-'}  children: {', '.join(d['children']) or '-'}")
    for i in d["inputs"]:
        ver = "latest" if i["version"] is None else f"v{i['version']}"
        print(f"  input {i['slot']} <- {i['parent']}.{i['output']} ({ver})")
    for k, v in sorted(d["params"].items()):
        print(f"  param {k} = {v!r}")
    for o in d["outputs"]:
        print(f"  output {o['group']} v{o['version']} {o['kind']}: {o['path']} ({human_bytes(o['size_bytes'])})")
    if d["error"]:
        print(f"  error: {d['error']}")


def _final(args):
    from ..core import finals

    p = _project(args)
    return output.batch(finals.set_final(p, jobs.get_jobs(p, args.jobs), not args.unset), args.json)


def _select(args):
    p = _project(args, writes=False)
    ws = get_workspace(p, args.workspace) if args.workspace else None
    if args.ancestors:
        job = jobs.get_job(p, args.ancestors)
        graph.check_in_workspace(job, ws)
        sel = graph.ancestors(job, ws)
    elif args.descendants:
        job = jobs.get_job(p, args.descendants)
        graph.check_in_workspace(job, ws)
        sel = graph.descendants(job, ws)
    else:
        a, b = (jobs.get_job(p, u) for u in args.chain)
        graph.check_in_workspace(a, ws)
        graph.check_in_workspace(b, ws)
        sel = graph.chain(a, b, ws)
    if args.json:
        output.emit_json(_describe(p, sel))
    else:
        print(" ".join(j.uid for j in sel))


def _destructive(args):
    from ..core import actions

    p = _project(args, writes=not args.dry_run)
    js = jobs.get_jobs(p, args.jobs)
    plan = (actions.plan_clear if args.action == "clear" else actions.plan_delete)(p, js)
    for w in plan.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.dry_run:  # the plan as JSON, as the README promises (with or without --json)
        output.emit_json(plan.to_dict())
        for o in plan.refused:
            print(f"refused: {o.message}", file=sys.stderr)
        return 0 if not plan.refused else 1
    return output.batch(actions.run_plan(p, plan), args.json)


def _mark_complete(args):
    from ..core import actions

    p = _project(args)
    return output.batch(actions.mark_complete(p, jobs.get_jobs(p, args.jobs)), args.json)


def _workspace_action(args):
    from ..core import actions

    p = _project(args)
    js = jobs.get_jobs(p, args.jobs)
    if args.action == "link":
        result = actions.link(p, js, args.workspace)
    elif args.action == "unlink":
        result = actions.unlink(p, js, args.workspace)
    elif args.action == "move":
        result = actions.move(p, js, args.workspace, args.source)
    else:
        result, _ = actions.clone(p, js, args.workspace)
    return output.batch(result, args.json)


def _set_param(args):
    p = _project(args)
    given = dict(parse_assignment(s) for s in args.assignments)
    job = settings_service.set_job_values(p, args.job, given)
    params, own = jobs.split_job_settings(registry.get(job.type), given)
    if args.json:
        output.emit_json({**_describe(p, [job])[0], "settings": job.settings or {}})
        return 0
    if params:
        print(f"{job.uid}: parameters updated")
    for key in own:
        value = (job.settings or {}).get(key)
        shown = str(value).lower() if isinstance(value, bool) else value
        print(f"{job.uid}: {key} = {shown} (this job's setting; it overrides the project's)")
    return 0


def _types(args):
    data = [{"name": t.name, "title": t.title, "category": t.category, "runnable": t.run is not None,
             "params": {p.name: p.default for p in t.params},
             "inputs": [{"name": s.name, "type": s.type, "required": s.required} for s in t.inputs],
             "outputs": [{"name": o.name, "type": o.type, "iterative": o.iterative} for o in t.outputs]}
            for t in registry.all_types()]
    if args.json:
        output.emit_json(data)
    else:
        output.table([[d["name"], d["category"], d["title"]] for d in data], ["type", "category", "title"])


def add_parser(cli) -> None:
    jsub = cli.group("job")

    def cmd(name, func, help, project=True, json=True):
        p = jsub.add_parser(name, help=help)
        if project:
            p.add_argument("project")
        if json:
            p.add_argument("--json", action="store_true", help="machine-readable output")
        p.set_defaults(func=func)
        return p

    c = cmd("create", _create, "create a job (status building)")
    c.add_argument("type")
    c.add_argument("--workspace", "-w")
    c.add_argument("--input", "-i", action="append", default=[], metavar="NAME=J3[.OUTPUT][@VERSION]")
    c.add_argument("--param", "-p", action="append", default=[], metavar="KEY=VALUE")
    c.add_argument("--title")
    c = cmd("list", _list, "list jobs")
    c.add_argument("--workspace", "-w")
    c = cmd("show", _show, "show one job")
    c.add_argument("job")
    c = cmd("final", _final, "mark (or --unset) jobs as final results")
    c.add_argument("jobs", nargs="+")
    c.add_argument("--unset", action="store_true")
    c = cmd("select", _select, "select ancestors, descendants or the chain between two jobs")
    g = c.add_mutually_exclusive_group(required=True)
    g.add_argument("--ancestors", metavar="JOB")
    g.add_argument("--descendants", metavar="JOB")
    g.add_argument("--chain", nargs=2, metavar=("JOB_A", "JOB_B"))
    c.add_argument("--workspace", "-w")
    for name, help in (("clear", "delete jobs' output data, keep params and inputs"),
                       ("delete", "delete jobs and their directories")):
        c = cmd(name, _destructive, help)
        c.add_argument("jobs", nargs="+")
        c.add_argument("--dry-run", action="store_true", help="print the plan as JSON, change nothing")
    c = cmd("mark-complete", _mark_complete, "mark killed/failed jobs as completed")
    c.add_argument("jobs", nargs="+")
    for name, help in (("link", "link jobs into a workspace"), ("unlink", "unlink jobs from a workspace"),
                       ("move", "move jobs to a workspace"), ("clone", "clone a job or a chain into a workspace")):
        c = cmd(name, _workspace_action, help)
        c.add_argument("jobs", nargs="+")
        c.add_argument("--workspace", "-w", required=True)
        if name == "move":
            c.add_argument("--from", dest="source", help="only move out of this workspace")
        else:
            c.set_defaults(source=None)
    c = cmd("set-param", _set_param, "change parameters of a building job")
    c.add_argument("job")
    c.add_argument("assignments", nargs="+", metavar="KEY=VALUE")
    cmd("types", _types, "list the registered job types", project=False)
