"""The journal of project moves and deletes: one ``project_op`` row per operation, advanced phase by phase.

A move or a delete changes where (or whether) a whole project directory
exists, and the database must point at one complete copy whatever happens.
Each is written to the ``project_op`` table before anything is touched and
advanced one phase at a time; every phase is idempotent, so a process killed
at any point is finished (or, before the new copy was verified, rolled back)
by the next process that writes to the project (:func:`recover_abandoned`,
called by the write guard) or runs a lifecycle command
(:func:`recover_all`).

Phases of a **move** (``source`` → ``dest``):

``renaming``  one file system: ``rename(source, dest)`` (atomic), then switch;
``copying``   across file systems: the copy is built in ``temp`` (beside ``dest``) and
              verified.  Killed here: ``temp`` is removed, the project stays at ``source``;
``verified``  the copy in ``temp`` is complete: ``rename(temp, dest)``, then switch;
``cleanup``   the database points at ``dest`` (the switch changed it in the same
              transaction that set this phase): ``source`` is removed.

Phases of a **delete** (``source`` → a tombstone ``dest`` beside it; the jobs were
deleted before, through the deletion service):

``removing``  rename the directory to the tombstone, then delete the project's rows;
``cleanup``   the rows are gone: the tombstone is removed.

While a phase before ``cleanup`` runs the project is not writable
(:func:`blocking`).  The process running an operation holds its *op lock*
(an ``flock`` on ``.<dest name>.cryodesk-op.lock`` beside ``dest``, dropped by
the kernel if it dies): recovery never touches an operation whose process is
alive.  Trees are removed with :func:`cryodesk.base.nofollow.remove_tree`:
never following a link, never entering another file system.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import socket
from contextlib import contextmanager
from pathlib import Path

from ..base import nofollow, trashworker
from ..base.errors import DataError, LockedError, Refused
from ..base.fsio import fsync_dir
from ..db import lock_rows, write_transaction
from ..db.models import ACTIVE_STATUSES, Job, Project, ProjectOp, db
from . import events

log = logging.getLogger("cryodesk.project_ops")

BLOCKING = {("move", "renaming"), ("move", "copying"), ("move", "verified"), ("delete", "removing")}
#: tests set a hook here: called with the name of each step (a crash test kills the process there)
STEP_HOOK = None


def _step(name: str) -> None:
    if STEP_HOOK is not None:
        STEP_HOOK(name)


# -- the op lock ---------------------------------------------------------------------

def op_lock_path(dest: Path | str) -> Path:
    dest = Path(dest)
    return dest.with_name(f".{dest.name}.cryodesk-op.lock")


@contextmanager
def op_lock(dest: Path | str, wait: bool = False):
    """Hold the op lock of the operation whose destination is ``dest``; LockedError if its process is alive."""
    path = op_lock_path(dest)
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise DataError(f"cannot make the lock {path}: {exc.strerror or exc} (nothing was changed)") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except OSError as exc:
            os.close(fd)
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                raise LockedError(f"another cryodesk process is moving or deleting this project ({path})") from None
            raise
        try:  # the file we locked must still be the one at that path (a finished op unlinks it)
            same = os.fstat(fd).st_ino == os.lstat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield
    finally:
        try:
            path.unlink()
        except OSError:
            pass
        os.close(fd)


# -- reading ----------------------------------------------------------------------------

def current(project_id: int) -> ProjectOp | None:
    # every guarded write asks this: one plain query for the common answer (none), without
    # peewee building the SQL (which costs more than the query itself here)
    database = db.obj
    if database.execute_sql(f"SELECT 1 FROM project_op WHERE project_id = {database.param}",
                            [int(project_id)]).fetchone() is None:
        return None
    return ProjectOp.get_or_none(ProjectOp.project_id == int(project_id))


def blocking(project: Project) -> str | None:
    """Why ``project`` may not be written while an operation runs on it (None: no such operation)."""
    op = current(project.id)
    if op is None or (op.kind, op.phase) not in BLOCKING:
        return None
    what = f"being moved to {op.dest}" if op.kind == "move" else "being deleted"
    return (f"{project.uid} is {what} (by process {op.pid} on {op.host}, since "
            f"{op.started_at.isoformat(sep=' ', timespec='seconds')}); wait until it has finished")


def _active(project: Project) -> list[str]:
    return [f"J{n} ({s})" for n, s in Job.select(Job.number, Job.status).where(
        (Job.project == project.id) & Job.status.in_(ACTIVE_STATUSES)).order_by(Job.number).tuples()]


def refuse_busy(project: Project, what: str) -> None:
    """Refuse while a job runs, a deletion is unfinished, or a move/delete is under way."""
    active = _active(project)
    if active:
        raise Refused(project.uid, f"cannot {what} while jobs are queued or running: {', '.join(active[:10])}"
                                   f"{' …' if len(active) > 10 else ''}; wait for them or kill them")
    op = current(project.id)
    if op is not None:
        raise LockedError(f"{project.uid} is being {'moved' if op.kind == 'move' else 'deleted'} "
                          f"(process {op.pid} on {op.host}); cannot {what} now")


def begin(project: Project, kind: str, phase: str, source: Path, dest: Path, temp: Path | None = None,
          detail: dict | None = None) -> ProjectOp:
    """Record a new operation (call inside the write transaction that judged it allowed)."""
    if current(project.id) is not None:
        raise LockedError(f"{project.uid} is already being moved or deleted")
    return ProjectOp.create(project_id=project.id, kind=kind, phase=phase, source=str(source), dest=str(dest),
                            temp=str(temp) if temp else None, host=socket.gethostname(), pid=os.getpid(),
                            detail=detail or {})


def set_phase(op: ProjectOp, phase: str) -> None:
    with write_transaction():
        ProjectOp.update(phase=phase).where(ProjectOp.id == op.id).execute()
    op.phase = phase


def _end(op: ProjectOp) -> None:
    ProjectOp.delete().where(ProjectOp.id == op.id).execute()


# -- the phases --------------------------------------------------------------------------

def _holds_project(path: Path) -> bool:
    return (path / "project.json").is_file() and not path.is_symlink()


def _remove(path: Path) -> list[str]:
    """Remove the tree at ``path`` (never following a link, never crossing into another file system)."""
    errors: list[str] = []
    if not os.path.lexists(path):
        return errors
    try:
        with nofollow.open_dirs(path.parent, []) as parent_fd:
            _step("remove")
            nofollow.remove_tree(parent_fd, path.name, errors, str(path))
        fsync_dir(path.parent)
    except (OSError, DataError) as exc:
        errors.append(f"{path}: {getattr(exc, 'strerror', None) or exc}")
    return errors


def switch(op: ProjectOp) -> None:
    """Point the project at ``dest`` and enter ``cleanup``, in one transaction."""
    with write_transaction():
        lock_rows(Project, [op.project_id])
        Project.update(directory=op.dest).where(Project.id == op.project_id).execute()
        ProjectOp.update(phase="cleanup").where(ProjectOp.id == op.id).execute()
        events.record(op.project_id, "project")
        events.record(None, "projects")
    op.phase = "cleanup"


def finish_move(op: ProjectOp) -> list[str]:
    """Carry a move on from its phase to the end; returns what could not be removed (reported, not retried)."""
    source, dest, temp = Path(op.source), Path(op.dest), Path(op.temp) if op.temp else None
    project = Project.get_or_none(Project.id == op.project_id)
    if project is None:
        _end(op)
        return []
    if op.phase == "renaming":
        if not os.path.lexists(source) and _holds_project(dest):
            switch(op)  # the rename was done before the process died
        else:
            _end(op)  # not renamed: the project is where it was
            return []
    elif op.phase == "copying":
        errors = _remove(temp) if temp is not None else []
        _end(op)
        return errors
    elif op.phase == "verified":
        if temp is not None and os.path.lexists(temp) and not os.path.lexists(dest):
            _step("rename")
            os.rename(temp, dest)
            fsync_dir(dest.parent)
        if not _holds_project(dest):  # nothing there to switch to: stay at the source
            _end(op)
            return [f"{dest} holds no complete copy; {project.uid} stays at {source}"]
        switch(op)
    errors: list[str] = []
    if op.phase == "cleanup":
        fresh = Project.get_or_none(Project.id == op.project_id)
        if fresh is not None and Path(fresh.directory) == source:  # never remove what the database points at
            _end(op)
            return [f"{project.uid} still points at {source}; the copy at {dest} was left in place"]
        errors = _remove(source)
        if temp is not None:
            errors += _remove(temp)
        _end(op)
        trashworker.ensure_reserve(dest)
    return errors


def finish_delete(op: ProjectOp) -> list[str]:
    """Carry a project delete on from its phase to the end (see the module doc)."""
    source, tomb = Path(op.source), Path(op.dest)
    if op.phase == "removing":
        if os.path.lexists(source) and not os.path.lexists(tomb):
            _step("rename")
            os.rename(source, tomb)
            fsync_dir(tomb.parent)
        with write_transaction():
            lock_rows(Project, [op.project_id])
            left = Job.select(Job.number).where(Job.project == op.project_id).limit(3).tuples()
            left = [f"J{n}" for (n,) in left]
            if left:  # jobs were made meanwhile: the project stays, whole
                if os.path.lexists(tomb) and not os.path.lexists(source):
                    os.rename(tomb, source)
                _end(op)
                return [f"jobs {', '.join(left)} exist (made meanwhile?); the project was not deleted"]
            Project.delete().where(Project.id == op.project_id).execute()  # workspaces, sessions: cascade
            ProjectOp.update(phase="cleanup").where(ProjectOp.id == op.id).execute()
            events.record(None, "projects")
        op.phase = "cleanup"
    errors = _remove(tomb)
    _end(op)
    return errors


def advance(op: ProjectOp) -> list[str]:
    return finish_move(op) if op.kind == "move" else finish_delete(op)


# -- recovery ------------------------------------------------------------------------------

def _recover(op: ProjectOp) -> list[str]:
    """Finish ``op`` if its process is gone (returns what it reported); [] if it is alive."""
    try:
        with op_lock(op.dest):
            fresh = ProjectOp.get_or_none(ProjectOp.id == op.id)
            if fresh is None:
                return []
            log.warning("finishing an interrupted project %s (%s -> %s, phase %s)", fresh.kind, fresh.source,
                        fresh.dest, fresh.phase)
            errors = advance(fresh)
    except LockedError:
        return []
    except DataError as exc:  # e.g. the lock cannot be made: left for a later command
        return [str(exc)]
    for e in errors:
        log.warning("project %s: %s", op.kind, e)
    return errors


def recover_abandoned(project_id: int) -> list[str]:
    """Finish an operation on ``project_id`` whose process died (cheap when there is none)."""
    if db.obj.in_transaction():
        return []
    op = current(project_id)
    return _recover(op) if op is not None else []


def recover_all() -> list[str]:
    """Finish every operation whose process died (lifecycle commands and ``db compact`` call it)."""
    out: list[str] = []
    for op in list(ProjectOp.select()):
        out += _recover(op)
    return out
