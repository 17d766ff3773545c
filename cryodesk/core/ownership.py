"""Which database owns a project directory: its lock file, ``<project>/.cryodesk/owner.json``.

A project directory is written by one database only.  Its lock file names the
owner by the database's *instance id* (``meta.instance_id``, made once per
database) and says which project of it the directory is (the project's own
id, also in ``project.json``).  It is written when a project is created or
attached, replaced by ``attach --force`` (which records the previous owner),
and removed by ``detach``.  Every write to a project checks it
(:func:`cryodesk.core.guard.project_write` and every manifest write), so a
second database that attached the same directory can read it but never
change it.

Primitives only: adopting a project that has no lock yet (one made before
locks existed) is :func:`cryodesk.core.manifest.ensure_owned`.

A lock file is cryodesk's own state: a symlink in its place, or a file that
is not a JSON object naming a database, is refused (never followed, never
guessed at).
"""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path

import peewee as pw

from ..base import nofollow
from ..base.errors import DataError
from ..base.fsio import atomic_write_json, fsync_dir
from ..db.models import Meta, db, utcnow

STATE_DIR = ".cryodesk"  # (the deletion service's state directory: cryodesk.core.deletion.journal)
LOCK_NAME = "owner.json"
FORMAT = 1

#: parsed lock files by path, with the (inode, mtime, ctime, size) they were read at
_CACHE: dict[str, tuple[tuple, dict]] = {}


class UnreadableLock(DataError):
    """The lock file is there but says nothing usable (not JSON, no database, a project id that is not text).

    ``attach --force`` takes such a directory over (:func:`set_aside_lock`).
    """


class NotOwned(DataError):
    """The project directory belongs to another database (or holds another project)."""


# -- this database -----------------------------------------------------------------

def instance_id() -> str:
    """This database's instance id (made on first use for a database that has none)."""
    database = db.obj
    cached = getattr(database, "_cryodesk_instance_id", None)
    if cached:
        return cached
    row = Meta.get_or_none(Meta.key == "instance_id")
    if row is None:
        from ..db.migrations import new_instance_id

        value = new_instance_id()
    else:
        value = row.value
    database._cryodesk_instance_id = value
    return value


def database_label(database=None) -> str:
    """How people name this database: its file, or server and name (never a password)."""
    database = database if database is not None else db.obj
    if isinstance(database, pw.PostgresqlDatabase):
        params = database.connect_params
        return f"postgresql {params.get('host') or 'localhost'}:{params.get('port') or 5432}/{database.database}"
    return f"sqlite {os.path.abspath(str(database.database))}"


# -- the lock file ----------------------------------------------------------------

def lock_path(project_dir: Path | str) -> Path:
    return Path(project_dir) / STATE_DIR / LOCK_NAME


def claiming(project_dir: Path | str):
    """An flock held while a process decides who owns ``project_dir`` and writes the lock file.

    Two databases attaching (or adopting) the same directory at the same moment
    then take turns: the second reads the first one's lock file and is refused.
    """
    from ..base.fsio import file_lock

    return file_lock(Path(project_dir) / STATE_DIR / "owner.lock", f"the ownership of {project_dir}")


def read_lock(project_dir: Path | str) -> dict | None:
    """The lock file of ``project_dir`` (None when there is none); a symlink or malformed file is refused."""
    path = lock_path(project_dir)
    if os.path.islink(path.parent):
        raise DataError(f"{path.parent} is a symlink; cryodesk never follows one for its own state (refused)")
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        _CACHE.pop(str(path), None)
        return None
    except NotADirectoryError:
        raise DataError(f"{path.parent} is not a directory; cryodesk cannot tell who owns {project_dir}") from None
    if stat.S_ISLNK(st.st_mode):
        raise DataError(f"{path} is a symlink; cryodesk never follows one for its own state (refused)")
    sig = (st.st_ino, st.st_mtime_ns, st.st_ctime_ns, st.st_size)
    hit = _CACHE.get(str(path))
    if hit is not None and hit[0] == sig:
        return hit[1]
    try:
        doc = json.loads(nofollow.read_regular(path, limit=1 << 20))
    except (OSError, ValueError, DataError) as exc:
        raise UnreadableLock(f"the lock file {path} is unreadable ({exc}); cryodesk cannot tell which database "
                             "owns this project: look at it, or attach the project again with --force") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("database"), str) or not doc["database"]:
        raise UnreadableLock(f"the lock file {path} names no database; attach the project again with --force")
    if not isinstance(doc.get("project") or "", str):
        raise UnreadableLock(f"the lock file {path} names project {doc['project']!r}, not a project id; "
                             "attach the project again with --force")
    _CACHE[str(path)] = (sig, doc)
    return doc


def describe(lock: dict) -> str:
    """The owner a lock names, for a message: ``database LABEL (id abcd1234) as P3 since DATE``."""
    label = lock.get("label") or "?"
    since = str(lock.get("since") or "?")[:19]
    return f"database {label} (instance {str(lock.get('database'))[:8]}) as {lock.get('uid') or '?'} since {since}"


def is_ours(lock: dict | None) -> bool:
    return lock is not None and lock.get("database") == instance_id()


def problem(project, lock: dict) -> str | None:
    """Why this database may not write ``project`` whose directory holds ``lock`` (None: it may)."""
    pdir = project.directory
    if lock.get("database") != instance_id():
        taken = " (it was taken over from this database)" if (lock.get("previous") or {}).get(
            "database") == instance_id() else ""
        return (f"{project.uid} is owned by another database: {describe(lock)}{taken}. Its directory {pdir} "
                f"is changed only there; detach it there first, or take it over here with "
                f"'cryodesk project attach {pdir} --force'")
    if project.uuid and lock.get("project") and lock["project"] != project.uuid:
        return (f"{pdir} holds another project (id {lock['project'][:8]}) than {project.uid} "
                f"(id {project.uuid[:8]}) of this database; nothing was changed")
    return None


def write_lock(project_dir: Path | str, project_uuid: str, uid: str, action: str,
               previous: dict | None = None) -> dict:
    """Make this database the owner of ``project_dir`` (atomic; ``previous``: the owner taken over)."""
    path = lock_path(project_dir)
    state = path.parent
    if state.is_symlink():
        raise DataError(f"{state} is a symlink; cryodesk never follows one for its own state (nothing was changed)")
    doc = {"format": FORMAT, "database": instance_id(), "label": database_label(), "project": project_uuid,
           "uid": uid, "host": socket.gethostname(), "since": utcnow().isoformat(timespec="seconds"),
           "action": action}
    if previous:
        doc["previous"] = {k: previous.get(k) for k in ("database", "label", "uid", "since")}
    try:
        state.mkdir(exist_ok=True)
        atomic_write_json(path, doc)
        fsync_dir(state)
    except OSError as exc:
        raise DataError(f"cannot write the lock file {path}: {exc.strerror or exc} (nothing was changed)") from None
    _CACHE.pop(str(path), None)
    return doc


def set_aside_lock(project_dir: Path | str) -> Path:
    """Rename an unreadable lock file to ``owner.json.unreadable-<time>`` (kept to look at); its new name."""
    path = lock_path(project_dir)
    aside = path.with_name(f"{path.name}.unreadable-{utcnow():%Y%m%dT%H%M%S}")
    try:
        os.rename(path, aside)
        fsync_dir(path.parent)
    except OSError as exc:
        raise DataError(f"cannot set the unreadable lock file {path} aside: {exc.strerror or exc} "
                        "(nothing was changed)") from None
    _CACHE.pop(str(path), None)
    return aside


def put_back_lock(project_dir: Path | str, aside: Path) -> None:
    """Undo :func:`set_aside_lock` after an attach that rolled back (best effort)."""
    try:
        os.replace(aside, lock_path(project_dir))
        _CACHE.pop(str(lock_path(project_dir)), None)
    except OSError:
        pass


def restore_lock(project_dir: Path | str, previous: dict | None) -> None:
    """Put back the lock file ``previous`` (None: no lock) after an attach that rolled back (best effort)."""
    try:
        if previous is None:
            remove_lock(project_dir)
        else:
            atomic_write_json(lock_path(project_dir), previous)
            _CACHE.pop(str(lock_path(project_dir)), None)
    except (OSError, DataError):
        pass


def remove_lock(project_dir: Path | str) -> None:
    path = lock_path(project_dir)
    if path.parent.is_symlink():
        raise DataError(f"{path.parent} is a symlink; cryodesk never follows one for its own state")
    try:
        path.unlink()
        fsync_dir(path.parent)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise DataError(f"cannot remove the lock file {path}: {exc.strerror or exc}") from None
    _CACHE.pop(str(path), None)
