"""File-system primitives every layer shares: one atomic writer, one tree walker, one lock.

* :func:`atomic_write` — a reader sees the old file or the new one, never half
  of it (temp file in the same directory, optional fsync, rename).
* :func:`walk` — what lies below a directory, through directory file
  descriptors opened with ``O_NOFOLLOW``: a symlink is listed, never followed
  (also not when someone swaps a directory for a link while we walk).
* :func:`tree_size` — bytes of the regular files below a path (symlinks 0).
* :func:`inside` — is a path below a root, its last component not followed.
* :func:`file_lock` — an exclusive ``flock`` the kernel releases if the process dies.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .errors import LockedError

_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)


# -- atomic writes -------------------------------------------------------------------

def atomic_write(path: Path | str, data: bytes | str | Callable, durable: bool = True, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically.

    ``data`` is bytes, text, or a callable ``write(fh)`` that writes into the
    open binary temp file (for big outputs written in pieces).  ``durable``
    fsyncs the file before the rename (skip it only for derived files whose
    truth is elsewhere).  ``path`` itself is replaced, never followed: a
    symlink at ``path`` is replaced by the file.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data.encode() if isinstance(data, str) else data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def atomic_write_json(path: Path | str, data, durable: bool = True) -> None:
    """:func:`atomic_write` of ``data`` as indented, key-sorted JSON."""
    atomic_write(path, json.dumps(data, indent=1, sort_keys=True, default=str), durable)


def is_temp_name(name: str, target: str) -> bool:
    """Whether ``name`` is a temp file :func:`atomic_write` made for ``target`` (left by a crash)."""
    return name.startswith(f".{target}.") and name.endswith(".tmp")


# -- walking trees ---------------------------------------------------------------------

@dataclass
class TreeStats:
    """What a walk of one tree found (regular files only; symlinks listed, not followed)."""

    bytes: int = 0
    files: int = 0
    dirs: int = 0
    #: bytes of the top-level files named in ``walk(..., count_apart=...)``
    apart_bytes: int = 0
    links: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, other: "TreeStats") -> None:
        self.bytes += other.bytes
        self.files += other.files
        self.dirs += other.dirs
        self.apart_bytes += other.apart_bytes
        self.links.extend(other.links)
        self.errors.extend(other.errors)


def walk(top: str | Path, count_apart: Callable[[str], bool] | None = None) -> TreeStats:
    """Walk the directory ``top`` (never following a symlink, ``top`` included).

    ``count_apart(name)`` marks top-level files whose bytes are also summed in
    ``apart_bytes`` (a job's manifest, say).  Unreadable entries are listed in
    ``errors``; entries that vanish meanwhile are skipped.
    """
    top = os.fspath(top)
    out = TreeStats()
    try:
        fd0 = os.open(top, _DIR_FLAGS)
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            out.errors.append(f"{top}: {exc.strerror}")
        return out
    stack = [(fd0, top, True)]
    while stack:
        fd, path, is_top = stack.pop()
        out.dirs += 1
        try:
            with os.scandir(fd) as it:
                for e in it:
                    try:
                        if e.is_dir(follow_symlinks=False):
                            sub = os.open(e.name, _DIR_FLAGS, dir_fd=fd)
                            stack.append((sub, f"{path}/{e.name}", False))
                        elif e.is_symlink():
                            out.links.append(f"{path}/{e.name}")
                        elif e.is_file(follow_symlinks=False):
                            size = e.stat(follow_symlinks=False).st_size
                            out.bytes += size
                            out.files += 1
                            if is_top and count_apart is not None and count_apart(e.name):
                                out.apart_bytes += size
                    except FileNotFoundError:
                        continue  # removed while we looked: it is not there any more
                    except OSError as exc:
                        out.errors.append(f"{path}/{e.name}: {exc.strerror}")
        except OSError as exc:
            out.errors.append(f"{path}: {exc.strerror}")
        finally:
            os.close(fd)
    return out


def tree_size(path: Path | str) -> int:
    """Bytes of the regular files at or below ``path``, never following symlinks (a link counts 0).

    A missing path counts 0.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0
    import stat as _stat

    if _stat.S_ISDIR(st.st_mode):
        return walk(path).bytes
    return st.st_size if _stat.S_ISREG(st.st_mode) else 0


def inside(path: Path, root: Path) -> bool:
    """True if ``path`` (its parent resolved, the last component *not* followed) lies below ``root``."""
    parent = Path(os.path.realpath(path.parent))
    candidate = parent / path.name
    try:
        candidate.relative_to(Path(os.path.realpath(root)))
    except ValueError:
        return False
    return candidate != Path(os.path.realpath(root))


# -- locks -----------------------------------------------------------------------------------

@contextmanager
def file_lock(path: Path, what: str, timeout: float = 10.0):
    """Hold an exclusive OS file lock on ``path`` (released by the kernel if the process dies).

    The lock file's directory is made if missing (never its parents: a
    missing project must not be recreated), and a symlink in its place is
    refused rather than followed.
    """
    path = Path(path)
    if path.parent.is_symlink():
        raise LockedError(f"{path.parent} is a symlink; cryodesk never follows one for its own state")
    path.parent.mkdir(exist_ok=True)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LockedError(f"{path} is a symlink; cryodesk never follows one for its own state") from None
        raise
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise LockedError(f"another cryodesk process holds the lock for {what} ({path})") from None
                time.sleep(0.05)
        yield
    finally:
        os.close(fd)  # closing releases the flock
