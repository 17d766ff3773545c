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

Files that cannot get space are read from the project directory too
(``on_full="fallback"``), with a message giving the numbers; or the stage
fails with :class:`CacheFullError` (``on_full="error"``).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Callable

from cryodesk.core.units import human_bytes

from cryodesk.core.errors import JobCancelled

from .copy import CacheFullError, SourceChanged, sync_filesystem
from .locks import raise_fd_limit
from .store import Cache, Item

__all__ = ["Holding", "acquire", "WAIT_MESSAGE"]

WAIT_MESSAGE = "waiting for requested files to become unlocked"
#: Durable copies are synced and renamed into place in batches of about this size.
COMMIT_BYTES = 512 << 20
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
    try:
        while pending:
            if check_cancel is not None:
                check_cancel()
            to_copy, busy, held_now = [], [], []
            for it in pending:
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
            _hold(cache, hold, held_now, project, log)
            if to_copy:
                _copy_round(cache, hold, to_copy, busy, project, progress, log, check_cancel,
                            on_full, done, total)
            if busy:
                if t_wait is None:
                    t_wait = time.monotonic()
                    msg = f"{WAIT_MESSAGE} ({len(busy)} files are being copied by another job)"
                    log.info("SSD cache: %s", msg)
                    hold.messages.append(msg)
                    if progress is not None:
                        progress(done[0], total[0], msg)
                time.sleep(0.1)
            pending = busy
        if t_wait is not None:
            hold.waited_s = time.monotonic() - t_wait
    except BaseException:
        hold.release()
        for it in items:
            if it.lock is not None:
                it.lock.close()
        raise
    return hold


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


def _copy_round(cache, hold, to_copy, busy, project, progress, log, check_cancel, on_full, done, total):
    try:
        granted, denied, message = cache.reserve(to_copy, project)
    except sqlite3.OperationalError as exc:  # the SSD is so full the index cannot grow
        granted, denied = [], list(to_copy)
        message = f"the SSD cache index in {cache.root} cannot be written ({exc})"
    for it in denied:
        it.lock.close()
        hold.fallback[it.key] = message
    if denied:
        if on_full == "error":
            for it in granted:
                cache.release_reservation(it)
                it.lock.close()
            raise CacheFullError(message)
        msg = f"{message}; reading {len(denied)} files from the project directory instead"
        log.warning("SSD cache: %s", msg)
        hold.messages.append(msg)
    total[0] += sum(it.size for it in granted)
    lock = threading.Lock()
    last = [0.0]

    def on_bytes(n: int) -> None:
        with lock:
            done[0] += n
            now = time.monotonic()
            if progress is not None and now - last[0] >= 0.25:
                last[0] = now
                progress(done[0], total[0], f"caching particles on SSD: {human_bytes(done[0])} / "
                                            f"{human_bytes(total[0])}")

    abort = threading.Event()

    def cancel_check() -> None:
        if abort.is_set():  # the caller is gone (an error or Ctrl-C): stop copying
            raise JobCancelled("copy to the SSD cache aborted")
        if check_cancel is not None:
            check_cancel()

    def one(it: Item) -> int:
        try:
            return it.build(on_bytes, cancel_check)
        except BaseException:
            cache.release_reservation(it)
            raise

    errors: list[BaseException] = []
    finished: list[tuple[str, int]] = []
    newly_held: list[str] = []
    uncommitted: list[tuple[Item, int]] = []
    with ThreadPoolExecutor(max_workers=max(1, cache.config.threads),
                            thread_name_prefix="cache-copy") as pool:
        futures = {pool.submit(one, it): it for it in granted}
        try:
            _collect(cache, hold, futures, busy, on_full, log, finished, newly_held, errors, uncommitted)
        except BaseException:
            abort.set()
            for it, _ in uncommitted:  # copied but never made durable: drop them
                cache.release_reservation(it)
            raise
    first_error = errors[0] if errors else None
    # One index transaction per round, not per file: commits are the slow part.
    # Until it lands, others count these bytes as still in flight (conservative).
    cache.index.set_ready(finished)
    cache.index.touch(newly_held, project)
    if first_error is not None:
        raise first_error
    if progress is not None and granted:
        done[0] = max(done[0], total[0])  # headers are reserved but not reported as copied
        progress(done[0], total[0], f"cached {human_bytes(total[0])} on SSD")


def _collect(cache, hold, futures, busy, on_full, log, finished, newly_held, errors, uncommitted) -> None:
    """Account for each copy as it finishes: hold it, or fall back, or record the error."""

    def done(it: Item, nbytes: int) -> None:
        finished.append((it.key, nbytes))
        hold.bytes_copied += it.size
        hold.files_copied += 1
        # The downgrade is not atomic: if an evictor slipped in, start over.
        if it.lock.try_shared() and it.check():
            hold.held[it.key] = it
            newly_held.append(it.key)
        else:
            it.lock.release()
            busy.append(it)

    def commit_batch() -> None:
        # One sync for the batch, then the renames: a file appears under its
        # final name only once its bytes are on the disk.  The copy threads
        # keep copying meanwhile.
        sync_filesystem(cache.root)
        batch = list(uncommitted)
        uncommitted.clear()
        for it, nbytes in batch:
            try:
                it.commit()
            except OSError as exc:
                cache.release_reservation(it)
                it.lock.close()
                hold.fallback[it.key] = f"cannot rename the copy into place: {exc}"
                continue
            done(it, nbytes)

    for fut in as_completed(futures):
        it = futures[fut]
        if fut.cancelled():  # never started after an earlier failure
            cache.release_reservation(it)
            it.lock.close()
            continue
        exc = fut.exception()
        if exc is None:
            if it.commit is None:
                done(it, fut.result())
            else:
                uncommitted.append((it, fut.result()))
                if sum(n for _, n in uncommitted) >= COMMIT_BYTES:
                    commit_batch()
        elif isinstance(exc, SourceChanged) or (isinstance(exc, CacheFullError) and on_full != "error"):
            it.lock.close()
            hold.fallback[it.key] = str(exc)
            hold.messages.append(str(exc))
            log.warning("SSD cache: %s; reading it from the project directory instead", exc)
        else:
            it.lock.close()
            if not errors:
                for f in futures:  # stop what has not started
                    f.cancel()
            errors.append(exc)
    if uncommitted:
        commit_batch()
