"""Where a project's files may be touched: the project directory and its job directories.

Generic primitives (atomic writes, the walker, locks) are in :mod:`cryodesk.base.fsio`.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..base.errors import DataError
from ..base.fsio import inside

_JOB_DIR = re.compile(r"^J[1-9][0-9]{0,9}$")
_SESSION_DIR = re.compile(r"^S[1-9][0-9]{0,9}$")


def require_project_dir(project_dir: Path | str) -> Path:
    """The project directory, checked to exist and hold its ``project.json``.

    Every write into a project goes through here first: an unmounted disk
    or a moved directory must stop an action, never be silently recreated
    (the database and the real directory would then disagree).
    """
    path = Path(project_dir)
    if path.is_symlink() and not path.exists():
        raise DataError(f"project directory {path} is a dangling symlink: is its disk mounted? (nothing was changed)")
    # (a RELION project, issue 16, is marked by its pipeline instead)
    if not (path / "project.json").is_file() and not (path / "default_pipeline.star").is_file():
        what = "is missing" if not path.exists() else "holds no project.json"
        raise DataError(f"project directory {path} {what}: is its disk mounted? "
                        "(nothing was changed)")
    return path


def check_job_dir(project_dir: Path, job_dir_name: str) -> Path:
    """The job directory ``J<n>``, checked to be a real directory (or absent) directly inside the project.

    Refuses a name that is not ``J<n>`` (``..``, ``J1/../J2``, an absolute
    path), a symlink, and anything that resolves outside the project.
    """
    return _check_item_dir(project_dir, job_dir_name, _JOB_DIR, "job")


def check_session_dir(project_dir: Path, name: str) -> Path:
    """A live session's directory ``S<n>``, checked as :func:`check_job_dir` checks a job's."""
    return _check_item_dir(project_dir, name, _SESSION_DIR, "session")


def _check_item_dir(project_dir: Path, name: str, pattern: re.Pattern, what: str) -> Path:
    if not isinstance(name, str) or not pattern.match(name):
        letter = what[0].upper()
        raise DataError(f"{name!r} is not a {what} directory name ({letter}<number>); refused")
    item_dir = Path(project_dir) / name
    if item_dir.is_symlink():
        raise DataError(f"{item_dir} is a symlink; cryodesk never deletes through a symlinked {what} directory")
    if not inside(item_dir, Path(project_dir)):
        raise DataError(f"{item_dir} escapes the project directory {project_dir}")
    return item_dir
