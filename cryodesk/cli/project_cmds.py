"""``cryodesk project ...`` and ``cryodesk workspace ...``."""

from __future__ import annotations

from ..core import attach, projects
from ..core.units import human_bytes
from . import output


def _project_dict(p) -> dict:
    return projects.project_summaries(p)[0]


def _create(args):
    from ..core.cleanup import on_project_open

    p = projects.create_project(args.title, args.dir)
    on_project_open(p)
    if args.json:
        output.emit_json(_project_dict(p))
    else:
        print(f"created {p.uid} '{p.title}' in {p.directory}")


def _attach(args):
    from ..core.cleanup import on_project_open

    p = attach.attach_project(args.dir)
    on_project_open(p)  # roll forward a half-done deletion, measure sizes
    if args.json:
        output.emit_json(_project_dict(p))
    else:
        print(f"attached {p.directory} as {p.uid} '{p.title}'")


def _list(args):
    data = projects.project_summaries()
    if args.json:
        output.emit_json(data)
    elif not data:
        print("no projects (create one with: cryodesk project create --title T --dir DIR)")
    else:
        output.table([[d["uid"], d["title"], str(d["jobs"]), human_bytes(d["size_bytes"]), d["directory"]]
                      for d in data], ["uid", "title", "jobs", "size", "directory"])


def _show(args):
    d = _project_dict(projects.get_project(args.project))
    if args.json:
        output.emit_json(d)
        return
    print(f"{d['uid']}  {d['title']}\n  directory: {d['directory']}\n  jobs: {d['jobs']}  "
          f"size: {human_bytes(d['size_bytes'])}")
    for w in d["workspaces"]:
        print(f"  {w['uid']}  {w['title']}")


def _ws_create(args):
    w = projects.create_workspace(args.project, args.title)
    if args.json:
        output.emit_json({"uid": w.uid, "project": w.project.uid, "title": w.title})
    else:
        print(f"created {w.project.uid} {w.uid} '{w.title}'")


def _ws_list(args):
    data = [{k: w[k] for k in ("uid", "title", "jobs", "size_bytes")}
            for w in _project_dict(projects.get_project(args.project))["workspaces"]]
    if args.json:
        output.emit_json(data)
    else:
        output.table([[d["uid"], d["title"], str(d["jobs"])] for d in data], ["uid", "title", "jobs"])


def add_parser(cli) -> None:
    psub = cli.group("project")
    c = psub.add_parser("create", help="create a project with its own directory")
    c.add_argument("--title", required=True)
    c.add_argument("--dir", required=True, help="new or empty directory for the project")
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=_create)
    a = psub.add_parser("attach", help="re-attach a project directory (from its manifests)")
    a.add_argument("dir")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=_attach)
    ls = psub.add_parser("list", help="list projects")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_list)
    s = psub.add_parser("show", help="show one project")
    s.add_argument("project")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_show)

    wsub = cli.group("workspace")
    c = wsub.add_parser("create", help="create a workspace in a project")
    c.add_argument("project")
    c.add_argument("--title", required=True)
    c.add_argument("--json", action="store_true")
    c.set_defaults(func=_ws_create)
    ls = wsub.add_parser("list", help="list a project's workspaces")
    ls.add_argument("project")
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(func=_ws_list)
