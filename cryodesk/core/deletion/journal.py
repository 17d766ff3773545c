"""The journal and the trash, in the project's ``.cryodesk/`` state directory.

``journal/<plan>.json`` holds a plan being carried out (which of its items are
decided is in the database, table ``applied_item``); ``trash/<plan>/`` what the plan's
items have moved out of the job directories (an atomic rename on the same
file system; a symlink moves as a link).  A finished plan's trash is renamed
``trash/<plan>.gc`` (instant, under the lock) and emptied later, in the
background (:mod:`cryodesk.base.trashworker`).

State directories are cryodesk's own: a symlink in their place is refused,
never followed.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...base import nofollow
from ...base.errors import DataError
from ...base.fsio import atomic_write, atomic_write_json, fsync_dir, inside

STATE_DIR = ".cryodesk"
REJECTED = "rejected"


def _real_dir(path: Path, create: bool) -> Path:
    """``path`` as a real directory (made if asked and missing); a symlink is refused."""
    if path.is_symlink():
        raise DataError(f"{path} is a symlink; cryodesk never follows one for its own state (nothing was changed)")
    if create:
        try:
            path.mkdir(exist_ok=True)
        except FileExistsError:
            raise DataError(f"{path} exists and is not a directory (nothing was changed)") from None
    return path


def state_dir(project_dir: Path, create: bool = False) -> Path:
    return _real_dir(Path(project_dir) / STATE_DIR, create)


def state_problem(project_dir: Path) -> str | None:
    """Why the project's state directory cannot be used (a symlink, not a directory), or None.

    For read commands, which only say it (a deletion refuses with the same reason).
    """
    base = Path(project_dir) / STATE_DIR
    for path in (base, base / "journal", base / "trash"):
        if path.is_symlink():
            return (f"{path} is a symlink; cryodesk never follows one for its own state, so nothing in this "
                    "project can be cleared or deleted until it is a real directory inside the project")
        if os.path.lexists(path) and not path.is_dir():
            return f"{path} is not a directory; nothing in this project can be cleared or deleted until it is one"
        if path == base and not path.is_dir():
            break  # (no state yet: nothing below it either)
    return None


def journal_dir(project_dir: Path, create: bool = False) -> Path:
    base = state_dir(project_dir, create)
    return _real_dir(base / "journal", create) if create or base.is_dir() else base / "journal"


def trash_root(project_dir: Path, create: bool = False) -> Path:
    base = state_dir(project_dir, create)
    return _real_dir(base / "trash", create) if create or base.is_dir() else base / "trash"


def trash_dir(project_dir: Path, plan_id: str) -> Path:
    return trash_root(project_dir) / plan_id


def journals(project_dir: Path) -> list[Path]:
    jdir = journal_dir(project_dir)
    return sorted(jdir.glob("*.json")) if jdir.is_dir() and not jdir.is_symlink() else []


def read_journal(journal: Path) -> str:
    """A journal's text; a FIFO, device or link in its place is refused at once (never waited on)."""
    return nofollow.read_regular(journal)


def write_journal(project_dir: Path, plan_dict: dict) -> Path:
    """Write the journal durably (file and directory entry) before anything is removed."""
    jdir = journal_dir(project_dir, create=True)
    path = jdir / f"{plan_dict['id']}.json"
    try:
        atomic_write_json(path, plan_dict)
        fsync_dir(jdir)
    except OSError as exc:
        raise DataError(f"cannot write the deletion journal in {jdir}: {exc.strerror or exc}; "
                        "nothing was deleted") from None
    return path


def finish(journal: Path) -> None:
    journal.with_suffix(".done").unlink(missing_ok=True)  # (written by cryodesk before schema v4)
    journal.unlink(missing_ok=True)
    fsync_dir(journal.parent)


def reject(journal: Path, why: str) -> Path:
    """Move a journal that will not be replayed aside (kept for a person to read), with the reason."""
    dest_dir = _real_dir(journal.parent / REJECTED, create=True)
    dest = dest_dir / journal.name
    os.replace(journal, dest)
    done = journal.with_suffix(".done")
    if done.exists():
        os.replace(done, dest_dir / done.name)
    atomic_write(dest_dir / f"{journal.stem}.why", why + "\n")
    return dest


# -- moving paths in and out of the trash ------------------------------------------
# Every move walks down from the project directory's descriptor with O_NOFOLLOW
# (base.nofollow) and renames relative to the last directory: a directory swapped
# for a symlink after a check is refused, never followed.

def checked_paths(project_dir: Path, job_dir: Path, rels: list[str]) -> list[Path]:
    """The item's paths as absolute paths, each checked (after resolving its parents) to lie in ``job_dir``.

    A cheap early check for plans and previews; the moves themselves do not rely on it.
    """
    out = []
    for rel in rels:
        p = project_dir / rel
        if not (p == job_dir or inside(p, job_dir)):
            raise DataError(f"plan path {rel} resolves outside {job_dir}; refused")
        out.append(p)
    return out


def mount_problem(project_dir: Path, rels: list[str]) -> str | None:
    """A mount point at or below one of ``rels``: its files are another file system's, never ours to delete."""
    for rel in rels:
        below = nofollow.mounts_below(project_dir / rel)
        if below:
            return (f"{below[0]} is the mount point of another file system inside {rel}; "
                    "unmount it first")
    return None


def _parts(rel: str) -> tuple[list[str], str]:
    parts = rel.split("/")
    return parts[:-1], parts[-1]


def move_to_trash(project_dir: Path, plan_id: str, rels: list[str]) -> None:
    """Move each path of ``rels`` (relative to the project) into ``trash/<plan_id>/`` at the same relative place."""
    trash_root(project_dir, create=True)
    with nofollow.open_dirs(project_dir, [STATE_DIR, "trash", plan_id], create=True, where="trash") as trash_fd:
        for rel in rels:
            parents, name = _parts(rel)
            try:
                with nofollow.open_dirs(project_dir, parents, where=rel) as src_fd:
                    if not nofollow.exists(src_fd, name):
                        continue  # moved on an earlier (interrupted) run, or never there
                    with nofollow.open_dirs(trash_fd, parents, create=True, where=rel) as dst_fd:
                        nofollow.move(src_fd, name, dst_fd)
            except FileNotFoundError:
                continue  # its directory is gone: moved with a parent, or never there


def restore_from_trash(project_dir: Path, plan_id: str, rels: list[str]) -> list[str]:
    """Put back what an interrupted run had moved for an item that is now refused.

    Returns the paths that could not be put back (they stay in the trash,
    which is then kept rather than emptied): something new in their place, or
    a job directory that is not a real directory any more (never written through).
    """
    trash = trash_dir(project_dir, plan_id)
    stuck = []
    if not trash.is_dir() or trash.is_symlink():
        return stuck
    for rel in rels:
        parents, name = _parts(rel)
        try:
            with nofollow.open_dirs(trash, parents, where=rel) as src_fd:
                if not nofollow.exists(src_fd, name):
                    continue
                with nofollow.open_dirs(project_dir, parents, create=True, where=rel) as dst_fd:
                    if nofollow.exists(dst_fd, name):  # something new took its place: keep both, report
                        stuck.append(rel)
                        continue
                    nofollow.move(src_fd, name, dst_fd)
        except FileNotFoundError:
            continue
        except (OSError, DataError):
            stuck.append(rel)
    return stuck


def has_entries(path: Path) -> bool:
    """``path`` is a real directory with something in it (a link is not looked into)."""
    try:
        if path.is_symlink() or not path.is_dir():
            return False
        with os.scandir(path) as it:
            return any(True for _ in it)
    except OSError:
        return False


def retire_trash(project_dir: Path, plan_id: str) -> None:
    """Mark a finished plan's trash as garbage (a rename: instant, done under the lock)."""
    trash = trash_dir(project_dir, plan_id)
    if os.path.lexists(trash):
        os.rename(trash, trash.with_name(f"{plan_id}.gc"))


def has_garbage(project_dir: Path) -> bool:
    root = Path(project_dir) / STATE_DIR / "trash"
    return root.is_dir() and not root.is_symlink() and any(root.glob("*.gc"))
