"""Empty a project's retired trash in a background *process* (``cryodesk _empty-trash DIR``).

Deleting terabytes takes minutes; the journal is gone and the database already
updated when a plan's trash is retired (``.cryodesk/trash/<plan>.gc``), so the
command or window that made the plan need not wait.  One emptier per project
at a time (an ``flock``); it loops until no retired trash is left, so a plan
that finishes while it runs is emptied too.  Started fresh, never forked.
"""

from __future__ import annotations

import errno
import fcntl
import os
import subprocess
import sys
from pathlib import Path

from . import nofollow
from .errors import DataError

TRASH = (".cryodesk", "trash")
#: a file kept in the state directory so that a deletion can start on a full disk: released when the
#: disk is nearly full (the journal, trash directories and manifests then have room), made again after
RESERVE = (".cryodesk", "reserve")
LOW_FREE = 64 << 20
#: the reserve is 1/256 of the file system within these bounds (the test suite lowers the top one):
#: room for a journal and a few hundred trash directories and manifests; what a bigger plan cannot
#: fit is reported and freed on the next run, after this one's trash is emptied
RESERVE_MIN, RESERVE_MAX = 64 << 10, 1 << 20


def _reserve_size(project_dir: Path) -> int:
    st = os.statvfs(project_dir)
    return max(RESERVE_MIN, min(RESERVE_MAX, st.f_blocks * st.f_frsize // 256))


def free_bytes(project_dir: Path) -> int:
    st = os.statvfs(project_dir)
    return st.f_bavail * st.f_frsize


def ensure_reserve(project_dir: Path) -> bool:
    """Make the reserve file if it is missing and there is room (best effort); True if it is there."""
    state = Path(project_dir) / RESERVE[0]
    path = Path(project_dir).joinpath(*RESERVE)
    try:
        if state.is_symlink() or path.is_symlink():
            return False
        if path.is_file():
            return True
        size = _reserve_size(project_dir)
        if free_bytes(project_dir) < 4 * size:
            return False  # not now: the disk is nearly full already
        state.mkdir(exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o666)  # less the umask
        try:
            os.posix_fallocate(fd, 0, size)  # real blocks, not a sparse promise
        except OSError:
            os.close(fd)
            os.unlink(path)
            return False
        os.close(fd)
        return True
    except OSError:
        return False


def release_reserve_if_low(project_dir: Path) -> bool:
    """Give the reserve back to the file system when it is nearly full; True if released."""
    path = Path(project_dir).joinpath(*RESERVE)
    try:
        if path.is_file() and not path.is_symlink() and free_bytes(project_dir) < LOW_FREE:
            path.unlink()
            return True
    except OSError:
        pass
    return False


def _root(project_dir: Path) -> Path:
    return Path(project_dir).joinpath(*TRASH)


def collect(project_dir: Path) -> list[str]:
    """Remove every ``trash/*.gc`` now; returns what could not be removed (it stays for the next run).

    Never follows a symlink and never enters another file system (a mount that
    travelled into the trash with its directory is left alone and reported).
    """
    errors: list[str] = []
    root = _root(project_dir)
    if root.is_symlink() or root.parent.is_symlink() or not root.is_dir():
        return errors
    try:
        with nofollow.open_dirs(project_dir, TRASH, where=str(root)) as fd:
            # listed and removed relative to the descriptor: a state directory swapped for a link after
            # the check above is never followed (the descriptor is of the directory that was checked)
            for name in sorted(e.name for e in os.scandir(fd) if e.name.endswith(".gc")):
                nofollow.remove_tree(fd, name, errors, str(root / name))
    except (OSError, DataError) as exc:
        errors.append(f"{root}: {getattr(exc, 'strerror', None) or exc}")
    return errors


def main(argv: list[str]) -> int:
    project_dir = Path(argv[0])
    root = _root(project_dir)
    if root.is_symlink() or root.parent.is_symlink() or not root.is_dir():
        return 0
    fd = os.open(root.parent / "emptying.lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return 0  # another emptier runs and will see what is new
            raise
        while any(root.glob("*.gc")):
            if collect(project_dir):
                return 1  # what is stuck stays for the next run
        ensure_reserve(project_dir)  # (released if a deletion started on a nearly full disk)
        return 0
    finally:
        os.close(fd)


def command(project_dir: Path) -> list[str]:
    if getattr(sys, "frozen", False):
        return [sys.executable, "_empty-trash", str(project_dir)]
    return [sys.executable, "-m", "cryodesk.base.trashworker", str(project_dir)]


def start(project_dir: Path) -> subprocess.Popen | None:
    """Start an emptier for ``project_dir`` if there is retired trash; returns the process (or None)."""
    root = _root(project_dir)
    if root.is_symlink() or not root.is_dir() or not any(root.glob("*.gc")):
        return None
    try:
        return subprocess.Popen(command(project_dir), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)
    except OSError:
        collect(project_dir)  # no process to be had: empty it here
        return None


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
