"""The cache index: one SQLite file on the SSD, shared by every process using the cache.

It records what the cache owns (only indexed entries are ever evicted), how
many bytes each occupies, who used it last and when, and which entries are
being copied (``state='copying'``: space reserved for a copy in flight).

The index is advisory, never the truth about a file: a file is used only
after ``stat`` shows the source's size and mtime, rows whose file vanished
are dropped (hand-deleted files heal), files found in the cache tree without
a row are adopted, and a corrupt index is moved aside and rebuilt.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Entry", "Index", "IndexCorrupt", "drop_kept_connections"]

_log = logging.getLogger("cryodesk.cache")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    key TEXT PRIMARY KEY,          -- real path of the source file, or 'subset:<hash>'
    kind TEXT NOT NULL,            -- 'file' | 'subset'
    path TEXT NOT NULL,            -- relative to the cache root
    src_size INTEGER NOT NULL,
    src_mtime_ns INTEGER NOT NULL,
    size INTEGER NOT NULL,         -- bytes on the SSD (0 for a symlink placed by hand)
    project TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL,           -- 'ready' | 'copying'
    pid INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    last_access REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_lru ON entries (state, last_access);
"""
_COLUMNS = ("key", "kind", "path", "src_size", "src_mtime_ns", "size", "project", "state", "pid", "created",
            "last_access")
_SELECT = f"SELECT {', '.join(_COLUMNS)} FROM entries"
# Rows a hand edit left with a value the cache cannot compute with (SQLite keeps 'big' in an
# INTEGER column, a blob in a TEXT one): dropped when the index is first opened, as rows of
# vanished files are (one scan in SQLite: ~20 ms for 100,000 entries, a tenth of reading them).
_BAD_ROWS = ("typeof(key) != 'text' OR typeof(path) != 'text' OR typeof(size) != 'integer' "
             "OR typeof(src_size) != 'integer' OR typeof(last_access) NOT IN ('real', 'integer')")


class IndexCorrupt(sqlite3.OperationalError):
    """The index was found corrupt by a query and moved aside; the next operation starts a fresh one.

    An ``OperationalError``: every caller already reads the originals (a fill) or
    says the index cannot be read (status, clear) when the index fails.
    """


def _corrupt(exc: BaseException) -> bool:
    """True for SQLite's "malformed" and "not a database": the file, not the situation (full, locked)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if code is not None:
        return (code & 0xFF) in (sqlite3.SQLITE_CORRUPT, sqlite3.SQLITE_NOTADB)
    return type(exc) is sqlite3.DatabaseError


class _NotOurs(sqlite3.DatabaseError):
    """The file is a database, but its ``entries`` table is not the cache's."""


#: One idle connection kept open per index file (the few used last), so that closing an
#: operation's own connection is never the last close of the database: SQLite checkpoints
#: the WAL on the last close, with an fsync of the index (~10 per fill, each waiting for the
#: file system's journal, which holds the copies' metadata: up to 0.1 s each on a busy disk).
#: The WAL is then checkpointed when it grows past SQLite's limit, or when the keeper closes.
KEEP_OPEN = 4
_keepers: "OrderedDict[str, sqlite3.Connection]" = OrderedDict()
_keepers_lock = threading.Lock()


def _keep_open(path: Path) -> None:
    key = str(path)
    with _keepers_lock:
        if key in _keepers:
            _keepers.move_to_end(key)
            return
        try:
            con = sqlite3.connect(key, timeout=60, isolation_level=None, check_same_thread=False)
            con.execute("SELECT 1 FROM entries LIMIT 1").fetchall()  # opens the WAL: holds the file open
        except sqlite3.Error:
            return  # only an optimisation
        _keepers[key] = con
        while len(_keepers) > KEEP_OPEN:
            _keepers.popitem(last=False)[1].close()


def drop_kept_connections(path: Path | None = None) -> None:
    """Close the kept connection of ``path`` (all of them: None); the next use opens one again."""
    with _keepers_lock:
        for key in [k for k in _keepers if path is None or k == str(path)]:
            try:
                _keepers.pop(key).close()
            except sqlite3.Error:  # pragma: no cover - closing is best effort
                pass


# A connection must never cross a fork (the child's close could checkpoint and delete the
# WAL under the parent): kept connections are closed before os.fork().
os.register_at_fork(before=drop_kept_connections)


@dataclass
class Entry:
    key: str
    kind: str
    path: str
    src_size: int
    src_mtime_ns: int
    size: int
    project: str
    state: str
    pid: int
    created: float
    last_access: float


class Index:
    """Short-lived connections (one per operation): safe from any thread or process."""

    def __init__(self, root: Path):
        self.path = Path(root) / "index.sqlite"
        self._ready = False

    @contextmanager
    def connect(self):
        con = self._open()
        try:
            yield con
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) or not _corrupt(exc):
                raise
            # Corruption a query ran into (a page overwritten in the middle): the
            # open found nothing wrong.  Move it aside now; this operation fails as
            # if the index could not be read, the next one starts a fresh index.
            con.close()
            self._quarantine()
            raise IndexCorrupt(f"the SSD cache index {self.path} was corrupt ({exc}); it was moved aside "
                               f"and starts again empty") from None
        finally:
            con.close()

    def _open(self) -> sqlite3.Connection:
        try:
            con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            # The index is advisory (files are checked by stat before use), so a
            # commit need not reach the disk: no fsync per commit.
            con.execute("PRAGMA synchronous=NORMAL")
            if not self._ready:
                self._first_open(con)
            return con
        except sqlite3.OperationalError:
            raise  # disk full, locked...: not corruption, the index stays
        except sqlite3.DatabaseError:
            # A corrupt index (a disk-full crash, a hand edit) or another program's
            # table costs nothing but the LRU order: move it aside; entries are
            # re-adopted from the tree.
            self._quarantine()
            con = sqlite3.connect(self.path, timeout=60, isolation_level=None)
            con.execute("PRAGMA synchronous=NORMAL")
            self._first_open(con)
            return con

    def _first_open(self, con: sqlite3.Connection) -> None:
        con.execute("PRAGMA journal_mode=WAL")
        cols = tuple(r[1] for r in con.execute("PRAGMA table_info(entries)"))
        if cols and sorted(cols) != sorted(_COLUMNS):
            con.close()
            raise _NotOurs(f"the table entries of {self.path} has columns {cols}, not the cache's")
        con.executescript(_SCHEMA)
        if con.execute(f"SELECT 1 FROM entries WHERE {_BAD_ROWS} LIMIT 1").fetchone():
            con.execute(f"DELETE FROM entries WHERE {_BAD_ROWS}")
        self._ready = True
        _keep_open(self.path)

    def _quarantine(self) -> None:
        """Move the index (and its WAL) aside as ``*.corrupt-<time>``; the next open makes a new one."""
        drop_kept_connections(self.path)
        self._ready = False
        stamp = int(time.time())
        for suffix in ("", "-wal", "-shm"):
            p = Path(f"{self.path}{suffix}")
            try:
                p.rename(p.with_name(f"{p.name}.corrupt-{stamp}"))
            except FileNotFoundError:
                pass

    @staticmethod
    def _rows(cur) -> list[Entry]:
        return [Entry(*r) for r in cur.fetchall()]

    def get(self, key: str) -> Entry | None:
        with self.connect() as con:
            rows = self._rows(con.execute(f"{_SELECT} WHERE key = ?", (key,)))
        return rows[0] if rows else None

    def all(self, con=None) -> list[Entry]:
        if con is not None:
            return self._rows(con.execute(f"{_SELECT} ORDER BY last_access"))
        with self.connect() as c:
            return self._rows(c.execute(f"{_SELECT} ORDER BY last_access"))

    def put(self, e: Entry, con=None) -> None:
        sql = ("INSERT OR REPLACE INTO entries (key, kind, path, src_size, src_mtime_ns, size, project, "
               "state, pid, created, last_access) VALUES (?,?,?,?,?,?,?,?,?,?,?)")
        args = (e.key, e.kind, e.path, e.src_size, e.src_mtime_ns, e.size, e.project, e.state, e.pid,
                e.created, e.last_access)
        if con is not None:
            con.execute(sql, args)
            return
        with self.connect() as c:
            c.execute(sql, args)

    def put_many(self, entries: list[Entry], con) -> None:
        """:meth:`put` of several entries in the caller's transaction (one statement)."""
        con.executemany("INSERT OR REPLACE INTO entries (key, kind, path, src_size, src_mtime_ns, size, project, "
                        "state, pid, created, last_access) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                        [(e.key, e.kind, e.path, e.src_size, e.src_mtime_ns, e.size, e.project, e.state, e.pid,
                          e.created, e.last_access) for e in entries])

    def delete(self, key: str, con=None) -> None:
        if con is not None:
            con.execute("DELETE FROM entries WHERE key = ?", (key,))
            return
        try:
            with self.connect() as c:
                c.execute("DELETE FROM entries WHERE key = ?", (key,))
        except sqlite3.OperationalError as exc:  # disk full: the next heal drops the row
            _log.warning("SSD cache index not updated (%s)", exc)

    def set_ready(self, done: list[tuple[str, int]], project: str = "") -> None:
        """Mark copies finished: ``[(key, bytes on the SSD), ...]`` (one transaction).

        Also records them used now by ``project`` (what :meth:`touch` does), so a
        fresh copy needs one index commit, not two.
        """
        if not done:
            return
        now = time.time()
        try:
            with self.connect() as con:
                con.execute("BEGIN IMMEDIATE")
                con.executemany("UPDATE entries SET state='ready', size=?, pid=0, last_access=?, "
                                "project=CASE WHEN ?='' THEN project ELSE ? END WHERE key=?",
                                [(int(size), now, project, project, key) for key, size in done])
                con.execute("COMMIT")
        except sqlite3.OperationalError as exc:  # disk full: entries are adopted when next used
            _log.warning("SSD cache index not updated (%s)", exc)

    def touch(self, keys: list[str], project: str) -> None:
        """Mark ``keys`` used now (by ``project``): LRU order and lifetime count from here."""
        if not keys:
            return
        now = time.time()
        try:
            self._touch(keys, project, now)
        except sqlite3.OperationalError as exc:  # disk full: only the LRU order suffers
            _log.warning("SSD cache index not updated (%s)", exc)

    def _touch(self, keys, project, now) -> None:
        with self.connect() as con:
            con.execute("BEGIN IMMEDIATE")
            con.executemany("UPDATE entries SET last_access=?, project=CASE WHEN ?='' THEN project ELSE ? END "
                            "WHERE key=?", [(now, project, project, k) for k in keys])
            con.execute("COMMIT")
