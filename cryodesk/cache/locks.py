"""Cross-process entry locks: byte-range locks in ONE lock file per cache directory.

Each entry's lock is one byte of ``<cache>/entries.lock``, at an offset derived
from the entry's key (:func:`lock_offset`), locked with Linux *open file
description* locks (``F_OFD_SETLK``):

* the kernel drops a lock when its holder dies, however it dies (SIGKILL,
  power loss of a node mounting the SSD locally), so a killed job can never
  leave a stale lock behind;
* they belong to an open file description, so two threads of one process
  that open the lock file separately exclude each other exactly like two
  processes do (the engine runs several jobs in one process).  Every
  :class:`EntryLock` therefore opens the file itself: a second entry's lock
  on a shared description would merge with or convert the first one's;
* converting shared <-> exclusive is atomic (unlike ``flock``).

* **shared** lock = a running job *holds* the entry (reads it); it is never evicted;
* **exclusive** lock = the entry is being copied, replaced or evicted.

Why not one lock file per entry (as before): creating a file is a new inode,
which costs more than the rest of a small file's fill (~0.06 ms of CPU quiet,
~0.6 ms under load, per file).  The lock file is never deleted, so there is no
"locked an unlinked inode" race either.  Two keys whose offsets collide
(62-bit hashes: practically never) share one byte: that can only make one
wait for the other, never let two copy or evict the same entry at once.

Who holds what (``cache status``) comes from the kernel, never from a record
that could go stale: ``/proc/locks`` lists the locked byte ranges of the file
(:func:`held_offsets`); the holders' pids from ``/proc/<pid>/fdinfo`` of the
processes that have the file open (:func:`lock_holders`; an OFD lock shows pid
-1 in ``/proc/locks``).
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import resource
import stat
import struct
from pathlib import Path

from cryodesk.base.errors import DataError

__all__ = ["EntryLock", "LOCK_FILE", "check_lock_file", "lock_offset", "held_offsets", "lock_holders",
           "raise_fd_limit"]

#: the one lock file of a cache directory (below its root)
LOCK_FILE = "entries.lock"

# struct flock on Linux (x86-64, aarch64): short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid
_FLOCK = struct.Struct("hhqqi4x")
_OPEN = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK
_checked: set[tuple[int, int]] = set()  # (dev, ino) of lock files found regular in this process


def lock_offset(key: str) -> int:
    """The byte of the lock file that is entry ``key``'s lock (62 bits of its SHA-1)."""
    return int.from_bytes(hashlib.sha1(key.encode("utf-8", "surrogateescape")).digest()[:8], "big") >> 2


def _open_lock_file(path: str) -> int:
    """Open (create) the lock file, never through a symlink, refusing anything but a regular file."""
    try:
        fd = os.open(path, _OPEN, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DataError(f"the SSD cache lock file {path} is a symlink; cryodesk never follows one") from None
        if exc.errno == errno.EISDIR:
            raise DataError(f"the SSD cache lock file {path} is not a regular file (a directory)") from None
        raise DataError(f"cannot open the SSD cache lock file {path}: {exc.strerror or exc}") from None
    try:
        st = os.fstat(fd)
        if (st.st_dev, st.st_ino) not in _checked:  # one fstat per process and file, not per entry
            if not stat.S_ISREG(st.st_mode):
                raise DataError(f"the SSD cache lock file {path} is not a regular file")
            _checked.add((st.st_dev, st.st_ino))
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_lock_file(path: Path | str) -> None:
    """Open (create) lock file ``path`` once and close it: :class:`DataError` if it is not a usable one."""
    os.close(_open_lock_file(os.fspath(path)))


class EntryLock:
    """One entry's lock (its own open file description); ``try_shared()`` / ``try_exclusive()`` / ``release()``.

    Non-blocking methods return True on success; waiting is the caller's
    business (it reports progress while it waits).
    """

    __slots__ = ("path", "offset", "fd", "mode")

    def __init__(self, path: Path | str, offset: int):
        self.path = os.fspath(path)
        self.offset = offset
        self.fd: int | None = None
        self.mode: str | None = None  # "sh" | "ex" | None

    def _set(self, kind: int) -> bool:
        if self.fd is None:
            self.fd = _open_lock_file(self.path)
        try:
            fcntl.fcntl(self.fd, fcntl.F_OFD_SETLK, _FLOCK.pack(kind, os.SEEK_SET, self.offset, 1, 0))
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return False
            raise
        return True

    def try_shared(self) -> bool:
        """Take (or convert to, atomically) a shared lock without waiting."""
        if self._set(fcntl.F_RDLCK):
            self.mode = "sh"
            return True
        return False

    def try_exclusive(self) -> bool:
        """Take (or convert to) an exclusive lock without waiting."""
        if self._set(fcntl.F_WRLCK):
            self.mode = "ex"
            return True
        return False

    def release(self) -> None:
        if self.fd is not None and self.mode is not None:
            self._set(fcntl.F_UNLCK)
        self.mode = None

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the description drops its lock
        self.fd, self.mode = None, None

    def is_free(self) -> bool:
        """True if nobody holds this lock in any mode (``F_OFD_GETLK``: takes no lock)."""
        if self.mode is not None:
            return False
        if self.fd is None:
            self.fd = _open_lock_file(self.path)
        got = fcntl.fcntl(self.fd, fcntl.F_OFD_GETLK, _FLOCK.pack(fcntl.F_WRLCK, os.SEEK_SET, self.offset, 1, 0))
        return _FLOCK.unpack(got)[0] == fcntl.F_UNLCK

    def __del__(self):  # pragma: no cover - safety net; callers close explicitly
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass


def _file_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path, follow_symlinks=False)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _parse_lock_line(parts: list[str]) -> tuple[int, int, int, int, str] | None:
    """``(major, minor, inode, start, "READ"|"WRITE")`` of an OFD lock line (``/proc/locks``, fdinfo)."""
    if "->" in parts or "OFDLCK" not in parts:  # a blocked waiter, or not a lock of ours
        return None
    k = parts.index("OFDLCK")
    try:
        how, dev, start = parts[k + 2], parts[k + 4], int(parts[k + 5])
        major, minor, ino = dev.split(":")
        return int(major, 16), int(minor, 16), int(ino), start, how
    except (ValueError, IndexError):
        return None


def held_offsets(path: Path | str) -> dict[int, list[str]]:
    """``{offset: ["READ"|"WRITE", ...]}``: the entry locks held now in lock file ``path``.

    Read from ``/proc/locks`` without taking any lock; empty where it does not exist.
    """
    out: dict[int, list[str]] = {}
    fid = _file_id(os.fspath(path))
    if fid is None:
        return out
    dev, ino = fid
    try:
        text = Path("/proc/locks").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        got = _parse_lock_line(line.split())
        if got is not None and got[2] == ino and (got[0], got[1]) == (os.major(dev), os.minor(dev)):
            out.setdefault(got[3], []).append(got[4])
    return out


def lock_holders(path: Path | str) -> dict[int, list[tuple[int, str]]]:
    """``{offset: [(pid, "READ"|"WRITE"), ...]}``: who holds which entry lock of lock file ``path``.

    The pids come from ``/proc/<pid>/fdinfo`` of every process that has the
    file open; a lock held by a process this user cannot inspect is listed
    with pid -1 (from ``/proc/locks``).  For ``cache status``: it reads every
    process's descriptors.
    """
    path = os.fspath(path)
    fid = _file_id(path)
    if fid is None:
        return {}
    held = held_offsets(path)
    out: dict[int, list[tuple[int, str]]] = {}
    if not held:
        return out  # nothing locked: no need to look at every process
    try:
        pids = [d for d in os.listdir("/proc") if d.isdigit()]
    except OSError:
        pids = []
    for pid in pids:
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                st = os.stat(f"/proc/{pid}/fd/{fd}")  # the file it refers to (whatever path it was opened by)
                if (st.st_dev, st.st_ino) != fid:
                    continue
                with open(f"/proc/{pid}/fdinfo/{fd}", encoding="ascii", errors="replace") as fh:
                    info = fh.read()
            except OSError:
                continue
            for line in info.splitlines():
                if line.startswith("lock:"):
                    got = _parse_lock_line(line.split()[1:])
                    if got is not None:
                        out.setdefault(got[3], []).append((int(pid), got[4]))
    for off, modes in held.items():  # held by processes we cannot look into
        seen = out.get(off, [])
        for how in modes[len(seen):]:
            out.setdefault(off, []).append((-1, how))
    return out


def raise_fd_limit(need: int) -> None:
    """Raise the soft open-file limit so ``need`` more lock descriptors can stay open (holds)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard if hard != resource.RLIM_INFINITY else 1 << 20, soft + need + 64)
    if want > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        except (ValueError, OSError):  # pragma: no cover - keep going with what we have
            pass
