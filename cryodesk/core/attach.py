"""Attach a project directory: rebuild its database rows from its manifests."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from ..base.errors import DataError, UsageError
from ..db.models import JOB_STATUSES, Connection, Job, JobWorkspace, OutputFile, Project, Session, Workspace, db
from . import events, manifest, registry
from .finals import recompute_ancestor_flags
from .projects import _next_number, _resolve_dir
from .uids import MAX_NUMBER, parse_uid


def _parse_dt(text):
    return _dt.datetime.fromisoformat(text) if text else None


class _Checker:
    """Type checks of one manifest; every problem is a DataError naming the file."""

    def __init__(self, where: Path, advice: str):
        self.where, self.advice = where, advice

    def bad(self, why: str) -> DataError:
        return DataError(f"{self.where}: {why}; {self.advice}")

    def kind(self, d: dict, key: str, types, default=None, what: str = ""):
        value = d.get(key, default)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool) and bool not in (
                types if isinstance(types, tuple) else (types,))):
            raise self.bad(f"{key} is not {what or getattr(types, '__name__', types)} (it is {value!r})")
        return value

    def count(self, d: dict, key: str, default: int = 1) -> int:
        value = self.kind(d, key, int, default, "a whole number")
        if value is None or not 0 <= value <= MAX_NUMBER:
            raise self.bad(f"{key} is {value!r}, not a number from 0 to {MAX_NUMBER}")
        return value

    def date(self, d: dict, key: str):
        value = self.kind(d, key, str, None, "a date")
        try:
            return _parse_dt(value)
        except ValueError:
            raise self.bad(f"{key} is {value!r}, not a date (YYYY-MM-DDTHH:MM:SS)") from None

    def uid(self, value, prefix: str, what: str) -> int:
        try:
            return parse_uid(value if isinstance(value, str) else "", prefix)
        except UsageError:
            raise self.bad(f"{what} {value!r} is not a {prefix}<number> identifier") from None

    def entries(self, d: dict, key: str, required: set[str]) -> list[dict]:
        value = self.kind(d, key, list, [], "a list")
        for e in value:
            if not isinstance(e, dict) or not required <= set(e):
                raise self.bad(f"malformed {key.rstrip('s')} {e!r}")
        return value


def _checked_project_doc(path: Path) -> dict:
    where = path / manifest.PROJECT_MANIFEST
    d = manifest.read_json(where)
    c = _Checker(where, "fix it, then attach again")
    c.kind(d, "title", str)
    c.kind(d, "settings", dict, {}, "a mapping")
    for key in ("next_job_number", "next_workspace_number", "next_session_number"):
        c.count(d, key)
    for w in c.entries(d, "workspaces", {"uid"}):
        c.uid(w["uid"], "W", "workspace")
        c.kind(w, "title", str)
    for s_ in c.entries(d, "sessions", {"uid"}):
        c.uid(s_["uid"], "S", "session")
        c.kind(s_, "title", str)
        c.kind(s_, "status", str)
    return d


def _checked_job_doc(job_dir: Path) -> dict:
    """A job manifest, validated enough that attaching it cannot corrupt the database."""
    where = job_dir / manifest.JOB_MANIFEST
    d = manifest.read_json(where)
    c = _Checker(where, "fix or move that job directory, then attach again")
    bad = c.bad
    if d.get("uid") != job_dir.name:
        raise bad(f"uid {d.get('uid')!r} does not match its directory {job_dir.name}")
    c.uid(d["uid"], "J", "uid")
    try:
        registry.get(str(d.get("type")))
    except UsageError:
        raise bad(f"unknown job type {d.get('type')!r}") from None
    c.kind(d, "params", dict, {}, "a mapping")
    c.kind(d, "settings", dict, {}, "a mapping")
    c.kind(d, "title", str)
    c.kind(d, "error", str)
    c.kind(d, "status_history", list, [], "a list")
    c.kind(d, "workspaces", list, [], "a list")
    c.count(d, "size_bytes", 0)
    if not isinstance(d.get("is_final", False), bool):
        raise bad(f"is_final is {d.get('is_final')!r}, not true or false")
    if d.get("status", "building") not in JOB_STATUSES:
        raise bad(f"unknown status {d.get('status')!r}")
    for key in ("created_at", "queued_at", "started_at", "completed_at"):
        c.date(d, key)
    for i in c.entries(d, "inputs", {"slot", "parent", "output"}):
        c.uid(i["parent"], "J", "input parent")
        if i.get("version") is not None:
            c.count(i, "version", 0)
    for o in c.entries(d, "outputs", {"group", "kind", "path"}):
        if not all(isinstance(o[k], str) for k in ("group", "kind", "path")):
            raise bad(f"malformed output {o!r}")
        c.count(o, "version", 0)
        c.count(o, "size_bytes", 0)
    return d


def attach_project(directory: str | Path) -> Project:
    """Re-create a project's database rows from its manifests (``project.json`` + ``J*/job.json``).

    The project gets a new ``P<n>`` in this database; workspace, job and
    session numbers are kept, so every connection and path stays valid.
    """
    path = _resolve_dir(directory)
    doc = _checked_project_doc(path)
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
