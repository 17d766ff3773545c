"""``cryodesk project ...`` and ``cryodesk workspace ...``.

Lifecycle: ``attach [--force]``, ``detach``, ``archive``, ``unarchive [--path]``,
``move [--dry-run]`` (progress on stderr) and ``delete [--include-finals]
[--dry-run] [--yes]`` (previewed, confirmed, journaled).  Each first finishes
a move or delete a crashed process left.
"""

from __future__ import annotations

import sys
import time

from ..base.errors import CryodeskError
from ..core import projects
from ..core.units import human_bytes
from . import output


class _Progress:
    """``progress(fraction, message)`` for a terminal: one redrawn line on a TTY, a line per 10 % otherwise."""

    def __init__(self, label: str, stream=None):
        self.label, self.stream = label, stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._decile, self._last = -1, 0.0

    def __call__(self, fraction: float, message: str = "") -> None:
        if self.tty:
            now = time.monotonic()
            if now - self._last < 0.1 and fraction < 1:
                return
            self._last = now
            self.stream.write(f"\r\x1b[K{self.label}: {fraction:4.0%} {message}"[:200])
        else:
            decile = int(fraction * 10 + 1e-9)
            if decile <= self._decile:
                return
            self._decile = decile
            self.stream.write(f"{self.label}: {fraction:4.0%} {message}\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()


def _recovered() -> None:
    from ..core import project_lifecycle

    for e in project_lifecycle.recover_all():
        print(f"cryodesk: finishing an interrupted move or delete: {e}", file=sys.stderr)


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
    from ..core import attach
    from ..core.cleanup import on_project_open

    _recovered()
    p = attach.attach_project(args.dir, force=args.force)
    taken = getattr(p, "taken_over_from", None)
    if p.archived_at is None:
        on_project_open(p)  # roll forward a half-done deletion, measure sizes
    if args.json:
        output.emit_json({**_project_dict(p), "taken_over_from": taken})
    else:
        print(f"attached {p.directory} as {p.uid} '{p.title}'" + (" (archived)" if p.archived_at else ""))
        if taken and taken.get("unreadable_lock"):
            print(f"took it over; the unreadable lock file it had is kept as {taken['unreadable_lock']}")
        elif taken:
            print(f"took it over from {taken.get('label')} (instance {str(taken.get('database'))[:8]}, "
                  f"where it was {taken.get('uid')}); the lock file records it")


def _detach(args):
    from ..core import project_lifecycle

    _recovered()
    out = project_lifecycle.detach_project(args.project)
    if args.json:
        output.emit_json(out)
    elif out["foreign"]:
        print(f"removed {out['uid']} from this database; its directory {out['directory']} belongs to "
              f"{out['owner']} and was not touched")
    else:
        extra = "" if out["directory_present"] else (" (its directory is away: its lock still names this "
                                                      "database; attach it elsewhere with --force)")
        print(f"detached {out['uid']}: {out['manifests']} job manifest(s) written, lock removed, rows removed; "
              f"attach it again with: cryodesk project attach {out['directory']}{extra}")


def _archive(args):
    from ..core import project_lifecycle

    _recovered()
    p = project_lifecycle.archive_project(args.project)
    if args.json:
        output.emit_json(_project_dict(p))
    else:
        print(f"archived {p.uid}: read-only from now on (browsing, sizes and exports still work); its directory "
              f"{p.directory} may be moved to long-term storage; bring it back with: "
              f"cryodesk project unarchive {p.uid} [--path NEWDIR]")


def _unarchive(args):
    from ..core import project_lifecycle

    _recovered()
    p = project_lifecycle.unarchive_project(args.project, args.path)
    if args.json:
        output.emit_json(_project_dict(p))
    else:
        print(f"unarchived {p.uid} at {p.directory}: writable again")


def _move(args):
    from ..core import project_move

    _recovered()
    p = projects.get_project(args.project)
    if args.dry_run:
        output.emit_json(project_move.plan_move(p, args.dest).to_dict())
        return 0
    progress = _Progress(f"move {p.uid}")
    try:
        out = project_move.move_project(p, args.dest, progress=progress)
    finally:
        progress.close()
    if args.json:
        output.emit_json(out)
    else:
        how = {"rename": "renamed (one file system)", "copy": "copied, verified and the old copy removed",
               "rebind": "it was already there: only the database was changed"}[out["mode"]]
        print(f"moved {p.uid} to {out['dest']}: {how}; {out.get('files', 0)} files, "
              f"{human_bytes(out.get('bytes', 0))}, {out.get('links', 0)} symlinks (moved as links) "
              f"in {out['seconds']:.1f} s")
    for link in out.get("escaping_links", [])[:20]:
        print(f"warning: the relative symlink {link} points outside the project: check it still points where "
              "it should", file=sys.stderr)
    for link in out.get("inside_links", [])[:20]:
        print(f"warning: the symlink {link} points into the project by its old absolute path: it now points "
              "there, not into the moved copy", file=sys.stderr)
    for e in out.get("errors", []):
        print(f"warning: {e}", file=sys.stderr)
    return 0


def _confirm_delete(plan, yes: bool) -> bool:
    if yes:
        return True
    if not sys.stdin.isatty():
        raise CryodeskError("refusing to delete a project without confirmation: stdin is not a terminal "
                            "(pass --yes to proceed, or --dry-run to preview)")
    answer = input(f"Permanently delete {plan.project} and its directory {plan.directory} "
                   f"({human_bytes(plan.bytes)})? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _delete(args):
    from ..core import project_lifecycle

    _recovered()
    p = projects.get_project(args.project)
    if not args.dry_run:
        from ..core.deletion import recover

        output.report_recovered(recover(p))
    plan = project_lifecycle.plan_delete(p, include_finals=args.include_finals)
    if args.dry_run:
        output.emit_json(plan.to_dict())
        return 0
    if not args.json:
        print(f"{plan.project}: {len(plan.plan.items)} job(s) ({human_bytes(plan.plan.bytes)}), "
              f"{len(plan.sessions)} session(s), {len(plan.rest)} other entries; {plan.links} symlink(s) removed "
              f"as links (their targets are never touched); {human_bytes(plan.bytes)} in {plan.directory}")
        if plan.finals:
            print(f"  final results deleted with it (--include-finals): {', '.join(plan.finals)}")
    if not _confirm_delete(plan, args.yes):
        print("cancelled: nothing was changed")
        return 1
    progress = _Progress(f"delete {p.uid}")
    try:
        out = project_lifecycle.execute_delete(p, plan, progress=progress)
    finally:
        progress.close()
    if args.json:
        output.emit_json({"plan": plan.to_dict(), "result": out})
    elif out["deleted"]:
        print(f"deleted {plan.project} ({plan.directory}): freed {human_bytes(out['bytes'])}")
    for e in out["errors"]:
        print(f"{'warning' if out['deleted'] else 'not deleted'}: {e}", file=sys.stderr)
    return 0 if out["deleted"] else 1


def _list(args):
    data = projects.project_summaries()
    if args.json:
        output.emit_json(data)
    elif not data:
        print("no projects (create one with: cryodesk project create --title T --dir DIR)")
    else:
        output.table([[d["uid"], d["title"], str(d["jobs"]), human_bytes(d["size_bytes"]), d["state"],
                       d.get("kind", "cryodesk"), d["directory"]] for d in data],
                     ["uid", "title", "jobs", "size", "state", "kind", "directory"])


def _show(args):
    d = _project_dict(projects.get_project(args.project))
    output.warn_cycles(projects.get_project(args.project))
    if args.json:
        output.emit_json(d)
        return
    state = f"  ({d['state']}{' since ' + d['archived_at'][:16] if d['state'] == 'archived' else ''})" \
        if d["state"] else ""
    print(f"{d['uid']}  {d['title']}{state}\n  directory: {d['directory']}\n  jobs: {d['jobs']}  "
          f"size: {human_bytes(d['size_bytes'])}")
    for w in d["workspaces"]:
        print(f"  {w['uid']}  {w['title']}")
    from ..core.deletion import state_problem

    why = state_problem(d["directory"])
    if why:
        print(f"cryodesk: warning: {why}", file=sys.stderr)


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
    a.add_argument("--force", action="store_true",
                   help="take over a directory another database owns (the lock file records it)")
    a.add_argument("--json", action="store_true")
    a.set_defaults(func=_attach)
    d = psub.add_parser("detach", help="write the manifests, remove the lock and the database rows (files stay)")
    d.add_argument("project")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=_detach)
    d = psub.add_parser("archive", help="make a project read-only; its directory may then be moved away")
    d.add_argument("project")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=_archive)
    d = psub.add_parser("unarchive", help="make an archived project writable again (at --path if it moved)")
    d.add_argument("project")
    d.add_argument("--path", help="where the project directory is now")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=_unarchive)
    d = psub.add_parser("move", help="move a project directory (rename, or copy+verify across file systems)")
    d.add_argument("project")
    d.add_argument("dest", help="the new project directory (must not exist; its parent must)")
    d.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=_move)
    d = psub.add_parser("delete", help="delete a project and its directory (planned, journaled)")
    d.add_argument("project")
    d.add_argument("--include-finals", action="store_true",
                   help="delete final results with it (otherwise a project with finals is refused)")
    d.add_argument("--dry-run", action="store_true", help="print the plan as JSON, change nothing")
    d.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    d.add_argument("--json", action="store_true")
    d.set_defaults(func=_delete)
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
