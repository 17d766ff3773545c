"""Projects, workspaces and sessions: creation, lookup and re-attachment."""

from __future__ import annotations

from pathlib import Path

import peewee as pw

from ..base import trashworker
from ..base.errors import CryodeskError, NotFound, UsageError, require_utf8
from ..db.models import Job, JobWorkspace, Project, ProjectOp, Session, Workspace, db
from . import events, manifest, ownership
from .guard import project_write
from .project_ops import BLOCKING
from .uids import parse_uid


def _resolve_dir(directory: str | Path) -> Path:
    path = Path(directory).expanduser().resolve()
    require_utf8(str(path), "the directory")  # the database stores it
    return path


def _next_number(model, *where) -> int:
    q = model.select(pw.fn.MAX(model.number))
    if where:
        q = q.where(*where)
    return (q.scalar() or 0) + 1


def create_project(title: str, directory: str | Path) -> Project:
    """Create project ``P<n>`` with its own directory (which must be new or empty).

    Raises
    ------
    UsageError
        If the title is empty or the directory is not empty.
    """
    if not title or not title.strip():
        raise UsageError("a project needs a title")
    require_utf8(title, "the title")
    path = _resolve_dir(directory)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{path} exists and is not a directory")
    if (path / manifest.PROJECT_MANIFEST).exists():
        raise UsageError(f"{path} already holds a cryodesk project; use 'cryodesk project attach {path}'")
    if path.exists() and any(path.iterdir()):
        raise UsageError(f"{path} is not empty; a project needs a new or empty directory")
    _refuse_nested(path)
    with db.atomic():
        if Project.get_or_none(Project.directory == str(path)):
            raise UsageError(f"{path} is already a project directory")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CryodeskError(f"cannot create project directory {path}: {exc.strerror}") from None
        project = Project.create(number=_next_number(Project), title=title.strip(), directory=str(path),
                                 uuid=manifest.new_project_id())
        # the lock first: the directory is this database's before anything else is written into it
        ownership.write_lock(path, project.uuid, project.uid, "created")
        manifest.write_project(project)
        events.record(None, "projects")
    trashworker.ensure_reserve(path)  # room for a deletion journal when the disk is full one day
    return project


def _refuse_nested(path: Path, exclude: Project | None = None) -> None:
    """A project directory never lies inside another project's (a job there would adopt it: a delete of
    that job would take the inner project with it), nor holds one."""
    for p in Project.select(Project.id, Project.number, Project.directory):
        if exclude is not None and p.id == exclude.id:
            continue
        other = Path(p.directory)
        if other == path or other in path.parents:
            raise UsageError(f"{path} is inside the directory of project P{p.number} ({other}); "
                             "choose a directory outside it")
        if path in other.parents:
            raise UsageError(f"{path} holds the directory of project P{p.number} ({other}); "
                             "choose a directory beside it")
    for parent in path.parents:  # a project of another database
        if exclude is not None and parent == Path(exclude.directory):
            continue
        if (parent / manifest.PROJECT_MANIFEST).is_file():
            raise UsageError(f"{path} is inside the project directory {parent}; choose a directory outside it")


def list_projects() -> list[Project]:
    return list(Project.select().order_by(Project.number))


def get_project(uid: str | int | Project) -> Project:
    if isinstance(uid, Project):
        return uid
    number = parse_uid(uid, "P")
    project = Project.get_or_none(Project.number == number)
    if project is None:
        raise NotFound(f"no project P{number}")
    return project


def project_dir(project: Project) -> Path:
    return Path(project.directory)


def create_workspace(project, title: str) -> Workspace:
    project = get_project(project)
    if not title or not title.strip():
        raise UsageError("a workspace needs a title")
    require_utf8(title, "the title")
    with project_write(project):  # archived, another database's: refused
        row = Project.get_by_id(project.id)
        number = max(row.next_workspace_number, _next_number(Workspace, Workspace.project == project))
        ws = Workspace.create(project=project, number=number, title=title.strip())
        Project.update(next_workspace_number=number + 1).where(Project.id == project.id).execute()
        row.next_workspace_number = project.next_workspace_number = number + 1
        manifest.write_project(row)
        events.record(project, "project")
    return ws


def list_workspaces(project) -> list[Workspace]:
    project = get_project(project)
    return list(Workspace.select().where(Workspace.project == project).order_by(Workspace.number))


def get_workspace(project, uid: str | int | Workspace) -> Workspace:
    if isinstance(uid, Workspace):
        return uid
    project = get_project(project)
    number = parse_uid(uid, "W")
    ws = Workspace.get_or_none((Workspace.project == project) & (Workspace.number == number))
    if ws is None:
        raise NotFound(f"no workspace W{number} in {project.uid}")
    return ws


def create_session(project, title: str = "") -> Session:
    """Create live session ``S<n>`` with its directory (sessions are never touched by cleanup)."""
    project = get_project(project)
    with project_write(project):
        row = Project.get_by_id(project.id)
        number = max(row.next_session_number, _next_number(Session, Session.project == project))
        session = Session.create(project=project, number=number, title=title)
        Project.update(next_session_number=number + 1).where(Project.id == project.id).execute()
        row.next_session_number = project.next_session_number = number + 1
        (project_dir(row) / session.directory).mkdir(exist_ok=True)
        manifest.write_project(row)
        events.record(project, "project")
    return session


def project_summaries(project=None) -> list[dict]:
    """Every project (or just ``project``) with counts and recorded sizes, in a few aggregate queries.

    The one summary the CLI (``project list|show``), the app's project browser
    and the data sidebar show.  Keys: ``uid``, ``title``, ``directory``,
    ``created_at``, ``jobs``, ``size_bytes`` (sum of the jobs' recorded sizes),
    ``sessions``, ``sessions_bytes``, ``disk_bytes`` (last measured size of the
    whole directory, None if never), ``other_bytes``, ``size_now_bytes`` (the
    size on disk now, as ``cryodesk project size`` says: :func:`cryodesk.core.sizes.current_total`),
    ``size_stale`` (the scan is out of date), ``settings`` and ``workspaces``
    (``[{uid, title, jobs, size_bytes}]``), ``session_rows`` (``[{uid, title, status, size_bytes}]``);
    ``archived_at`` (None unless the
    project is archived) and ``state`` (``"archived"``, ``"moving"``,
    ``"deleting"``, ``"elsewhere"`` — its directory is owned by another
    database: read-only here —, ``"lock unreadable"`` or ``""``).
    """
    from .sizes import current_total, is_stale

    ops = {o.project_id: o for o in ProjectOp.select()}
    projects_q = Project.select().order_by(Project.number)
    jobs_q = Job.select(Job.project, pw.fn.COUNT(Job.id), pw.fn.SUM(Job.size_bytes))
    ws_q = (JobWorkspace.select(JobWorkspace.workspace, pw.fn.COUNT(Job.id), pw.fn.SUM(Job.size_bytes))
            .join(Job))
    sess_q = Session.select(Session.project, pw.fn.COUNT(Session.id), pw.fn.SUM(Session.size_bytes))
    spaces_q = Workspace.select().order_by(Workspace.number)
    if project is not None:
        project = get_project(project)
        projects_q = projects_q.where(Project.id == project.id)
        jobs_q = jobs_q.where(Job.project == project.id)
        ws_q = ws_q.where(Job.project == project.id)
        sess_q = sess_q.where(Session.project == project.id)
        spaces_q = spaces_q.where(Workspace.project == project.id)
    per_project = {pid: (n, s or 0) for pid, n, s in jobs_q.group_by(Job.project).tuples()}
    per_ws = {wid: (n, s or 0) for wid, n, s in ws_q.group_by(JobWorkspace.workspace).tuples()}
    sessions = {pid: (n, s or 0) for pid, n, s in sess_q.group_by(Session.project).tuples()}
    session_rows: dict[int, list] = {}  # live sessions (issue 14): listed by the project browser
    sess_rows_q = Session.select().order_by(Session.number)
    if project is not None:
        sess_rows_q = sess_rows_q.where(Session.project == project.id)
    for srow in sess_rows_q:
        session_rows.setdefault(srow.project_id, []).append(
            {"uid": srow.uid, "title": srow.title, "status": srow.status, "size_bytes": int(srow.size_bytes or 0)})
    spaces: dict[int, list] = {}
    for w in spaces_q:
        n, s = per_ws.get(w.id, (0, 0))
        spaces.setdefault(w.project_id, []).append({"uid": w.uid, "title": w.title, "jobs": n,
                                                    "size_bytes": int(s)})
    rows = []
    for p in projects_q:
        n, s = per_project.get(p.id, (0, 0))
        ns, ss = sessions.get(p.id, (0, 0))
        rows.append({"uid": p.uid, "title": p.title, "directory": p.directory,
                     "created_at": p.created_at.isoformat() if p.created_at else None,
                     "jobs": n, "size_bytes": int(s), "sessions": ns, "sessions_bytes": int(ss),
                     "disk_bytes": p.size_bytes, "other_bytes": int(p.size_other_bytes or 0),
                     "size_now_bytes": current_total(p, s, ss), "size_stale": is_stale(p),
                     "settings": p.settings or {}, "workspaces": spaces.get(p.id, []),
                     "session_rows": session_rows.get(p.id, []),
                     "archived_at": p.archived_at.isoformat() if p.archived_at else None,
                     "state": _state(p, ops.get(p.id), BLOCKING), "kind": p.kind or "cryodesk"})
    return rows


def _state(p: Project, op, blocking) -> str:
    if op is not None and (op.kind, op.phase) in blocking:
        return "moving" if op.kind == "move" else "deleting"
    if p.archived_at is not None:
        return "archived"
    if p.kind == "cryosparc":  # (issue 16) CryoSPARC's own: read-only, no lock of ours is ever looked for
        return "read-only"
    try:
        lock = ownership.read_lock(p.directory)
    except CryodeskError:
        return "lock unreadable"  # (every write says why)
    return "elsewhere" if lock is not None and ownership.problem(p, lock) else ""
