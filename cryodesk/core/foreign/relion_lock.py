"""RELION's own lock: the ``.relion_lock/`` directory, made with ``mkdir`` as RELION 4/5 make it.

RELION creates ``.relion_lock`` (atomically: ``mkdir`` fails if it exists) before
it rewrites ``default_pipeline.star`` and removes it afterwards; 3.1 used a file
``.lock_default_pipeline.star``.  cryodesk takes the same lock around every
change it makes to a RELION project and refuses — never waits, never breaks it —
while RELION (or another cryodesk) holds it.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

from ...base.errors import LockedError

LOCK_DIR = ".relion_lock"
LOCK_FILE = "lock_default_pipeline.star"  # what RELION writes inside it
OLD_LOCK = ".lock_default_pipeline.star"  # RELION 3.1


def holder(project_dir: Path) -> str | None:
    """What holds RELION's lock now (its path), or None."""
    for name in (LOCK_DIR, OLD_LOCK):
        if os.path.lexists(Path(project_dir) / name):
            return str(Path(project_dir) / name)
    return None


@contextmanager
def relion_lock(project_dir: Path, what: str = "a change"):
    project_dir = Path(project_dir)
    lock = project_dir / LOCK_DIR
    old = holder(project_dir)
    if old and old != str(lock):
        raise LockedError(f"RELION holds its lock ({old}): {what} was not made; try again when RELION is done")
    try:
        os.mkdir(lock)
    except FileExistsError:
        raise LockedError(f"RELION holds its lock ({lock}): {what} was not made; try again when RELION "
                          "is done (remove the directory by hand only if no RELION is running)") from None
    try:
        with open(lock / LOCK_FILE, "w") as fh:
            fh.write(f"cryodesk pid {os.getpid()}\n")
        yield lock
    finally:
        try:
            os.unlink(lock / LOCK_FILE)
        except FileNotFoundError:
            pass
        os.rmdir(lock)
