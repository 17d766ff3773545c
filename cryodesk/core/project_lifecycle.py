"""Project lifecycle: archive and unarchive, detach, delete (moves: :mod:`cryodesk.core.project_move`).

* **archive** — the project becomes read-only: every change is refused by the
  write guard ("P1 is archived"); browsing, sizes and exports still work, and
  its directory may be moved to long-term storage.  Recorded in the database
  and in ``project.json`` (``archived_at``), so a database that attaches the
  directory sees it archived too.
* **unarchive** ``[path]`` — checks that the directory (the recorded one, or
  ``path`` where it was moved back to) holds the same project (its id), then
  rebinds the path and makes it writable.
* **detach** — writes every manifest, removes the lock file and the database
  rows; never touches anything else.
* **delete** — a plan (:func:`plan_delete`) of one ``delete_project`` item per
  job, children first, carried out by the deletion service; then the rest
  of the directory (``project.json``, sessions, other files, cryodesk's
  state) goes with the project's rows, through the ``project_op`` journal.

A project with final results is not deleted unless the plan says so
(``include_finals``): finals are the one thing cryodesk promises never to
lose, so deleting them takes a flag the user types and the plan shows
per job.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..base import nofollow
from ..base.errors import DataError, LockedError, Refused, UsageError
from ..base.fsio import tree_size, walk
from ..base.syncfs import sync_filesystem
from ..db import lock_rows, write_transaction
from ..db.models import Connection, Job, Project, ProjectOp, Session, utcnow
from . import deletion, events, manifest, ownership, project_ops
from .deletion import DeletionPlan
from .fsutil import require_project_dir
from .guard import ProjectReadOnly, check_writable, project_write
from .projects import _refuse_nested, _resolve_dir, get_project


def _finish_deletions(project: Project, what: str) -> list:
    """Roll forward a deletion a crash left half-done; refuse while one runs."""
    recovered = deletion.recover(project) if Path(project.directory).is_dir() else []
    if Path(project.directory).is_dir() and deletion.pending(project):
        raise LockedError(f"a deletion is running in {project.uid}; {what} it when it has finished")
    return recovered


def _write_all_manifests(project: Project) -> int:
    """Rewrite project.json, every job.json and every S<n>/session.json (no fsync each: one sync at the end)."""
    pdir = require_project_dir(project.directory)
    manifest.write_project(project)
    manifest.write_sessions(project, pdir)
    n = 0
    batch = []
    for job in Job.select().where(Job.project == project.id).order_by(Job.number).iterator():
        batch.append(job)
        if len(batch) >= 500:
            manifest.write_jobs(batch, pdir)
            n += len(batch)
            batch = []
    manifest.write_jobs(batch, pdir)
    sync_filesystem(pdir)
    return n + len(batch)


# -- archive / unarchive ------------------------------------------------------------------

def archive_project(project) -> Project:
    """Make ``project`` read-only (see the module doc); returns its row."""
    project = get_project(project)
    if project.archived_at is not None:
        raise UsageError(f"{project.uid} is already archived (since {project.archived_at:%Y-%m-%d %H:%M})")
    _finish_deletions(project, "archive")
    with project_write(project):
        row = Project.get_by_id(project.id)
        project_ops.refuse_busy(row, "archive it")
        row.archived_at = utcnow()
        row.save(only=[Project.archived_at])
        _write_all_manifests(row)  # the directory is self-contained while it is away
        events.record(row, "project")
        events.record(None, "projects")
    project.archived_at = row.archived_at
    return row


def unarchive_project(project, path: str | Path | None = None) -> Project:
    """Make an archived project writable again, at its recorded directory or at ``path``."""
    project = get_project(project)
    if project.archived_at is None:
        raise UsageError(f"{project.uid} is not archived")
    target = _resolve_dir(path) if path is not None else Path(project.directory)
    if not (target / manifest.PROJECT_MANIFEST).is_file() or target.is_symlink():
        where = "" if path is not None else "; if it was moved, say where: --path NEWDIR"
        raise DataError(f"{target} holds no project.json: is it back from long-term storage and its disk "
                        f"mounted?{where} (nothing was changed)")
    doc = manifest.read_json(target / manifest.PROJECT_MANIFEST)
    if not project.uuid or doc.get("id") != project.uuid:
        raise DataError(f"{target} holds another project (id {str(doc.get('id'))[:8]}) than {project.uid} "
                        f"(id {str(project.uuid)[:8]}); nothing was changed")
    lock = ownership.read_lock(target)
    if lock is not None:
        why = ownership.problem(project, lock)
        if why:
            raise ownership.NotOwned(why)
    if target != Path(project.directory):
        other = Project.get_or_none((Project.directory == str(target)) & (Project.id != project.id))
        if other is not None:
            raise UsageError(f"{target} is the directory of {other.uid}; nothing was changed")
        _refuse_nested(target, exclude=project)
    with write_transaction():
        lock_rows(Project, [project.id])
        row = Project.get_by_id(project.id)
        if row.archived_at is None:
            raise UsageError(f"{project.uid} is not archived")
        if project_ops.current(row.id) is not None:
            raise LockedError(f"{project.uid} is being moved; unarchive it when that has finished")
        Project.update(directory=str(target), archived_at=None).where(Project.id == row.id).execute()
        row.directory, row.archived_at = str(target), None
        if lock is None:  # e.g. copied back without cryodesk's hidden state: this database's again
            ownership.write_lock(target, row.uuid, row.uid, "unarchived")
        manifest.write_project(row)
        events.record(row, "project")
        events.record(None, "projects")
    project.directory, project.archived_at = row.directory, None
    return row


# -- detach ------------------------------------------------------------------------------------

def detach_project(project) -> dict:
    """Remove ``project`` from this database, leaving its directory attachable elsewhere.

    Writes every manifest and removes the lock file first (nothing else is
    touched).  A project whose directory another database owns loses only
    this database's (stale) rows.  An archived project whose directory is
    away (on long-term storage) loses its rows; its lock, wherever the
    directory is, still names this database: attach it elsewhere with
    ``--force``.  Returns what was done.
    """
    project = get_project(project)
    pdir = Path(project.directory)
    present = (pdir / manifest.PROJECT_MANIFEST).is_file() and not pdir.is_symlink()
    lock = ownership.read_lock(pdir) if present else None
    foreign = lock is not None and ownership.problem(project, lock) is not None
    out = {"uid": project.uid, "directory": str(pdir), "manifests": 0, "lock_removed": False,
           "foreign": foreign, "directory_present": present}
    if not present and project.archived_at is None:
        raise DataError(f"{pdir} is missing: is its disk mounted? Detach writes the project's manifests "
                        "there first (nothing was changed)")
    if present and not foreign:
        _finish_deletions(project, "detach")
    with write_transaction():
        lock_rows(Project, [project.id])
        row = Project.get_by_id(project.id)
        project_ops.refuse_busy(row, "detach it")
        if present and not foreign:
            out["manifests"] = _write_all_manifests(row)
        ids = [row.id]
        Project.delete().where(Project.id.in_(ids)).execute()  # workspaces, jobs, edges, outputs: cascade
        events.record(None, "projects")
        events.record(row.id, "project")
        if present and not foreign:
            ownership.remove_lock(pdir)  # last: a failure rolls the rows back and keeps the lock
            out["lock_removed"] = True
    out["owner"] = ownership.describe(lock) if foreign else None
    return out


# -- delete -------------------------------------------------------------------------------------

@dataclass
class ProjectDeletePlan:
    """What ``project delete`` removes: the jobs (deletion-service items) and the rest of the directory."""

    project: str
    directory: str
    include_finals: bool
    plan: DeletionPlan
    finals: list[str] = field(default_factory=list)
    sessions: list[dict] = field(default_factory=list)
    rest: list[dict] = field(default_factory=list)  # top-level entries that are not job directories
    links: int = 0  # symlinks removed as links (their targets are never touched)

    @property
    def bytes(self) -> int:
        return self.plan.bytes + sum(r["bytes"] for r in self.rest)

    def to_dict(self) -> dict:
        return {"action": "delete_project", "project": self.project, "directory": self.directory,
                "include_finals": self.include_finals, "finals": self.finals, "bytes": self.bytes,
                "jobs_bytes": self.plan.bytes, "jobs": len(self.plan.items), "sessions": self.sessions,
                "rest": self.rest, "links": self.links, "plan": self.plan.to_dict()}


def _children_first(project: Project) -> list[Job]:
    """Every job of ``project``, each after all of its descendants."""
    jobs = {j.id: j for j in Job.select().where(Job.project == project.id)}
    children: dict[int, set[int]] = defaultdict(set)
    for child, parent in Connection.select(Connection.child, Connection.parent).where(
            Connection.project == project.id).tuples():
        children[parent].add(child)
    order: list[Job] = []
    done: set[int] = set()
    for start in sorted(jobs, key=lambda i: -jobs[i].number):
        stack = [(start, iter(sorted(children[start])))]
        if start in done:
            continue
        seen = {start}
        while stack:
            node, it = stack[-1]
            nxt = next((c for c in it if c not in done and c not in seen), None)
            if nxt is None:
                stack.pop()
                if node not in done:
                    done.add(node)
                    order.append(jobs[node])
            else:
                seen.add(nxt)
                stack.append((nxt, iter(sorted(children[nxt]))))
    return order


def plan_delete(project, include_finals: bool = False) -> ProjectDeletePlan:
    """Plan deleting the whole ``project``; refused for archived, foreign, busy projects, and finals (see above)."""
    project = get_project(project)
    try:
        row = check_writable(project)
    except ProjectReadOnly as exc:
        raise ProjectReadOnly(f"{exc}; a project is deleted only while it is writable") from None
    pdir = require_project_dir(row.directory)
    project_ops.refuse_busy(row, "delete it")
    if deletion.pending(row):
        raise LockedError(f"a deletion is unfinished in {row.uid}; run any command that writes to it first")
    mounts = [m for m in nofollow.mounts_below(pdir) if Path(m) != pdir]
    if mounts:
        raise Refused(row.uid, f"{mounts[0]} is the mount point of another file system inside the project; "
                               "unmount it first (cryodesk never deletes another file system's files)")
    finals = [f"J{n}" for (n,) in Job.select(Job.number).where((Job.project == row.id) & Job.is_final)
              .order_by(Job.number).tuples()]
    if finals and not include_finals:
        raise Refused(row.uid, f"it has final results ({', '.join(finals)}), which cryodesk never deletes "
                               f"unasked: unmark them first ('cryodesk job final {row.uid} {' '.join(finals)} "
                               "--unset'), or delete them with the project: --include-finals (the plan lists them)")
    require = {"project_id": row.uuid, "include_finals": bool(include_finals)}
    items = []
    job_dirs = set()
    for job in _children_first(row):
        item = deletion.delete_item(pdir, job, "the whole project is deleted", require=require)
        item.action = "delete_project"
        if job.is_final:
            item.reason = "final result, deleted with the project (--include-finals)"
        elif job.is_ancestor_of_final:
            item.reason = "ancestor of a final result, deleted with the project (--include-finals)"
        items.append(item)
        job_dirs.add(job.directory)
    sessions = [{"uid": f"S{n}", "bytes": tree_size(pdir / f"S{n}")} for (n,) in
                Session.select(Session.number).where(Session.project == row.id).order_by(Session.number).tuples()]
    rest = []
    for entry in sorted(os.scandir(pdir), key=lambda e: e.name):
        if entry.name in job_dirs:
            continue
        rest.append({"path": entry.name, "bytes": tree_size(pdir / entry.name),
                     "link": entry.is_symlink()})
    links = len(walk(pdir).links)
    plan = DeletionPlan(row.uid, items)
    return ProjectDeletePlan(row.uid, str(pdir), bool(include_finals), plan, finals, sessions, rest, links)


def _tombstone(pdir: Path, project: Project) -> Path:
    return pdir.with_name(f".{pdir.name}.cryodesk-deleted-{(project.uuid or 'x')[:8]}")


def execute_delete(project, plan: ProjectDeletePlan, progress=None, cancel=None) -> dict:
    """Carry out a :class:`ProjectDeletePlan`: its jobs through the deletion service, then the rest.

    Returns ``{"deleted": bool, "results": [...], "errors": [...], "bytes": n}``;
    when an item is skipped (its recheck failed) the project stays, with the
    jobs that were deleted gone.
    """
    project = get_project(project)
    if plan.project != project.uid or Path(plan.directory) != Path(project.directory):
        raise DataError(f"the plan is for {plan.project} at {plan.directory}; nothing was deleted")
    results = deletion.execute(project, plan.plan, progress=progress, cancel=cancel) if plan.plan.items else []
    out = {"deleted": False, "results": [asdict(r) for r in results], "errors": [],
           "bytes": sum(r.bytes for r in results if r.ok)}
    failed = [r for r in results if not r.ok]
    if failed:
        out["errors"] = [f"{r.job}: {r.message}" for r in failed]
        return out
    pdir = Path(project.directory)
    tomb = _tombstone(pdir, project)
    with project_ops.op_lock(tomb):
        with project_write(project):
            left = Job.select(Job.number).where(Job.project == project.id).limit(5).tuples()
            if left:
                out["errors"] = [f"jobs {', '.join(f'J{n}' for (n,) in left)} were made meanwhile; "
                                 f"{project.uid} was not deleted"]
                return out
            op = project_ops.begin(project, "delete", "removing", pdir, tomb)
        if progress is not None:
            progress(1.0, f"removing the rest of {pdir}")
        out["errors"] = project_ops.advance(op)
    out["deleted"] = Project.get_or_none(Project.id == project.id) is None
    out["bytes"] += sum(r["bytes"] for r in plan.rest)
    return out


def recover_all() -> list[str]:
    """Finish every move or delete a crashed process left (lifecycle commands run this first)."""
    return project_ops.recover_all()


def pending_ops() -> list[dict]:
    return [{"project_id": o.project_id, "kind": o.kind, "phase": o.phase, "source": o.source, "dest": o.dest,
             "pid": o.pid, "host": o.host} for o in ProjectOp.select()]


