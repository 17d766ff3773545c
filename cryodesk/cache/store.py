"""The cache directory on one SSD: layout, space accounting, eviction, purge, healing.

Layout (everything below ``<ssd>/cryodesk_cache``; nothing outside it is
ever written or deleted, so foreign files on a shared SSD are safe)::

    files/<absolute source path>   whole-file copies (mirror layout: a file placed
                                   here by hand, or a symlink, with the source's size
                                   and mtime is accepted as cached)
    subsets/<hash>/                packed stacks of a particle subset + subset.json
    entries.lock                   the entries' locks: one byte each (see locks.py)
    index.sqlite                   the index (see index.py)
    space.lock                     serialises space decisions (reserve + evict)

Space rules, checked under ``space.lock`` before any copy starts:
``used + need <= quota`` and ``disk free - bytes still to come from copies
in flight - need >= reserve``.  When they fail, least-recently-used entries
that no job holds are evicted until they pass; entries held by running jobs
and files the cache does not own are never touched.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import stat
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from cryodesk.base.errors import DataError
from cryodesk.base.fsio import file_lock
from cryodesk.core.units import human_bytes

from .config import CacheConfig
from .copy import part_dir, part_name
from .index import Entry, Index, IndexCorrupt
from .locks import LOCK_FILE, EntryLock, check_lock_file, held_offsets, lock_holders, lock_offset

__all__ = ["Cache", "Item", "SpaceReport"]

#: Copies this process is making now: ``(cache root, key) -> Item`` (from the reservation to
#: "ready" or its release).  Their copier is alive (it is us) and their bytes on the disk are
#: counted as they are written, so reserving the next chunk of a fill need not probe their
#: locks or stat their partial files (that was O(files in flight) system calls per chunk).
_copying: dict[tuple[str, str], "Item"] = {}
_copying_lock = threading.Lock()


@dataclass(eq=False)
class Item:
    """One thing to cache: a whole file or a packed subset."""

    key: str
    kind: str
    dest: Path
    size: int
    src_size: int
    src_mtime_ns: int
    check: Callable[[], bool]
    build: Callable[..., int]
    source: Path | str | None = None
    lock: EntryLock | None = None
    #: set when ``build`` leaves the copy under its temporary name: the caller
    #: makes a batch durable (one sync) and then calls this to rename it into place
    commit: Callable[[], None] | None = None
    #: bytes of this copy on the SSD so far (counted by the copier of this process)
    written: int = 0


@dataclass
class SpaceReport:
    used: int
    quota: int | None
    reserve: int
    disk_free: int
    inflight: int
    held: int

    def describe(self, need: int) -> str:
        quota = f"quota {human_bytes(self.quota)}, " if self.quota is not None else ""
        # the bytes copies in flight are still to write take room the disk still shows free
        flight = f" ({human_bytes(self.inflight)} of it promised to copies in flight)" if self.inflight else ""
        return (f"need {human_bytes(need)}; cache holds {human_bytes(self.used)} "
                f"({human_bytes(self.held)} held by running jobs), {quota}"
                f"disk free {human_bytes(self.disk_free)}{flight}, reserve {human_bytes(self.reserve)}")


#: serialises space decisions (reserve + evict)
SPACE_LOCK = "space.lock"


def _own_directory(path: Path) -> None:
    """Make directory ``path`` of the cache, or check the one there is a real directory.

    Never through a symlink: the cache writes and deletes only below its own
    directory, and a symlink there (``files/`` -> somewhere else) would make
    it copy there, and evictions refuse to delete outside (entries "freed"
    that stay on the disk).  Point the SSD path at the directory instead.
    """
    try:
        os.mkdir(path)
        return
    except FileExistsError:
        pass
    except OSError as exc:
        raise DataError(f"cannot create the SSD cache directory {path}: {exc.strerror or exc}") from None
    try:
        st = os.lstat(path)
    except OSError as exc:
        raise DataError(f"cannot use the SSD cache directory {path}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(st.st_mode):
        raise DataError(f"the SSD cache directory {path} is a symlink; cryodesk never follows one for the "
                        f"cache's own files (set the SSD path to the directory it points to)")
    if not stat.S_ISDIR(st.st_mode):
        raise DataError(f"the SSD cache directory {path} is not a directory (move it away, or set another SSD path)")
    if not os.access(path, os.W_OK | os.X_OK):
        raise DataError(f"the SSD cache directory {path} is not writable by this user")


def _no_symlink_file(path: Path) -> None:
    """A file of the cache (the index) is a regular file where it exists: SQLite would follow a symlink."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise DataError(f"cannot use the SSD cache file {path}: {exc.strerror or exc}") from None
    if stat.S_ISLNK(st.st_mode):
        raise DataError(f"the SSD cache file {path} is a symlink; cryodesk never follows one for the cache's "
                        f"own files")
    if not stat.S_ISREG(st.st_mode):
        raise DataError(f"the SSD cache file {path} is not a regular file (move it away)")


def stat_matches(path: Path, size: int, mtime_ns: int) -> bool:
    """True if ``path`` (symlinks followed) has this size and mtime (to 1 µs, or 1 s on coarse file systems)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    if st.st_size != size or not stat.S_ISREG(st.st_mode):  # one stat: it is checked per file, often
        return False
    a, b = st.st_mtime_ns, mtime_ns
    if abs(a - b) < 1000:
        return True
    return (a % 10**9 == 0 or b % 10**9 == 0) and a // 10**9 == b // 10**9


class Cache:
    """The SSD cache described by ``config`` (its directory is created on first use)."""

    def __init__(self, config: CacheConfig):
        if not config.usable:
            raise DataError(f"no SSD cache is configured for worker {config.worker!r} "
                            f"(cryodesk worker connect --ssdpath PATH, or set CRYODESK_SSD_PATH)")
        ssd = Path(config.ssd_path)
        if not ssd.is_dir():
            raise DataError(f"the SSD cache directory {ssd} does not exist (worker {config.worker!r})")
        self.config = config
        self.root = Path(os.path.abspath(config.root))
        self.files = self.root / "files"
        self.subsets = self.root / "subsets"
        for d in (self.root, self.files, self.subsets):
            _own_directory(d)
        self.lock_file = str(self.root / LOCK_FILE)
        for name in (LOCK_FILE, SPACE_LOCK):
            check_lock_file(self.root / name)
        self.index = Index(self.root)
        for suffix in ("", "-wal", "-shm"):
            _no_symlink_file(Path(f"{self.index.path}{suffix}"))
        self._root_s = str(self.root) + os.sep

    # -- layout ----------------------------------------------------------
    def file_dest(self, key: str) -> Path:
        return self.files / key.lstrip("/")

    def rel(self, path: Path) -> str:
        p = os.fspath(path)
        if p.startswith(self._root_s) and os.sep == "/":  # the common case, without pathlib (per file)
            return p[len(self._root_s):]
        return Path(path).relative_to(self.root).as_posix()

    def lock_for(self, key: str) -> EntryLock:
        return EntryLock(self.lock_file, lock_offset(key))

    @contextmanager
    def space_lock(self):
        with file_lock(self.root / SPACE_LOCK, "the SSD cache space accounting", timeout=600):
            yield

    # -- removal -----------------------------------------------------------
    def _remove_path(self, rel: str) -> None:
        p = self.root / rel
        if not os.path.realpath(p.parent).startswith(os.path.realpath(self.root) + os.sep):
            return  # never delete outside the cache, whatever the index says
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)
            part_name(p).unlink(missing_ok=True)

    def _evict(self, e: Entry, con) -> bool:
        """Remove entry ``e`` if nobody holds it; True if it was removed."""
        lock = self.lock_for(e.key)
        try:
            if not lock.try_exclusive():
                return False
            self._remove_path(e.path)
            if e.kind == "subset":
                shutil.rmtree(part_dir(self.root / e.path), ignore_errors=True)
            self.index.delete(e.key, con)
            return True
        finally:
            lock.close()

    # -- accounting ----------------------------------------------------------
    def _heal(self, con) -> list[Entry]:
        """Drop rows whose file vanished or whose copier died; the remaining rows."""
        keep = []
        mine = self._mine()
        for e in self.index.all(con):  # (a string path: this runs per entry for every chunk of a fill)
            if e.state == "copying" and e.key in mine:
                keep.append(e)  # this process copies it now
            elif e.state == "copying":
                probe = self.lock_for(e.key)
                alive = not probe.is_free()  # its copier is alive (maybe in this process)
                probe.close()
                if alive:
                    keep.append(e)
                    continue
                self._evict(e, con)  # a dead copier's reservation and partial file
            elif not os.path.lexists(self._root_s + e.path):
                self.index.delete(e.key, con)  # deleted by hand: the index heals
            else:
                keep.append(e)
        return keep

    def space(self, con=None, entries: list[Entry] | None = None, with_held: bool = False) -> SpaceReport:
        if entries is None:
            with self.index.connect() as c:
                entries = self.index.all(c)
        st = os.statvfs(self.root)
        inflight = 0
        mine = self._mine()
        for e in entries:
            if e.state == "copying":
                have = 0
                if e.key in mine:
                    have = mine[e.key].written if e.kind == "file" else 0
                elif e.kind == "file":  # bytes already on the disk: the partial copy, or the renamed file
                    for p in (part_name(self.root / e.path), self.root / e.path):
                        try:
                            have = os.lstat(p).st_size
                            break
                        except OSError:
                            continue
                inflight += max(0, e.size - have)
        held = 0
        if with_held:  # reads /proc/locks: only for messages and status
            locked = held_offsets(self.lock_file)
            held = sum(e.size for e in entries if e.state == "ready" and lock_offset(e.key) in locked)
        return SpaceReport(used=sum(e.size for e in entries), quota=self.config.quota_bytes,
                           reserve=self.config.reserve_bytes, disk_free=st.f_bavail * st.f_frsize,
                           inflight=inflight, held=held)

    def _mine(self) -> dict[str, Item]:
        root = str(self.root)
        with _copying_lock:
            return {k: it for (r, k), it in _copying.items() if r == root}

    def copies_done(self, keys) -> None:
        """Forget the in-process record of copies now ready in the index (or released)."""
        root = str(self.root)
        with _copying_lock:
            for k in keys:
                _copying.pop((root, k), None)

    def _fits(self, rep: SpaceReport, need: int) -> bool:
        if rep.quota is not None and rep.used + need > rep.quota:
            return False
        return rep.disk_free - rep.inflight - need >= rep.reserve

    def room_others_hold(self, need: int, mine=()) -> tuple[bool, int, int]:
        """Would ``need`` bytes fit once the other running jobs let go of what they hold?

        Returns ``(yes, bytes they hold, bytes missing now)``: what they hold is
        the cached entries held by other jobs (evictable once those finish) and
        their copies in flight (cached, then held, then evictable); ``mine`` are
        keys of the asking job, never counted.  False when the room is taken by
        files the cache does not own (a shared SSD full with other files).
        """
        mine = set(mine)
        with self.space_lock(), self.index.connect() as con:
            entries = self._heal(con)
            rep = self.space(con, entries)
            locked = held_offsets(self.lock_file)
            theirs = free = 0
            for e in entries:
                if e.key in mine:
                    continue
                if e.state == "copying" or lock_offset(e.key) in locked:
                    theirs += e.size
                else:
                    free += e.size  # let go of since: evictable now, the next try takes it
        missing = max(0, rep.reserve - (rep.disk_free - rep.inflight - need))
        if rep.quota is not None:
            missing = max(missing, rep.used + need - rep.quota)
        return bool(theirs or free) and theirs + free >= missing, theirs, missing

    def reserve(self, items: list[Item], project: str) -> tuple[list[Item], list[Item], str]:
        """Record copies of ``items`` as in flight, evicting LRU entries as needed.

        The caller holds each item's lock exclusively.  Returns (granted,
        denied, message); the message explains a denial with the numbers.
        """
        granted, denied, message = [], [], ""
        with self.space_lock(), self.index.connect() as con:
            con.execute("BEGIN IMMEDIATE")
            try:
                entries = self._heal(con)
                mine = {it.key for it in items}
                by_key = {e.key: e for e in entries}
                for it in items:
                    old = by_key.pop(it.key, None)
                    if old is not None:  # a stale version we hold exclusively: replace it
                        self._remove_path(old.path)
                        self.index.delete(old.key, con)
                # One statvfs + stat pass, then running totals (evictions free their
                # bytes, grants add theirs): linear, not one scan per file.
                entries = list(by_key.values())
                rep = self.space(con, entries)
                victims = iter([e for e in entries if e.state == "ready" and e.key not in mine])
                now = time.time()
                rows: list[Entry] = []
                for it in items:
                    while not self._fits(rep, it.size):
                        v = next(victims, None)
                        if v is None:
                            break
                        if self._evict(v, con):
                            entries.remove(v)
                            rep.used -= v.size
                            rep.disk_free += v.size
                    if not self._fits(rep, it.size):
                        denied.append(it)
                        if not message:
                            full = self.space(con, entries, with_held=True)
                            message = (f"not enough space in the SSD cache {self.root} and nothing that "
                                       f"can be deleted: {full.describe(it.size)}")
                        continue
                    e = Entry(it.key, it.kind, self.rel(it.dest), it.src_size, it.src_mtime_ns, it.size,
                              project, "copying", os.getpid(), now, now)
                    rows.append(e)
                    entries.append(e)
                    rep.used += it.size
                    rep.inflight += it.size
                    granted.append(it)
                self.index.put_many(rows, con)
                con.execute("COMMIT")
                root = str(self.root)
                with _copying_lock:
                    for it in granted:
                        it.written = 0
                        _copying[(root, it.key)] = it
            except BaseException:
                con.execute("ROLLBACK")
                raise
        return granted, denied, message

    def release_reservation(self, it: Item) -> None:
        """Forget a copy that failed or was cancelled (caller holds the lock exclusively)."""
        self.copies_done([it.key])
        self._remove_path(self.rel(it.dest))
        if it.kind == "subset":
            shutil.rmtree(part_dir(it.dest), ignore_errors=True)
        self.index.delete(it.key)

    def adopt(self, it: Item, project: str) -> None:
        """Index an entry found complete on disk without a row (placed by hand, or index rebuilt)."""
        e = self.index.get(it.key)
        if e is not None and e.state == "ready":
            return
        size = 0 if it.dest.is_symlink() else it.size
        now = time.time()
        self.index.put(Entry(it.key, it.kind, self.rel(it.dest), it.src_size, it.src_mtime_ns, size,
                             project, "ready", 0, now, now))

    # -- maintenance -------------------------------------------------------------
    def purge_expired(self, now: float | None = None, keep=()) -> int:
        """Evict entries unused for the configured lifetime; bytes freed.

        Held entries stay, and so do ``keep`` (the keys a job is about to use).
        """
        limit = (now or time.time()) - self.config.lifetime_days * 86400
        keep = set(keep)
        freed = 0
        with self.space_lock(), self.index.connect() as con:
            for e in self._heal(con):
                if e.key in keep:
                    continue
                if e.state == "ready" and e.last_access < limit and self._evict(e, con):
                    freed += e.size
        return freed

    def clear(self, project: str | None = None) -> dict:
        """Evict every entry (of ``project``) that no job holds."""
        freed = removed = skipped = 0
        for attempt in (1, 2):
            try:
                with self.space_lock(), self.index.connect() as con:
                    for e in self._heal(con):
                        if project is not None and e.project != project:
                            continue
                        if e.state == "ready" and self._evict(e, con):
                            freed += e.size
                            removed += 1
                        else:
                            skipped += 1
                break
            except IndexCorrupt:
                if attempt == 2:
                    raise DataError(f"the SSD cache index {self.index.path} is corrupt again") from None
            except sqlite3.OperationalError as exc:
                raise DataError(f"cannot update the SSD cache index {self.index.path} ({exc})") from None
        return {"removed": removed, "bytes_freed": freed, "held_skipped": skipped}

    def status(self) -> dict:
        """Path, quota, reserve, used, free, entries by project and the locks held (with pids)."""
        for attempt in (1, 2):
            try:
                with self.space_lock(), self.index.connect() as con:
                    entries = self._heal(con)
                break
            except IndexCorrupt:  # moved aside: the fresh index is read (files are re-adopted when used)
                if attempt == 2:
                    raise DataError(f"the SSD cache index {self.index.path} is corrupt again") from None
            except sqlite3.OperationalError as exc:
                raise DataError(f"cannot read the SSD cache index {self.index.path} ({exc}); "
                                f"is the SSD full?") from None
        rep = self.space(entries=entries, with_held=True)
        holders = lock_holders(self.lock_file)
        by_project: dict[str, dict] = {}
        locks = []
        for e in entries:
            d = by_project.setdefault(e.project or "-", {"entries": 0, "bytes": 0})
            d["entries"] += 1
            d["bytes"] += e.size
            for pid, how in holders.get(lock_offset(e.key), []):
                locks.append({"key": e.key, "kind": e.kind, "pid": pid,
                              "mode": "copying" if how == "WRITE" else "held", "bytes": e.size})
        st = os.statvfs(self.root)
        return {"worker": self.config.worker, "path": str(self.root), "config_source": self.config.source,
                "quota_bytes": rep.quota, "reserve_bytes": rep.reserve, "used_bytes": rep.used,
                "held_bytes": rep.held, "disk_free_bytes": rep.disk_free,
                "disk_total_bytes": st.f_blocks * st.f_frsize,
                "available_bytes": self._available(rep), "entries": len(entries),
                "by_project": by_project, "locks": locks,
                "lifetime_days": self.config.lifetime_days, "threads": self.config.threads}

    def _available(self, rep: SpaceReport) -> int:
        """Bytes a new copy could take without evicting anything."""
        disk = rep.disk_free - rep.inflight - rep.reserve
        if rep.quota is not None:
            disk = min(disk, rep.quota - rep.used)
        return max(0, disk)
