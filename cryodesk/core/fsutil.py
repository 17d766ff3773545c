"""File-system helpers that never follow a symlink out of where they were pointed."""

from __future__ import annotations

import errno
import fcntl
import os
import time
from contextlib import contextmanager
from pathlib import Path

from .errors import DataError, LockedError


def tree_size(path: Path) -> int:
    """Bytes allocated-as-apparent-size below ``path`` (files only), never following symlinks.

    Symlinks themselves count as 0: what they point to (imported raw data,
    say) is not part of the tree.  Missing paths count as 0.
    """
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return 0
    if not os.path.isdir(path) or os.path.islink(path):
        return 0 if os.path.islink(path) else st.st_size
    total = 0
    stack = [os.fspath(path)]
    while stack:
        top = stack.pop()
        try:
            it = os.scandir(top)
        except (FileNotFoundError, NotADirectoryError, PermissionError):
            continue
        with it:
            for entry in it:
                try:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif entry.is_file(follow_symlinks=False):
                        total += entry.stat(follow_symlinks=False).st_size
                except FileNotFoundError:
                    continue
    return total


def inside(path: Path, root: Path) -> bool:
    """True if ``path`` (its parent resolved, the last component *not* followed) lies below ``root``."""
    parent = Path(os.path.realpath(path.parent))
    candidate = parent / path.name
    try:
        candidate.relative_to(Path(os.path.realpath(root)))
    except ValueError:
        return False
    return candidate != Path(os.path.realpath(root))


def require_project_dir(project_dir: Path | str) -> Path:
    """The project directory, checked to exist and hold its ``project.json``.

    Every write into a project goes through here first: an unmounted disk
    or a moved directory must stop an action, never be silently recreated
    (the database and the real directory would then disagree).
    """
    path = Path(project_dir)
    if not (path / "project.json").is_file():
        what = "is missing" if not path.exists() else "holds no project.json"
        raise DataError(f"project directory {path} {what}: is its disk mounted? "
                        "(nothing was changed)")
    return path


def check_job_dir(project_dir: Path, job_dir_name: str) -> Path:
    """The job directory, checked to be a real directory directly inside the project."""
    job_dir = project_dir / job_dir_name
    if job_dir.is_symlink():
        raise DataError(f"{job_dir} is a symlink; cryodesk never deletes through a symlinked job directory")
    if not inside(job_dir, project_dir):
        raise DataError(f"{job_dir} escapes the project directory {project_dir}")
    return job_dir


@contextmanager
def file_lock(path: Path, what: str, timeout: float = 10.0):
    """Hold an exclusive OS file lock on ``path`` (released by the kernel if the process dies)."""
    path.parent.mkdir(exist_ok=True)  # never parents: a missing project must not be recreated
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
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
