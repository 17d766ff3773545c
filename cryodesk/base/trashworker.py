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
            for gc in sorted(root.glob("*.gc")):
                nofollow.remove_tree(fd, gc.name, errors, str(gc))
    except (OSError, DataError) as exc:
        errors.append(f"{root}: {getattr(exc, 'strerror', None) or exc}")
    return errors


def main(argv: list[str]) -> int:
    project_dir = Path(argv[0])
    root = _root(project_dir)
    if root.is_symlink() or root.parent.is_symlink() or not root.is_dir():
        return 0
    fd = os.open(root.parent / "emptying.lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
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
