"""File operations that cannot be steered through a symlink or across a mount, even by a race.

A check such as "the parent of this path resolves inside the job directory"
and the rename that follows are two system calls: someone who can write into
the project can swap a directory for a symlink in between.  These helpers
walk down from a directory file descriptor one component at a time with
``O_NOFOLLOW`` and act relative to the last one (``renameat``, ``unlinkat``),
so what a component pointed to when it was opened is what is acted on.

* :func:`open_dirs` — a descriptor of ``base/part/part/...``, refusing links.
* :func:`move` — ``renameat`` of one entry between two such directories.
* :func:`remove_tree` — delete a tree without following links or entering another file system.
* :func:`mounts_below` — mount points at or below a path (``/proc/self/mountinfo``).
* :func:`read_regular` — a file's text, refusing FIFOs, devices and links (no hang).
* :func:`open_append` — append to a regular file, refusing links, FIFOs and devices.
* :func:`require_regular` — refuse an input file that is a FIFO, socket, device or directory (it would block).
"""

from __future__ import annotations

import errno
import os
import stat
from contextlib import contextmanager
from pathlib import Path

from .errors import DataError

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW


class LinkRefused(DataError):
    """A path component is a symlink (or not a directory) where a real directory was needed."""


@contextmanager
def open_dirs(base: str | Path | int, parts, create: bool = False, where: str = ""):
    """A descriptor of the directory ``base/parts...``, every component opened with ``O_NOFOLLOW``.

    ``base`` is a path (followed: the caller trusts it) or a descriptor.
    ``create`` makes missing components.  A component that is a symlink or
    not a directory raises :class:`LinkRefused`.
    """
    fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY) if not isinstance(base, int) else os.dup(base)
    try:
        for part in parts:
            if part in ("", ".", "..") or "/" in part:
                raise LinkRefused(f"{where or part}: {part!r} is not a plain path component")
            if create:
                try:
                    os.mkdir(part, 0o777, dir_fd=fd)  # less the umask
                except FileExistsError:
                    pass
            try:
                nfd = os.open(part, DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise LinkRefused(f"{where or part}: {part} is a symlink or not a directory; "
                                      "cryodesk never follows one") from None
                raise
            os.close(fd)
            fd = nfd
        yield fd
    finally:
        os.close(fd)


def exists(dir_fd: int, name: str) -> bool:
    try:
        os.lstat(name, dir_fd=dir_fd)
        return True
    except FileNotFoundError:
        return False


def move(src_fd: int, name: str, dst_fd: int, dst_name: str | None = None) -> bool:
    """Rename entry ``name`` of directory ``src_fd`` into ``dst_fd`` (a link moves as a link).

    Returns False when there is nothing to move.  A directory that is another
    file system's mount point is refused (a differing device, or ``EXDEV``).
    """
    try:
        st = os.lstat(name, dir_fd=src_fd)
    except FileNotFoundError:
        return False
    if stat.S_ISDIR(st.st_mode) and st.st_dev != os.fstat(src_fd).st_dev:
        raise DataError(f"{name} is the mount point of another file system; unmount it first")
    try:
        os.rename(name, dst_name or name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            raise DataError(f"{name} is on another file system; "
                            "cryodesk deletes only by moving into the project's trash") from None
        raise
    return True


def remove_tree(parent_fd: int, name: str, errors: list[str], shown: str = "") -> bool:
    """Delete entry ``name`` of ``parent_fd`` and all below it; returns True if it is gone.

    Never follows a link (links are unlinked) and never enters a directory on
    another device than ``parent_fd`` (a mount point: left in place, reported
    in ``errors``).  Entries that vanish meanwhile are fine.
    """
    shown = shown or name
    try:
        st = os.lstat(name, dir_fd=parent_fd)
    except FileNotFoundError:
        return True
    try:
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(name, dir_fd=parent_fd)
            return True
        if st.st_dev != os.fstat(parent_fd).st_dev:
            errors.append(f"{shown}: another file system is mounted here; left alone")
            return False
        fd = os.open(name, DIR_FLAGS, dir_fd=parent_fd)
        try:
            gone = True
            for entry in list(os.scandir(fd)):
                gone &= remove_tree(fd, entry.name, errors, f"{shown}/{entry.name}")
        finally:
            os.close(fd)
        if gone:
            os.rmdir(name, dir_fd=parent_fd)
        return gone
    except FileNotFoundError:
        return True
    except OSError as exc:
        errors.append(f"{shown}: {exc.strerror or exc}")
        return False


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \\ooo octal
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and i + 4 <= len(field) and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts_below(path: str | Path) -> list[str]:
    """Mount points at or below ``path`` (resolved), from ``/proc/self/mountinfo`` ([] elsewhere)."""
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return []
    root = os.path.realpath(path)
    out = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 4:
            point = _unescape(fields[4])
            if point == root or point.startswith(root.rstrip("/") + "/"):
                out.append(point)
    return out


def open_append(path: str | Path):
    """A text file handle appending to the regular file ``path`` (made if missing); a link is refused.

    For logs cryodesk keeps in a job directory: a ``job.log`` symlink planted
    there must not make cryodesk append to whatever it points to.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise LinkRefused(f"{path} is a symlink; cryodesk never writes through one") from None
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise DataError(f"{path} is not a regular file; cryodesk writes logs only into its own files")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "a", encoding="utf-8")


def read_regular(path: str | Path, limit: int = 64 << 20) -> str:
    """The text of the regular file ``path``; a FIFO, device, directory or symlink is refused, never waited on."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DataError(f"{path} is a symlink; refused") from None
        raise
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DataError(f"{path} is not a regular file; refused")
        if st.st_size > limit:
            raise DataError(f"{path} is {st.st_size} bytes, too large to be cryodesk's")
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                break
            chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", errors="replace")
    finally:
        os.close(fd)


_KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a directory"))


def require_regular(path: str | Path, what: str = "file") -> None:
    """Refuse ``path`` unless it is a regular file (a symlink to one is fine: inputs are often linked).

    Every reader of a user-named input calls this first: ``open`` of a FIFO blocks until a writer
    comes, in C, where neither Ctrl-C nor SIGTERM nor a job's cancel can reach it.  The file is opened
    with ``O_NONBLOCK`` (which never waits on a FIFO) and checked with ``fstat``.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise DataError(f"{path}: {what} not found") from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket, or a device without a driver
            raise DataError(f"{path}: {what} is not a regular file; cryodesk reads only regular files") from None
        raise DataError(f"{path}: cannot read the {what} ({exc.strerror or exc})") from None
    try:
        mode = os.fstat(fd).st_mode
    finally:
        os.close(fd)
    if not stat.S_ISREG(mode):
        kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
        raise DataError(f"{path}: the {what} is {kind}, not a regular file; cryodesk reads only regular files "
                        "(reading a pipe or device would block)")
