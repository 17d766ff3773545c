"""File-system primitives every layer shares: one atomic writer, one tree walker, one lock.

* :class:`AtomicFile` — a reader sees the old file or the new one, never half
  of it (temp file in the same directory, optional fsync, rename; the temp
  file removed on any error).  :func:`atomic_write` writes one in a call,
  :func:`replace_from` publishes a temp file (or directory) made elsewhere.
* :func:`walk` — what lies below a directory, through directory file
  descriptors opened with ``O_NOFOLLOW``: a symlink is listed, never followed
  (also not when someone swaps a directory for a link while we walk).
* :func:`tree_size` — bytes of the regular files below a path (symlinks 0).
* :func:`du_size` — the size of a path as ``du -sb`` reports it: every entry's
  own size (directories and symlinks included), a hard-linked file once.
* :func:`inside` — is a path below a root, its last component not followed.
* :func:`file_lock` — an exclusive ``flock`` the kernel releases if the process dies.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import re
import shutil
import stat
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .errors import DataError, LockedError

_DIR_FLAGS = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_NOFOLLOW", 0)


# -- permissions -------------------------------------------------------------------

def current_umask() -> int:
    """The process's umask, read without changing it (``/proc/self/status``; else set and restore)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    old = os.umask(0o022)  # no /proc: the classic dance (a thread creating a file meanwhile gets 022)
    os.umask(old)
    return old


#: what ``os.open`` is given for cryodesk's files (directories: ``0o777``): the umask decides the rest,
#: so that a shared project's group (umask 002) can read and write what any member's cryodesk wrote
FILE_MODE = 0o666


# -- atomic writes -------------------------------------------------------------------

_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)


class AtomicFile:
    """A file written under a temp name beside ``path`` and renamed onto it when complete.

    A reader of ``path`` sees the old file or the new one, never part of one;
    :meth:`abort` (or leaving the ``with`` block by an exception) removes the
    temp file and leaves ``path`` as it was.  Every writer of a file that
    must not be seen half-written goes through this class.

    Parameters
    ----------
    path : path-like
        The final name.  Replaced, never followed: a symlink there is replaced by the file.
    durable : bool
        ``fsync`` the file before the rename.  Skip it for files whose truth is
        elsewhere, or when the caller makes a batch durable with one sync.
    mode : int, optional
        Permission bits; default ``0o666`` less the umask, as :func:`open` gives.
    tmp : path-like, optional
        A fixed temp name, for a writer whose partial file others must find
        (the SSD cache accounts for and removes its partial copies); a file
        left there is overwritten.  Default: a fresh ``.<name>.<random>.tmp``
        (:func:`is_temp_name`).
    buffered : bool
        False: :attr:`fh` is the unbuffered raw file, for writers that only use
        ``fh.fileno()`` (``copy_file_range``; it spares two system calls per file).

    Attributes
    ----------
    fh : binary file object
        Where the data goes; ``fh.fileno()`` for ``os.pwrite`` or ``copy_file_range``.
    tmp : Path
        The temp file, for writers that open by name (mrcfile, ``shutil.copyfile``).

    Examples
    --------
    >>> with AtomicFile(out, durable=False) as f:      # doctest: +SKIP
    ...     np.save(f.fh, data)
    """

    def __init__(self, path: Path | str, durable: bool = True, mode: int | None = None,
                 tmp: Path | str | None = None, buffered: bool = True):
        self.path = path if isinstance(path, Path) else Path(path)  # (no re-parse: the SSD cache makes thousands)
        self.durable = durable
        self._published = False
        if tmp is None:
            fd, self.tmp = _new_temp(self.path)
        else:
            self.tmp = tmp if isinstance(tmp, Path) else Path(tmp)
            fd = os.open(self.tmp, _NEW_FILE | os.O_TRUNC, 0o666)
        try:
            if mode is not None:
                os.fchmod(fd, mode)
            self.fh = os.fdopen(fd, "wb") if buffered else os.fdopen(fd, "wb", buffering=0)
        except BaseException:
            os.close(fd)
            self.tmp.unlink(missing_ok=True)
            raise

    def close(self) -> None:
        """Flush (``durable``: and fsync) and close; the data is then complete under :attr:`tmp`.

        Idempotent.  On its own it is for a caller that publishes later with
        :func:`replace_from` (after one sync for a batch); if it raises, call :meth:`abort`.
        """
        if self.fh.closed:
            return
        try:
            self.fh.flush()
            if self.durable:
                os.fsync(self.fh.fileno())
        finally:
            self.fh.close()

    def commit(self) -> Path:
        """:meth:`close`, then rename the file onto :attr:`path`; on any failure the temp file is removed."""
        try:
            self.close()
        except BaseException:
            self.abort()
            raise
        replace_from(self.tmp, self.path)
        self._published = True
        return self.path

    def abort(self) -> None:
        """Close and remove the temp file; :attr:`path` is untouched.  A no-op after :meth:`commit`."""
        if self._published:
            return  # a fixed temp name may already be another writer's
        try:
            self.fh.close()
        except OSError:
            pass  # the write that failed is reported by whoever called us
        self.tmp.unlink(missing_ok=True)

    def __enter__(self) -> "AtomicFile":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.commit()
        else:
            self.abort()


def _new_temp(path: Path) -> tuple[int, Path]:
    # Not tempfile.mkstemp: it creates mode 0600, and a project's files should
    # get the user's umask like any other file they write.
    for _ in range(100):
        tmp = path.with_name(f".{path.name}.{os.urandom(4).hex()}.tmp")
        try:
            return os.open(tmp, _NEW_FILE | os.O_EXCL, 0o666), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no unused temp file name", os.fspath(path))


def replace_from(tmp: Path | str, path: Path | str) -> None:
    """Rename the complete ``tmp`` (a file, or a directory) onto ``path``; ``tmp`` is removed if that fails.

    The publishing half of :class:`AtomicFile`, for callers that make a batch
    of temp files durable with one sync and then publish each (the SSD cache),
    or that build a whole directory under a temp name.  ``path`` must be on the
    same file system and, for a directory, absent or empty.
    """
    try:
        os.replace(tmp, path)
    except BaseException:
        if os.path.isdir(tmp) and not os.path.islink(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write(path: Path | str, data: bytes | str | Callable, durable: bool = True,
                 mode: int | None = None) -> None:
    """Write ``data`` to ``path`` through an :class:`AtomicFile`.

    ``data`` is bytes, text (UTF-8), or a callable ``write(fh)`` that writes
    into the open binary temp file (for big outputs written in pieces).
    """
    with AtomicFile(path, durable, mode) as out:
        if callable(data):
            data(out.fh)
        else:
            out.fh.write(data.encode() if isinstance(data, str) else data)


def atomic_write_json(path: Path | str, data, durable: bool = True) -> None:
    """:func:`atomic_write` of ``data`` as indented, key-sorted JSON."""
    atomic_write(path, json.dumps(data, indent=1, sort_keys=True, default=str), durable)


def fsync_dir(path: Path | str) -> None:
    """Make the entries of directory ``path`` durable (after a rename into it)."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def is_temp_name(name: str, target: str) -> bool:
    """Whether ``name`` is a temp file :func:`atomic_write` made for ``target`` (left by a crash)."""
    return name.startswith(f".{target}.") and name.endswith(".tmp")


#: the names cryodesk's own writers give unfinished files: :class:`AtomicFile`'s ``.NAME.<8 hex>.tmp``
#: and the SSD cache's ``.NAME.cryodesk-part`` (:func:`cryodesk.cache.copy.part_name`)
_OWN_TEMP = re.compile(r"^\.(?P<target>.+)\.(?:[0-9a-f]{8}\.tmp|cryodesk-part)$")


def own_temp_target(name: str) -> str | None:
    """The file ``name`` is an unfinished write of, if it is a cryodesk temp name (else None).

    ``.job.json.1a2b3c4d.tmp`` -> ``job.json``; a name anybody else might
    use (``notes.tmp``, ``.x.tmp``) is not one.
    """
    m = _OWN_TEMP.match(name)
    return m.group("target") if m else None


def remove_own_temp(directory: Path | str, name: str) -> int:
    """Remove the cryodesk temp file ``name`` from ``directory``; its size, or 0 if nothing was removed.

    The safe helper crash recovery uses: the directory is opened without
    following a link, and only a *regular file* with a cryodesk temp name
    (:func:`own_temp_target`) is unlinked, relative to that descriptor; a
    symlink, directory or any other name is left alone.
    """
    if own_temp_target(name) is None or "/" in name:
        return 0
    try:
        fd = os.open(directory, _DIR_FLAGS)
    except OSError:
        return 0
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            return 0
        os.unlink(name, dir_fd=fd)
        return st.st_size
    except OSError:
        return 0
    finally:
        os.close(fd)


# -- walking trees ---------------------------------------------------------------------

@dataclass
class TreeStats:
    """What a walk of one tree found (symlinks listed, not followed).

    ``bytes`` counts regular files only; ``du_bytes`` is what ``du -sb``
    reports for the tree: the size of every entry (the directories
    themselves, ``top`` included, symlinks as links, other special files),
    a file with several hard links inside the tree once.
    """

    bytes: int = 0
    du_bytes: int = 0
    files: int = 0
    dirs: int = 0
    #: bytes of the top-level files named in ``walk(..., count_apart=...)``
    apart_bytes: int = 0
    links: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def add(self, other: "TreeStats") -> None:
        self.bytes += other.bytes
        self.du_bytes += other.du_bytes
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
    linked: set[tuple[int, int]] = set()  # (dev, inode) of files with several links, counted once
    while stack:
        fd, path, is_top = stack.pop()
        out.dirs += 1
        try:
            out.du_bytes += os.fstat(fd).st_size
            with os.scandir(fd) as it:
                for e in it:
                    try:
                        if e.is_dir(follow_symlinks=False):
                            sub = os.open(e.name, _DIR_FLAGS, dir_fd=fd)
                            stack.append((sub, f"{path}/{e.name}", False))
                        elif e.is_symlink():
                            out.links.append(f"{path}/{e.name}")
                            out.du_bytes += e.stat(follow_symlinks=False).st_size
                        elif e.is_file(follow_symlinks=False):
                            st = e.stat(follow_symlinks=False)
                            size = st.st_size
                            out.bytes += size
                            out.files += 1
                            if st.st_nlink < 2:
                                out.du_bytes += size
                            elif (st.st_dev, st.st_ino) not in linked:
                                linked.add((st.st_dev, st.st_ino))
                                out.du_bytes += size
                            if is_top and count_apart is not None and count_apart(e.name):
                                out.apart_bytes += size
                        else:  # a FIFO, socket or device node: du counts its own size
                            out.du_bytes += e.stat(follow_symlinks=False).st_size
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
    if stat.S_ISDIR(st.st_mode):
        return walk(path).bytes
    return st.st_size if stat.S_ISREG(st.st_mode) else 0


def du_size(path: Path | str) -> int:
    """The size of ``path`` as ``du -sb`` reports it (apparent sizes, nothing followed).

    A directory counts itself and every entry below it: files, the
    directories' own sizes, symlinks as the links they are (never their
    targets), a file with several hard links once.  A missing path counts 0.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0
    if stat.S_ISDIR(st.st_mode):
        return walk(path).du_bytes
    return st.st_size


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
    try:
        path.parent.mkdir()
    except FileExistsError:
        if not path.parent.is_dir():
            raise DataError(f"cannot take the lock for {what}: {path.parent} is not a directory "
                            f"(move it away; cryodesk keeps its state there)") from None
    # O_NONBLOCK: a FIFO in its place must not block the open (it is refused below)
    flags = os.O_RDWR | os.O_CREAT | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags, FILE_MODE)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LockedError(f"{path} is a symlink; cryodesk never follows one for its own state") from None
        if exc.errno == errno.EISDIR:
            raise DataError(f"cannot take the lock for {what}: {path} is not a regular file (a directory; "
                            f"move it away)") from None
        raise DataError(f"cannot take the lock for {what}: cannot open {path} ({exc.strerror or exc})") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DataError(f"cannot take the lock for {what}: {path} is not a regular file (move it away)")
    except BaseException:
        os.close(fd)
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
