"""The write guard: read what a decision depends on and write the change in one locked transaction.

Every service that judges a rule and then changes a project — clear, delete,
cleanup, mark final, set parameters, connect, mark complete, start a job —
does both inside :func:`project_write`.  The guard holds on every backend:

* SQLite: ``BEGIN IMMEDIATE`` (the database's write lock, from the first statement);
* PostgreSQL: ``SELECT ... FOR UPDATE`` on the project row, then on the job rows
  involved (in id order).  Every guarded writer of a project takes the project
  row first, so they run one after another, and each reads the state the
  previous one committed.

Read the rows *inside* the block: a row read before it may be stale.

It is also THE place that refuses writes to a project this database may not
change (:func:`write_refusal`): one that is archived, one whose directory
another database owns (its lock file, :mod:`cryodesk.core.ownership`), one
being moved or deleted.  And before the first write of a command (outer
:func:`project_write`) it rewrites from the database the manifests an interrupted
write left uncertain (:func:`repair`, the records of :mod:`cryodesk.core.pending`);
a write that rolls back has the manifests it wrote ahead rewritten at once.  The few
writers that do not judge a rule
(workspace creation, links, queueing, the deletion executor) call
:func:`check_writable` instead.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path

from ..base.errors import DataError, NotFound
from ..db import lock_rows, write_transaction
from ..db.models import Job, Project, db
from . import manifest, pending, project_ops


class ProjectReadOnly(DataError):
    """This database may not change the project now: archived, owned by another database, being moved.

    A :class:`DataError`, so that the deletion executor treats it as a failed
    item (its files are put back), never as a crash.
    """


def archived_message(project: Project) -> str:
    since = project.archived_at.isoformat(sep=" ", timespec="minutes") if project.archived_at else "?"
    return (f"{project.uid} is archived (since {since}): it can be browsed, measured and exported, not changed; "
            f"'cryodesk project unarchive {project.uid}' makes it writable again")


READ_ONLY_KINDS = {"cryosparc": "managed by CryoSPARC — read-only"}


def kind_refusal(project: Project) -> str | None:
    """Why a project of another program may never be written by cryodesk (CryoSPARC's), or None."""
    why = READ_ONLY_KINDS.get(getattr(project, "kind", None) or "cryodesk")
    return f"{project.uid} is {why}: cryodesk only reads it ({project.directory})" if why else None


def write_refusal(project: Project, allow_archived: bool = False) -> str | None:
    """Why ``project`` (a row as committed now) may not be written by this database, or None.

    A project without a lock file (made before lock files) is adopted here.
    ``allow_archived``: for the lifecycle actions an archived project allows
    (move, delete's refusal says so itself).  Another program's read-only project
    (:func:`kind_refusal`) is refused first, before anything looks for lock files.
    """
    why = kind_refusal(project)
    if why:
        return why
    if project.archived_at is not None and not allow_archived:
        return archived_message(project)
    why = project_ops.blocking(project)
    if why:
        return why
    return manifest.owner_refusal(project)


def check_writable(project, allow_archived: bool = False) -> Project:
    """The project's row as committed now; raises :class:`ProjectReadOnly` if it may not be written."""
    project_id = project.id if isinstance(project, Project) else int(project)
    row = Project.get_or_none(Project.id == project_id)
    if row is None:
        raise NotFound(f"project {getattr(project, 'uid', project_id)} no longer exists in this database")
    why = write_refusal(row, allow_archived)
    if why:
        raise ProjectReadOnly(why)
    return row


def _row_now(project_id: int) -> Project | None:
    """The columns :func:`write_refusal` reads, in one plain query (every guarded write runs it)."""
    database = db.obj
    r = database.execute_sql(f"SELECT id, number, directory, uuid, archived_at, kind FROM project WHERE id = "
                             f"{database.param}", [project_id]).fetchone()
    if r is None:
        return None
    row = Project(id=r[0], number=r[1], directory=r[2], uuid=r[3], kind=r[5])  # (not saved: read only)
    row.archived_at = Project.archived_at.python_value(r[4])
    return row


def may_write(project) -> bool:
    """True if this database may write ``project`` now (for callers that skip rather than fail)."""
    try:
        check_writable(project)
    except DataError:
        return False
    return True


@contextmanager
def project_write(project, job_ids=(), allow_archived: bool = False):
    """A write transaction holding ``project``'s row and the rows of ``job_ids``; refused (see the module doc)."""
    project_id = project.id if isinstance(project, Project) else int(project)
    outer = not db.obj.in_transaction()
    if outer:
        project_ops.recover_abandoned(project_id)  # a move or delete whose process died: finished first
        if isinstance(project, Project) and project.directory:
            repair_if_any(project)  # manifests a dead process left uncertain (the app's next write too)
    try:
        with _locked(project, project_id, job_ids, allow_archived):
            yield
    except BaseException:
        if outer:  # rolled back: manifests written ahead of it are rewritten from the database (core.pending)
            pending.sweep()
        raise


@contextmanager
def _locked(project, project_id: int, job_ids, allow_archived: bool):
    with write_transaction():
        lock_rows(Project, [project_id])
        row = _row_now(project_id)
        if row is None:
            raise NotFound(f"project {getattr(project, 'uid', project_id)} no longer exists in this database")
        why = write_refusal(row, allow_archived)
        if why:
            raise ProjectReadOnly(why)
        if job_ids:
            lock_rows(Job, job_ids)
        yield


def fresh_jobs(job_ids) -> list[Job]:
    """The jobs ``job_ids`` as committed now (call inside :func:`project_write`), in the given order."""
    ids = [int(i) for i in job_ids]
    by_id = {}
    for k in range(0, len(ids), 900):
        by_id.update({j.id: j for j in Job.select().where(Job.id.in_(ids[k:k + 900]))})
    return [by_id[i] for i in ids if i in by_id]


# -- manifests an interrupted write left uncertain (core.pending) --------------------------------

_repairing = threading.local()


def repair_if_any(project) -> None:
    """:func:`repair` when a record may be left (one directory listing otherwise); never raises."""
    if getattr(_repairing, "on", False):
        return
    d = pending.pending_dir(Path(project.directory))
    try:
        if not any(n.endswith((".json", ".tmp")) for n in os.listdir(d)):
            return
    except OSError:
        return
    try:
        repair(project)
    except Exception:  # noqa: BLE001 - a courtesy before a write: the write itself says what is wrong
        pass


def repair(project) -> list[str]:
    """Rewrite from the database the manifests that records a dead process left name (:mod:`.pending`).

    Under the write guard, so no writer of this database interleaves.  Returns the uids repaired;
    a record whose manifests cannot be written yet (a full disk) stays for the next command.
    """
    pending.sweep()
    pdir = Path(project.directory)
    pending.collect_temp(pdir)
    found = pending.stale(pdir)
    if not found:
        return []
    out: list[str] = []
    _repairing.on = True
    try:
        with project_write(project):
            for path, uids in found:
                if not path.exists():
                    continue  # settled meanwhile by the process that wrote it
                out += manifest.rewrite_from_db(pdir, uids)
                try:
                    path.unlink()
                except OSError:
                    pass
    finally:
        _repairing.on = False
    return sorted(set(out), key=lambda u: (u[0], int(u[1:]) if u[1:].isdigit() else 0))
