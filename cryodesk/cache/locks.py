"""Cross-process entry locks: OS ``flock`` on one small file per cache entry.

Why ``flock`` and not marker files: the kernel drops a lock when its holder
dies, however it dies (SIGKILL, power loss of a node mounting the SSD
locally), so a killed job can never leave a stale lock behind.  ``flock``
locks belong to an *open file description*, so two threads of one process
that open the lock file separately exclude each other exactly like two
processes do — the engine runs several jobs in one process.

* **shared** lock = a running job *holds* the entry (reads it); it is never evicted;
* **exclusive** lock = the entry is being copied, replaced or evicted.

A lock file may be deleted by whoever holds it exclusively (eviction); a
process that opened the old file before the unlink would then "hold" a lock
on a deleted inode, so every acquisition checks that the locked inode is
still the one at the path, and retries otherwise.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import resource
from pathlib import Path

__all__ = ["EntryLock", "lock_name", "held_lock_inodes", "raise_fd_limit"]


def lock_name(key: str) -> str:
    """File name of the lock of entry ``key`` (a hash: keys are long paths)."""
    return hashlib.sha1(key.encode("utf-8", "surrogateescape")).hexdigest() + ".lock"


class EntryLock:
    """One entry's lock file, opened once; ``shared()`` / ``exclusive()`` / ``release()``.

    Non-blocking methods return True on success; waiting is the caller's
    business (it reports progress while it waits).
    """

    def __init__(self, path: Path | str):
        self.path = path  # a str from the store: no pathlib per entry (a fill makes thousands)
        self.fd: int | None = None
        self.mode: str | None = None  # "sh" | "ex" | None

    def _open(self) -> int:
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
        return self.fd

    def _try(self, op: int, mode: str) -> bool:
        for _ in range(20):
            fd = self._open()
            try:
                fcntl.flock(fd, op | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    return False
                raise
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self.mode = mode
                return True
            # the file was unlinked (entry evicted) after we opened it: start over
            self.close()
        return False

    def try_shared(self) -> bool:
        """Take (or convert to) a shared lock without waiting."""
        return self._try(fcntl.LOCK_SH, "sh")

    def try_exclusive(self) -> bool:
        """Take (or convert to) an exclusive lock without waiting."""
        return self._try(fcntl.LOCK_EX, "ex")

    def release(self) -> None:
        if self.fd is not None and self.mode is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        self.mode = None

    def unlink(self) -> None:
        """Remove the lock file (only while holding it exclusively)."""
        assert self.mode == "ex"
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing drops any lock held through it
        self.fd, self.mode = None, None

    def is_free(self) -> bool:
        """True if nobody holds this lock in any mode (probes with a non-blocking exclusive lock)."""
        if self.mode is not None:
            return False
        if not self.try_exclusive():
            return False
        self.release()
        return True

    def __del__(self):  # pragma: no cover - safety net; callers close explicitly
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass


def held_lock_inodes(dev: int | None = None) -> dict[int, list[tuple[int, str]]]:
    """``{inode: [(pid, "READ"|"WRITE"), ...]}`` for the flock locks in ``/proc/locks``.

    Lets ``cache status`` list who holds what without taking any lock
    itself; empty where ``/proc/locks`` does not exist.  ``dev``: only locks on
    that device (``st_dev``).
    """
    out: dict[int, list[tuple[int, str]]] = {}
    try:
        text = Path("/proc/locks").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split()
        if "->" in parts:  # a blocked waiter, not a holder
            continue
        if len(parts) < 6 or parts[1] != "FLOCK":
            continue
        try:
            pid = int(parts[4])
            major, minor, ino = parts[5].split(":")
            inode = int(ino)
            if dev is not None and (int(major, 16), int(minor, 16)) != (os.major(dev), os.minor(dev)):
                continue  # same inode number on another file system
        except (ValueError, IndexError):
            continue
        out.setdefault(inode, []).append((pid, parts[3]))
    return out


def raise_fd_limit(need: int) -> None:
    """Raise the soft open-file limit so ``need`` more lock files can stay open (holds)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard if hard != resource.RLIM_INFINITY else 1 << 20, soft + need + 64)
    if want > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):  # pragma: no cover - keep going with what we have
            pass
