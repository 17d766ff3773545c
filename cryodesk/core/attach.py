"""Attach a project directory: rebuild its database rows from its manifests."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from ..base.errors import DataError, UsageError
from ..db.models import JOB_STATUSES, Connection, Job, JobWorkspace, OutputFile, Project, Session, Workspace, db
from . import events, manifest, registry
from .finals import recompute_ancestor_flags
from .projects import _next_number, _resolve_dir
from .uids import parse_uid


def _parse_dt(text):
    return _dt.datetime.fromisoformat(text) if text else None


def _checked_job_doc(job_dir: Path) -> dict:
    """A job manifest, validated enough that attaching it cannot corrupt the database."""
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
    if not isinstance(d.get("settings", {}), dict):
        raise bad("settings is not a mapping")
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
                    settings=d.get("settings") or {},
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
        events.record(None, "projects")
    return project
