"""Manifests that may disagree with the database: one write-ahead record, repaired on the next command.

A metadata change writes the database row *and* the item's manifest
(``job.json``, ``project.json``).  Two files on two disks cannot change
atomically together: a process killed between the manifest's rename and the
database's commit, or a full disk after the commit, leaves them disagreeing —
and ``project attach`` rebuilds a database from the manifests alone (a lost
final flag then lets cleanup delete a final result).

So every manifest write goes through :func:`marked` (called by
:mod:`cryodesk.core.manifest`, the only writer of manifests): *before* the
manifest is touched, a small record ``.cryodesk/pending/<pid>.<random>.json``
names the items whose manifests are about to change (and which of them are
final in the new state); it is removed once the database change that the
manifests describe has committed (peewee's ``after_commit``), or at once for a
write outside a transaction.  A record left behind means "these manifests may
be wrong; the database (committed) is the truth":

* :func:`cryodesk.core.guard.repair` (run by :func:`cryodesk.core.recovery.recover_project`,
  so by every writing command, and before the next guarded write of the app) rewrites those manifests from the database under the
  project's write guard, removes the ``job.json`` of a job whose creation never
  committed (and its directory, if nothing else is in it), and drops the record.
  Records of a live process are left alone (its transaction may still commit).
* ``project attach`` (a new database: the old one's truth is gone) reads the
  records with :func:`uncertain_finals` and keeps a job final when either its
  manifest or a record says so — it errs on the side that never deletes.

A record that cannot be written (a full disk) stops the change before any
manifest or row is changed ("nothing was changed").  A running job holds a record
from its start (:func:`hold`) until its end is written (:func:`release`), so a
job that fails on a full disk is repaired once space is free.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path

from ..base.errors import DataError
from ..base.fsio import atomic_write

STATE_DIR = ".cryodesk"
PENDING = "pending"
PROJECT = "project"  # the record's name for project.json


@dataclass(eq=False)
class Record:
    path: Path
    project_dir: Path
    uids: set[str] = field(default_factory=set)
    finals: set[str] = field(default_factory=set)
    held: bool = False


#: ``REWRITE(project_dir, uids)`` rewrites those manifests from the database as committed (set by
#: :mod:`cryodesk.core.manifest`, the only writer of manifests; this module imports nothing above it)
REWRITE = None

_lock = threading.Lock()
_live: dict[str, Record] = {}  # marker path -> record, for records this process has not settled
_local = threading.local()


def _boot() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _start(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[19]
    except (OSError, IndexError):
        return None


_OWNER = {"host": socket.gethostname(), "pid": os.getpid(), "boot": _boot(), "start": _start(os.getpid())}


def _owner() -> dict:
    pid = os.getpid()
    if _OWNER["pid"] != pid:  # a forked child
        _OWNER.update(pid=pid, start=_start(pid))
    return _OWNER


def pending_dir(project_dir: Path) -> Path:
    return Path(project_dir) / STATE_DIR / PENDING


def _make_dir(project_dir: Path) -> Path:
    """``.cryodesk/pending`` as real directories (made if missing; a symlink is refused, never followed)."""
    d = Path(project_dir)
    for part in (STATE_DIR, PENDING):
        d = d / part
        if d.is_symlink():
            raise DataError(f"{d} is a symlink; cryodesk never follows one for its own state (nothing was changed)")
        try:
            d.mkdir(exist_ok=True)
        except FileExistsError:
            raise DataError(f"{d} exists and is not a directory (nothing was changed)") from None
        except OSError as exc:
            raise DataError(f"cannot record the manifest change in {d}: {exc.strerror or exc} "
                            "(nothing was changed)") from None
    return d


def _write_record(rec: Record, durable: bool) -> None:
    """Write the record (atomically).  Not fsynced on its own: a process killed keeps the page cache, and
    the manifest's own fsync right after commits the record's creation with it (ext4 data=ordered,
    XFS); an fsync each would double the cost of a single manifest write on a slow disk."""
    from .ownership import instance_id

    durable = False
    doc = {"owner": _owner(), "database": instance_id(), "jobs": sorted(rec.uids), "final": sorted(rec.finals)}
    try:
        atomic_write(rec.path, json.dumps(doc, sort_keys=True), durable)
    except OSError as exc:
        raise DataError(f"cannot write {_what(rec.uids)} (its change is recorded first, in {rec.path.parent}): "
                        f"{exc.strerror or exc} (nothing was changed)") from None


def _what(uids) -> str:
    names = sorted(f"{u}/job.json" if u != PROJECT else "project.json" for u in uids)
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more manifests" if len(names) > 3 else "")


def _held_for(project_dir: Path, uids) -> Record | None:
    want = set(uids)
    with _lock:
        for rec in _live.values():
            if rec.held and rec.project_dir == project_dir and want <= rec.uids:
                return rec
    return None


def begin(project_dir: Path, uids, finals=(), durable: bool = True, hold: bool = False) -> Record | None:
    """Record that the manifests of ``uids`` are about to change (call before writing them).

    Returns the record to pass to :func:`done` (None: a record this thread holds already covers them).
    """
    from ..db.models import db

    project_dir = Path(project_dir)
    sweep()
    uids, finals = set(uids), set(finals)
    held = _held_for(project_dir, uids)
    if held is not None:
        if finals - held.finals:  # (a held record grows its final set: attach must see it)
            held.finals |= finals
            _write_record(held, durable)
        return None
    d = _make_dir(project_dir)
    rec = Record(d / f"{os.getpid()}.{os.urandom(6).hex()}.json", project_dir, uids, finals, hold)
    _write_record(rec, durable)
    with _lock:
        _live[str(rec.path)] = rec
    if not hold and db.obj is not None and db.obj.in_transaction():
        _thread_list().append(rec)
        db.obj.after_commit(lambda: _settle(rec))
    return rec


def done(rec: Record | None) -> None:
    """The manifests of ``rec`` are written: settle now outside a transaction, else at its commit."""
    from ..db.models import db

    if rec is None or rec.held:
        return
    if db.obj is None or not db.obj.in_transaction():
        _settle(rec)


def abandon(rec: Record | None) -> None:
    """The manifest write of ``rec`` failed: outside a transaction the record is no longer in flight
    (the next repair rewrites it once it can); inside one, the rollback's :func:`sweep` takes it."""
    from ..db.models import db

    if rec is None or rec.held or (db.obj is not None and db.obj.in_transaction()):
        return
    with _lock:
        _live.pop(str(rec.path), None)


def hold(project_dir: Path, uid: str, final: bool = False) -> Record:
    """A record kept while a job runs (its manifest changes at its start and end); see :func:`release`."""
    return begin(project_dir, [uid], [uid] if final else [], hold=True)


def release(rec: Record | None, written: bool) -> None:
    """End a :func:`hold`: removed if the job's final manifest was ``written``, else left for :func:`repair`."""
    if rec is None:
        return
    rec.held = False
    if written:
        _settle(rec)
    else:  # no longer in flight: the next repair (this process's or another's) rewrites it
        with _lock:
            _live.pop(str(rec.path), None)


def _settle(rec: Record) -> None:
    with _lock:
        _live.pop(str(rec.path), None)
    try:
        rec.path.unlink()
    except OSError:
        pass  # (gone already, or a read-only disk: the next repair rewrites the same truth)
    lst = getattr(_local, "records", None)
    if lst and rec in lst:
        lst.remove(rec)


def _thread_list() -> list:
    if not hasattr(_local, "records"):
        _local.records = []
    return _local.records


def sweep() -> None:
    """Records of this thread whose transaction ended without a commit (rolled back): repair them now."""
    from ..db.models import db

    lst = getattr(_local, "records", None)
    if not lst or db.obj is None or db.obj.in_transaction():
        return
    todo, lst[:] = list(lst), []
    for rec in todo:
        if str(rec.path) in _live:
            try:
                if REWRITE is None:
                    raise RuntimeError("no manifest writer registered")
                REWRITE(rec.project_dir, rec.uids)
            except Exception:  # noqa: BLE001 - a full disk: the record stays for the next repair
                with _lock:
                    _live.pop(str(rec.path), None)  # (no longer in flight: any repair may take it)
                continue
            _settle(rec)


# -- repair and attach -----------------------------------------------------------------------

def read_record(path: Path) -> dict | None:
    """A small JSON object file (a record, a manifest) without following a link; None if it is not one."""
    try:
        st = path.lstat()
        if not stat.S_ISREG(st.st_mode) or st.st_size > 1 << 20:
            return None
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None


def _records(project_dir: Path) -> list[tuple[Path, dict]]:
    d = pending_dir(project_dir)
    if d.is_symlink() or not d.is_dir() or d.parent.is_symlink():
        return []
    out = []
    for p in sorted(d.glob("*.json")):
        doc = read_record(p)
        if doc is not None:
            out.append((p, doc))
    return out


def _owner_alive(owner) -> bool:
    """Whether the process that wrote a record may still be writing (unknown: assumed alive)."""
    if not isinstance(owner, dict):
        return False
    if owner.get("host") != socket.gethostname():
        return True  # another host's process: cannot be told from here
    if owner.get("boot") and _boot() and owner["boot"] != _boot():
        return False
    try:
        pid = int(owner.get("pid"))
    except (TypeError, ValueError):
        return False
    if pid == os.getpid():
        return False  # ours: in flight only while in _live (checked by the caller)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    except OSError:
        return False
    return owner.get("start") is None or _start(pid) in (None, owner.get("start"))


def _names(doc: dict, key: str) -> set[str]:
    vals = doc.get(key)
    return {v for v in vals if isinstance(v, str)} if isinstance(vals, list) else set()


def stale(project_dir: Path) -> list[tuple[Path, set[str]]]:
    """Records of this database left by a process that is gone (or settled here): ``(path, uids)``."""
    from .ownership import instance_id

    out = []
    for p, doc in _records(project_dir):
        if doc.get("database") not in (None, instance_id()):
            continue  # another database's record: its own repair (or an attach) deals with it
        with _lock:
            if str(p) in _live:
                continue
        if not _owner_alive(doc.get("owner")):
            out.append((p, _names(doc, "jobs")))
    return out


def uncertain_finals(project_dir: Path) -> set[str]:
    """Jobs (``J<n>``) that some record of a write that may not have finished shows as final."""
    out: set[str] = set()
    for _, doc in _records(project_dir):
        out |= _names(doc, "final")
    return out


def uncertain(project_dir: Path) -> set[str]:
    """Every item some left record names (its manifest may be stale)."""
    out: set[str] = set()
    for _, doc in _records(project_dir):
        out |= _names(doc, "jobs")
    return out


def clear_records(project_dir: Path) -> None:
    """Drop every record (after ``project attach`` rebuilt the rows and rewrote what the records name)."""
    for p, _ in _records(project_dir):
        try:
            p.unlink()
        except OSError:
            pass


def collect_temp(project_dir: Path, min_age_s: float = 10.0) -> None:
    """Unfinished record writes of a killed process (``.<name>.<hex>.tmp``), once old enough."""
    import time

    from ..base.fsio import own_temp_target, remove_own_temp

    d = pending_dir(project_dir)
    try:
        with os.scandir(d) as it:
            for e in it:
                if own_temp_target(e.name) and time.time() - e.stat(follow_symlinks=False).st_mtime >= min_age_s:
                    remove_own_temp(d, e.name)
    except OSError:
        pass
