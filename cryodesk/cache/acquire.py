"""Getting a set of entries into the cache and holding them for one job.

For every entry the protocol is (see locks.py for the lock modes):

1. take the entry's lock **shared**; if the cached copy is complete and
   current (size + mtime of the source) the job holds it: done, nothing copied;
2. else upgrade to **exclusive** and copy it (after reserving space, evicting
   LRU entries nobody holds), then downgrade to shared: held;
3. if another job holds it exclusively it is copying it: wait ("waiting for
   requested files to become unlocked") and start over at 1 — usually the
   copy is then simply there; if the copier died, the kernel dropped its
   lock and this job copies the file itself;
4. if other jobs hold an *older* version shared, it cannot be replaced now:
   this job reads that file from the project directory.

When files cannot get space but other running jobs hold cached files that
would make room once they finish, the job waits for them, as the guide says
("it will try to free up space as soon as it can, and it will continue
processing"): :data:`SPACE_MESSAGE` in the log and the progress, at most
``config.space_wait_s`` seconds.  Files that still cannot get space — the
wait is over, or the SSD is full with files the cache does not own — are read
from the project directory (``on_full="fallback"``), with a line giving the
numbers; or the stage fails with :class:`CacheFullError` (``on_full="error"``).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Callable

from cryodesk.base.errors import JobCancelled
from cryodesk.core.units import human_bytes

from .copy import CacheFullError, SourceChanged, prefetch, sync_filesystem
from .locks import raise_fd_limit
from .store import Cache, Item

__all__ = ["Holding", "acquire", "SPACE_MESSAGE", "WAIT_MESSAGE"]

WAIT_MESSAGE = "waiting for requested files to become unlocked"
#: the guide: the job "will try to free up space as soon as it can, and it will continue processing"
SPACE_MESSAGE = "the SSD is full: waiting to free up space as soon as other jobs release their cached files"
#: how often a job waiting for space looks again (s)
SPACE_POLL_S = 0.25
#: Durable copies are synced and renamed into place in batches of about this size.
COMMIT_BYTES = 512 << 20
#: Entries classified (locked) before the first copies start; each next chunk doubles.
#: (1024, all of a fill's entries locked before its copies start, measured the same as 8 here.)
FIRST_CHUNK = 8
#: Sources asked for from the disk ahead of the copy threads (each its first ``copy.CHUNK`` bytes).
PREFETCH_FILES = 4
_log = logging.getLogger("cryodesk.cache")


@dataclass
class Holding:
    """Entries held (shared-locked) by one job until :meth:`release`."""

    held: dict[str, Item] = field(default_factory=dict)
    fallback: dict[str, str] = field(default_factory=dict)  # key -> why it is read from the source
    bytes_copied: int = 0
    bytes_reused: int = 0
    files_copied: int = 0
    waited_s: float = 0.0
    messages: list[str] = field(default_factory=list)

    def release(self) -> None:
        for it in self.held.values():
            if it.lock is not None:
                it.lock.close()
        self.held.clear()


def _classify(it: Item) -> str:
    """``held`` | ``copy`` (exclusive lock taken) | ``busy`` | ``stale``."""
    lock = it.lock
    if not os.path.lexists(it.dest):
        # Nothing under the final name (a first fill): go straight for the copier's
        # lock, and decide under it — the shared look first would cost two lock
        # calls and four stats per file for nothing.
        if lock.try_exclusive():
            if not it.check():
                return "copy"
            lock.release()  # copied by someone between our look and the lock
    for attempt in range(12):
        if not lock.try_shared():
            return "busy"  # someone holds it exclusively: copying or evicting it
        if it.check():
            return "held"
        lock.release()
        if lock.try_exclusive():
            if it.check():  # copied by someone between our two looks
                lock.release()
                continue
            return "copy"
        # Others hold it shared: a transient look (retry) or readers of an older version.
        time.sleep(0.005 * (attempt + 1))
    return "stale"


def acquire(cache: Cache, items: list[Item], *, project: str = "",
            progress: Callable[[int, int, str], None] | None = None,
            log: logging.Logger | None = None, check_cancel: Callable[[], None] | None = None,
            on_full: str = "fallback") -> Holding:
    """Make ``items`` present in the cache and hold them; see the module docstring.

    Parameters
    ----------
    progress : callable, optional
        ``progress(bytes_done, bytes_total, message)`` while copying or waiting.
    on_full : {"fallback", "error"}

    Raises
    ------
    CacheFullError
        Not enough space and ``on_full="error"``.
    DataError
        A source cannot be read.  Nothing stays held or reserved after any error.
    """
    log = log or _log
    hold = Holding()
    raise_fd_limit(len(items))
    try:
        cache.purge_expired(keep=[it.key for it in items])
    except Exception as exc:  # noqa: BLE001 - housekeeping must never stop a job
        log.warning("SSD cache: purging expired entries failed: %s", exc)
    for it in items:
        it.lock = cache.lock_for(it.key)
    pending = list(items)
    done = [0]
    total = [0]
    t_wait = None
    space = _SpaceWait(cache, {it.key for it in items}, log, hold)
    try:
        while pending:
            if check_cancel is not None:
                check_cancel()
            busy, held_now = [], []
            with _Round(cache, hold, busy, project, progress, log, check_cancel, on_full, done, total,
                        space) as rnd:
                # Classify and reserve in growing chunks: copying starts after the first few
                # entries and overlaps the rest of the setup (each chunk is one index transaction).
                for chunk in _chunks(pending):
                    if check_cancel is not None:
                        check_cancel()
                    to_copy = []
                    for it in chunk:
                        state = _classify(it)
                        if state == "held":
                            held_now.append(it)
                        elif state == "copy":
                            to_copy.append(it)
                        elif state == "busy":
                            busy.append(it)
                        else:
                            it.lock.close()
                            hold.fallback[it.key] = "an older copy is in use by another job"
                    if to_copy:
                        rnd.start(to_copy)
                _hold(cache, hold, held_now, project, log)
                rnd.finish()
            waiting = space.take()
            if busy:
                if t_wait is None:
                    t_wait = time.monotonic()
                    msg = f"{WAIT_MESSAGE} ({len(busy)} files are being copied by another job)"
                    log.info("SSD cache: %s", msg)
                    hold.messages.append(msg)
                    if progress is not None:
                        progress(done[0], total[0], msg)
            if waiting:
                space.report(progress, done[0], total[0])
            if busy or waiting:
                time.sleep(SPACE_POLL_S if waiting else 0.1)
            pending = busy + waiting
        if t_wait is not None:
            hold.waited_s = time.monotonic() - t_wait
        hold.waited_s += space.waited_s
    except BaseException:
        hold.release()
        for it in items:
            if it.lock is not None:
                it.lock.close()
        raise
    return hold


class _SpaceWait:
    """Files denied space while other running jobs hold room that would make them fit (the guide's wait)."""

    def __init__(self, cache: Cache, mine: set, log, hold: Holding):
        self.cache, self.mine, self.log, self.hold = cache, mine, log, hold
        self.limit = float(getattr(cache.config, "space_wait_s", 0.0) or 0.0)
        self.started: float | None = None
        self.items: list[Item] = []
        self.last = 0.0
        self.detail = ""

    @property
    def waited_s(self) -> float:
        return time.monotonic() - self.started if self.started is not None else 0.0

    def may_wait(self, denied: list[Item], holding: bool) -> bool:
        """True (and ``denied`` kept for the next round) when waiting can make them fit, within the limit.

        A job that already holds entries (``holding``) never waits: two jobs each
        holding some files and waiting for the other's room would wait for each
        other; it reads the rest from the project directory instead.
        """
        if holding or self.limit <= 0 or (self.started is not None and self.waited_s >= self.limit):
            return False
        need = min(it.size for it in denied)  # the smallest: room for it means progress
        try:
            ok, theirs, missing = self.cache.room_others_hold(need, self.mine)
        except (OSError, sqlite3.OperationalError):
            return False
        if not ok:
            return False
        if self.started is None:
            self.started = time.monotonic()
            self.detail = (f"{len(denied)} files ({human_bytes(sum(it.size for it in denied))}) need room; "
                           f"other running jobs hold {human_bytes(theirs)}, {human_bytes(missing)} is missing; "
                           f"waiting up to {self.limit:g} s")
            msg = f"{SPACE_MESSAGE} ({self.detail})"
            self.log.info("SSD cache: %s", msg)
            self.hold.messages.append(msg)
        for it in denied:
            it.lock.close()  # taken again (shared or exclusive) in the next round
        self.items.extend(denied)
        return True

    def take(self) -> list[Item]:
        out, self.items = self.items, []
        return out

    def report(self, progress, done: int, total: int) -> None:
        now = time.monotonic()
        if progress is not None and now - self.last >= 1.0:
            self.last = now
            progress(done, total, f"SSD cache: {SPACE_MESSAGE} ({self.waited_s:.0f} s of at most {self.limit:g} s)")

    def gave_up(self) -> str:
        """The clear line said when the wait ends without room ("" if there was no wait)."""
        if self.started is None:
            return ""
        return f"gave up waiting for SSD space after {self.waited_s:.0f} s (the limit is {self.limit:g} s: " \
               f"setting cache_space_wait_s)"


def _chunks(items: list, first: int | None = None):
    """``items`` in slices of ``first`` (:data:`FIRST_CHUNK`), then twice as many each time
    (few reserve transactions: each one reads the whole index)."""
    i, n = 0, first or FIRST_CHUNK
    while i < len(items):
        yield items[i:i + n]
        i += n
        n *= 2


def _hold(cache: Cache, hold: Holding, items: list[Item], project: str, log=_log) -> None:
    if not items:
        return
    for it in items:
        hold.held[it.key] = it
    try:
        rows = {e.key: e.state for e in cache.index.all()}
        for it in items:
            if rows.get(it.key) != "ready":
                cache.adopt(it, project)  # placed by hand, or a copier died after its rename
    except sqlite3.OperationalError as exc:  # a full SSD: the files are fine, the index waits
        log.warning("SSD cache index not updated (%s)", exc)
    cache.index.touch([it.key for it in items], project)
    hold.bytes_reused += sum(it.size for it in items if it.key not in hold.fallback)


class _Round:
    """One pass of copies: reserve + submit chunk by chunk (:meth:`start`), then collect (:meth:`finish`).

    Copies are made durable in batches (one file-system sync, then the renames) and
    marked ready in the index in one transaction.  Leaving the ``with`` block on an
    error stops the copies and releases every reservation not yet complete.
    """

    def __init__(self, cache, hold, busy, project, progress, log, check_cancel, on_full, done, total, space=None):
        self.cache, self.hold, self.busy, self.project = cache, hold, busy, project
        self.space = space
        self.progress, self.log, self.check_cancel, self.on_full = progress, log, check_cancel, on_full
        self.done, self.total = done, total
        self.pool: ThreadPoolExecutor | None = None
        self.futures: dict = {}
        self.collected: set = set()
        self.errors: list[BaseException] = []
        self.finished: list[tuple[str, int]] = []
        self.uncommitted: list[tuple[Item, int]] = []
        self.abort = threading.Event()
        self._lock = threading.Lock()
        self._last = 0.0
        self._queue: list[Item] = []  # copies in the order they were submitted (the pool's order)
        self._started = 0  # how many of them a copy thread has taken
        self._ahead = 0  # the first ``_ahead`` were asked for from the disk already
        self.denied, self.deny_message = 0, ""

    # -- in the copy threads -------------------------------------------------------
    def _on_bytes(self, n: int) -> None:
        with self._lock:
            self.done[0] += n
            now = time.monotonic()
            if self.progress is not None and now - self._last >= 0.25:
                self._last = now
                self.progress(self.done[0], self.total[0], f"caching particles on SSD: "
                              f"{human_bytes(self.done[0])} / {human_bytes(self.total[0])}")

    def _cancel_check(self) -> None:
        if self.abort.is_set():  # the caller is gone (an error or Ctrl-C): stop copying
            raise JobCancelled("copy to the SSD cache aborted")
        if self.check_cancel is not None:
            self.check_cancel()

    def _prefetch_next(self) -> None:
        # Ask the disk for the next few sources now (POSIX_FADV_WILLNEED): a cold
        # source is read while the copy threads create files and copy what is here
        # (this disk reads 4 files at once ~1.6 x faster than 2).
        with self._lock:  # the copy starting now (it is the one that waits first), and the next ones
            lo = max(self._ahead, self._started)
            self._started += 1
            hi = min(len(self._queue), self._started + self.cache.config.threads + PREFETCH_FILES)
            todo = self._queue[lo:hi]
            self._ahead = max(self._ahead, hi)
        for it in todo:
            if it.source is not None:
                prefetch(it.source, it.src_size)

    def _one(self, it: Item) -> int:
        self._prefetch_next()

        def on_bytes(n: int) -> None:
            it.written += n  # the reservation accounting reads it instead of a stat
            self._on_bytes(n)

        try:
            return it.build(on_bytes, self._cancel_check)
        except BaseException:
            self.cache.release_reservation(it)
            raise

    # -- in the caller's thread ------------------------------------------------------
    def start(self, to_copy: list[Item]) -> None:
        """Reserve space for ``to_copy`` (exclusively locked) and start copying what was granted."""
        cache, hold = self.cache, self.hold
        try:
            granted, denied, message = cache.reserve(to_copy, self.project)
        except sqlite3.OperationalError as exc:  # the SSD is so full the index cannot grow
            granted, denied = [], list(to_copy)
            message = f"the SSD cache index in {cache.root} cannot be written ({exc})"
        if denied and self.on_full != "error" and self.space is not None \
                and self.space.may_wait(denied, holding=bool(hold.held or granted)):
            denied = []  # room other jobs hold: tried again in the next round
        for it in denied:
            it.lock.close()
            hold.fallback[it.key] = message
        if denied:
            if self.on_full == "error":
                for it in granted:
                    cache.release_reservation(it)
                    it.lock.close()
                raise CacheFullError(message)
            self.denied += len(denied)  # reported once, by finish()
            gave_up = self.space.gave_up() if self.space is not None else ""
            self.deny_message = self.deny_message or (f"{gave_up}; {message}" if gave_up else message)
        if not granted:
            return
        self.total[0] += sum(it.size for it in granted)
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=max(1, cache.config.threads),
                                           thread_name_prefix="cache-copy")
        with self._lock:
            self._queue.extend(granted)
        for it in granted:
            self.futures[self.pool.submit(self._one, it)] = it

    def finish(self) -> None:
        """Wait for every copy, commit them, record them ready; raise the first copy error."""
        if self.denied:
            msg = f"{self.deny_message}; reading {self.denied} files from the project directory instead"
            self.log.warning("SSD cache: %s", msg)
            self.hold.messages.append(msg)
        if self.pool is None:
            return
        self._collect()
        self.pool.shutdown(wait=True)
        self._mark_ready()
        if self.errors:
            raise self.errors[0]
        if self.progress is not None:
            self.done[0] = max(self.done[0], self.total[0])  # headers are reserved but not reported as copied
            self.progress(self.done[0], self.total[0], f"cached {human_bytes(self.total[0])} on SSD")

    def _mark_ready(self) -> None:
        # One index transaction per round, not per file (it also records the user and
        # the time, as touch() would): commits are the slow part.  Until it lands,
        # others count these bytes as still in flight (conservative).
        self.cache.index.set_ready(self.finished, self.project)
        self.cache.copies_done([k for k, _ in self.finished])
        self.finished = []

    def __enter__(self) -> "_Round":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None or self.pool is None:
            return
        self.abort.set()
        for fut in self.futures:
            fut.cancel()
        self.pool.shutdown(wait=True)
        for fut, it in self.futures.items():
            # Not started, or complete but never collected: drop it.  A copy that
            # failed released its own reservation.
            if fut not in self.collected and (fut.cancelled() or fut.exception() is None):
                self.cache.release_reservation(it)
        for it, _ in self.uncommitted:  # copied but never made durable: drop them
            self.cache.release_reservation(it)
        self.uncommitted.clear()
        self._mark_ready()  # those already renamed into place are complete and durable

    def _done(self, it: Item, nbytes: int) -> None:
        hold = self.hold
        self.finished.append((it.key, nbytes))
        hold.bytes_copied += it.size
        hold.files_copied += 1
        # The downgrade is not atomic: if an evictor slipped in, start over.
        if it.lock.try_shared() and it.check():
            hold.held[it.key] = it
        else:
            it.lock.release()
            self.busy.append(it)

    def _commit_batch(self) -> None:
        # One sync for the batch, then the renames: a file appears under its
        # final name only once its bytes are on the disk.  The copy threads
        # keep copying meanwhile.
        sync_filesystem(self.cache.root)
        batch = list(self.uncommitted)
        self.uncommitted.clear()
        for it, nbytes in batch:
            try:
                it.commit()
            except OSError as exc:
                self.cache.release_reservation(it)
                it.lock.close()
                self.hold.fallback[it.key] = f"cannot rename the copy into place: {exc}"
                continue
            self._done(it, nbytes)

    def _collect(self) -> None:
        """Account for each copy as it finishes: hold it, or fall back, or record the error."""
        hold, futures = self.hold, self.futures
        for fut in as_completed(futures):
            self.collected.add(fut)
            it = futures[fut]
            if fut.cancelled():  # never started after an earlier failure
                self.cache.release_reservation(it)
                it.lock.close()
                continue
            exc = fut.exception()
            if exc is None:
                if it.commit is None:
                    self._done(it, fut.result())
                else:
                    self.uncommitted.append((it, fut.result()))
                    if sum(n for _, n in self.uncommitted) >= COMMIT_BYTES:
                        self._commit_batch()
            elif isinstance(exc, SourceChanged) or (isinstance(exc, CacheFullError) and self.on_full != "error"):
                it.lock.close()
                hold.fallback[it.key] = str(exc)
                hold.messages.append(str(exc))
                self.log.warning("SSD cache: %s; reading it from the project directory instead", exc)
            else:
                it.lock.close()
                if not self.errors:
                    for f in futures:  # stop what has not started
                        f.cancel()
                self.errors.append(exc)
        if self.uncommitted:
            self._commit_batch()
