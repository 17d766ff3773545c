"""Register another program's project in the database: its jobs, edges, outputs, flags (one transaction).

Opening writes only the database (and, for RELION, nothing on disk either): the
program's own files are read, never touched.  Opening again re-reads them: the
rows are rebuilt from what is on disk now (RELION's final flags from cryodesk's
state file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import peewee as pw

from ...base.errors import UsageError
from ...db.models import Connection, Job, JobWorkspace, OutputFile, Project, Session, Workspace, db, utcnow
from .. import events


@dataclass
class ForeignJob:
    number: int
    path: str  # its directory relative to the project ("Class2D/job008", "J5")
    type: str
    title: str = ""
    status: str = "completed"
    params: dict = field(default_factory=dict)
    parents: list[tuple[int, str, str]] = field(default_factory=list)  # (parent number, slot, output)
    workspaces: list[int] = field(default_factory=lambda: [1])
    is_final: bool = False
    is_ancestor_of_final: bool = False
    outputs: list[tuple[str, str, int, str]] = field(default_factory=list)  # (group, kind, version, path)
    error: str | None = None
    created_at: object = None


@dataclass
class ForeignProject:
    kind: str
    title: str
    jobs: list[ForeignJob]
    workspaces: dict[int, str] = field(default_factory=lambda: {1: "All jobs"})
    sessions: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what was shown but not understood


def _chunks(rows, n=500):
    for i in range(0, len(rows), n):
        yield rows[i:i + n]


def register(path: Path, doc: ForeignProject) -> Project:
    """Create or rebuild the project at ``path`` from ``doc`` (the database only)."""
    with db.atomic():
        project = Project.get_or_none(Project.directory == str(path))
        if project is not None and (project.kind or "cryodesk") != doc.kind:
            raise UsageError(f"{path} is registered as a {project.kind} project ({project.uid}); "
                             f"it now looks like a {doc.kind} project: remove {project.uid} first")
        if project is None:
            for p in Project.select(Project.number, Project.directory):
                other = Path(p.directory)
                if other in path.parents or path in other.parents:
                    raise UsageError(f"{path} and the directory of project P{p.number} ({other}) are nested; "
                                     "a project directory never lies inside another")
            number = (Project.select(pw.fn.MAX(Project.number)).scalar() or 0) + 1
            project = Project.create(number=number, title=doc.title, directory=str(path), kind=doc.kind)
        else:
            Job.delete().where(Job.project == project).execute()  # edges, links, outputs cascade
            Workspace.delete().where(Workspace.project == project).execute()
            Session.delete().where(Session.project == project).execute()
            project.title = doc.title
        project.next_job_number = max([j.number for j in doc.jobs] + [0]) + 1
        project.next_workspace_number = max(list(doc.workspaces) + [0]) + 1
        project.next_session_number = max(list(doc.sessions) + [0]) + 1
        project.save()
        Workspace.insert_many([{"project": project.id, "number": n, "title": t}
                               for n, t in sorted(doc.workspaces.items())]).execute()
        ws = dict(Workspace.select(Workspace.number, Workspace.id).where(Workspace.project == project).tuples())
        if doc.sessions:
            Session.insert_many([{"project": project.id, "number": n, "title": t}
                                 for n, t in sorted(doc.sessions.items())]).execute()
        now = utcnow()
        rows = [{"project": project.id, "number": j.number, "type": j.type[:64], "title": j.title,
                 "status": j.status, "params": j.params, "path": j.path, "is_final": j.is_final,
                 "is_ancestor_of_final": j.is_ancestor_of_final, "error": j.error,
                 "created_at": j.created_at or now} for j in doc.jobs]
        for chunk in _chunks(rows):
            Job.insert_many(chunk).execute()
        ids = dict(Job.select(Job.number, Job.id).where(Job.project == project).tuples())
        links, edges, outs = [], [], []
        for j in doc.jobs:
            jid = ids[j.number]
            links += [{"job": jid, "workspace": ws[w]} for w in dict.fromkeys(j.workspaces) if w in ws]
            for pos, (parent, slot, output) in enumerate(j.parents):
                if parent in ids:
                    edges.append({"project": project.id, "child": jid, "parent": ids[parent], "slot": slot[:64],
                                  "output": output[:64], "position": pos})
            outs += [{"job": jid, "group": g[:64], "kind": k[:32], "version": v, "path": p}
                     for g, k, v, p in j.outputs]
        for model, items in ((JobWorkspace, links), (Connection, edges), (OutputFile, outs)):
            for chunk in _chunks(items):
                model.insert_many(chunk).execute()
        events.record(None, "projects")
        events.record(project, "project")
        events.record(project, "added", None)  # (many: an open window reloads the project's tree)
    return Project.get_by_id(project.id)
