"""Projects, workspaces and sessions: creation, lookup and re-attachment."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

import peewee as pw

from ..db import Connection, Job, JobWorkspace, OutputFile, Project, Session, Workspace, db
from . import manifest
from .errors import CryodeskError, DataError, NotFound, UsageError
from .uids import parse_uid


def _resolve_dir(directory: str | Path) -> Path:
    return Path(directory).expanduser().resolve()


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
    path = _resolve_dir(directory)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{path} exists and is not a directory")
    if (path / manifest.PROJECT_MANIFEST).exists():
        raise UsageError(f"{path} already holds a cryodesk project; use 'cryodesk project attach {path}'")
    if path.exists() and any(path.iterdir()):
        raise UsageError(f"{path} is not empty; a project needs a new or empty directory")
    with db.atomic():
        if Project.get_or_none(Project.directory == str(path)):
            raise UsageError(f"{path} is already a project directory")
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CryodeskError(f"cannot create project directory {path}: {exc.strerror}") from None
        project = Project.create(number=_next_number(Project), title=title.strip(), directory=str(path))
        manifest.write_project(project)
    return project


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
    with db.atomic():
        number = max(project.next_workspace_number, _next_number(Workspace, Workspace.project == project))
        ws = Workspace.create(project=project, number=number, title=title.strip())
        Project.update(next_workspace_number=number + 1).where(Project.id == project.id).execute()
        project.next_workspace_number = number + 1
        manifest.write_project(project)
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
    with db.atomic():
        number = max(project.next_session_number, _next_number(Session, Session.project == project))
        session = Session.create(project=project, number=number, title=title)
        Project.update(next_session_number=number + 1).where(Project.id == project.id).execute()
        project.next_session_number = number + 1
        (project_dir(project) / session.directory).mkdir(exist_ok=True)
        manifest.write_project(project)
    return session


def _parse_dt(text):
    return _dt.datetime.fromisoformat(text) if text else None


def _checked_job_doc(job_dir: Path) -> dict:
    """A job manifest, validated enough that attaching it cannot corrupt the database."""
    from ..db import JOB_STATUSES
    from . import registry

    where = job_dir / manifest.JOB_MANIFEST
    d = manifest.read_json(where)

    def bad(why):
        return DataError(f"{where}: {why}; fix or move that job directory, then attach again")

    if d.get("uid") != job_dir.name:
        raise bad(f"uid {d.get('uid')!r} does not match its directory {job_dir.name}")
    try:
        registry.get(str(d.get("type")))
    except UsageError:
        raise bad(f"unknown job type {d.get('type')!r}") from None
    if not isinstance(d.get("params", {}), dict):
        raise bad("params is not a mapping")
    if d.get("status", "building") not in JOB_STATUSES:
        raise bad(f"unknown status {d.get('status')!r}")
    for i in d.get("inputs", []):
        if not isinstance(i, dict) or not {"slot", "parent", "output"} <= set(i):
            raise bad(f"malformed input {i!r}")
    for o in d.get("outputs", []):
        if not isinstance(o, dict) or not {"group", "kind", "path"} <= set(o):
            raise bad(f"malformed output {o!r}")
    return d


def attach_project(directory: str | Path) -> Project:
    """Re-create a project's database rows from its manifests (``project.json`` + ``J*/job.json``).

    The project gets a new ``P<n>`` in this database; workspace, job and
    session numbers are kept, so every connection and path stays valid.
    """
    from .finals import recompute_ancestor_flags

    path = _resolve_dir(directory)
    doc = manifest.read_json(path / manifest.PROJECT_MANIFEST)
    if Project.get_or_none(Project.directory == str(path)):
        raise UsageError(f"{path} is already attached to this database")
    job_docs = []
    for job_dir in sorted(path.glob("J*")):
        if job_dir.is_dir() and not job_dir.is_symlink() and (job_dir / manifest.JOB_MANIFEST).exists():
            job_docs.append(_checked_job_doc(job_dir))
    with db.atomic():
        project = Project.create(
            number=_next_number(Project),
            title=doc.get("title") or path.name,
            directory=str(path),
            settings=doc.get("settings") or {},
            next_job_number=doc.get("next_job_number", 1),
            next_workspace_number=doc.get("next_workspace_number", 1),
            next_session_number=doc.get("next_session_number", 1),
        )
        workspaces = {}
        for w in doc.get("workspaces", []):
            ws = Workspace.create(project=project, number=parse_uid(w["uid"], "W"), title=w.get("title", ""))
            workspaces[w["uid"]] = ws
        for s in doc.get("sessions", []):
            Session.create(project=project, number=parse_uid(s["uid"], "S"), title=s.get("title", ""),
                           status=s.get("status", "paused"))
        jobs = {}
        for d in job_docs:
            try:
                job = Job.create(
                    project=project, number=parse_uid(d["uid"], "J"), type=d["type"], title=d.get("title", ""),
                    status=d.get("status", "building"), params=d.get("params") or {},
                    size_bytes=d.get("size_bytes", 0), is_final=bool(d.get("is_final")),
                    error=d.get("error"), status_history=d.get("status_history") or [],
                    created_at=_parse_dt(d.get("created_at")) or _dt.datetime.utcnow(),
                    queued_at=_parse_dt(d.get("queued_at")), started_at=_parse_dt(d.get("started_at")),
                    completed_at=_parse_dt(d.get("completed_at")),
                )
            except KeyError as exc:
                raise DataError(f"job manifest for {d.get('uid', '?')} lacks {exc}") from None
            jobs[d["uid"]] = job
            for wuid in d.get("workspaces", []):
                if wuid in workspaces:
                    JobWorkspace.create(job=job, workspace=workspaces[wuid])
            for o in d.get("outputs", []):
                OutputFile.create(job=job, group=o["group"], kind=o["kind"], version=o.get("version", 0),
                                  path=o["path"], size_bytes=o.get("size_bytes", 0))
        for d in job_docs:
            for pos, c in enumerate(d.get("inputs", [])):
                parent = jobs.get(c["parent"])
                if parent is None:
                    raise DataError(f"{d['uid']} reads from {c['parent']}, which is not in {path}")
                Connection.create(project=project, child=jobs[d["uid"]], slot=c["slot"], parent=parent,
                                  output=c["output"], version=c.get("version"), position=pos)
        top = max([j.number for j in jobs.values()], default=0)
        if project.next_job_number <= top:
            project.next_job_number = top + 1
            project.save()
        recompute_ancestor_flags(project, write_manifests=False)
    return project
