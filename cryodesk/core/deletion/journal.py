"""The journal and the trash, in the project's ``.cryodesk/`` state directory.

``journal/<plan>.json`` holds a plan being carried out, ``journal/<plan>.done``
the indices of its items already applied; ``trash/<plan>/`` what the plan's
items have moved out of the job directories (an atomic rename on the same
file system; a symlink moves as a link).  A finished plan's trash is renamed
``trash/<plan>.gc`` (instant, under the lock) and emptied later, in the
background (:mod:`cryodesk.base.trashworker`).

State directories are cryodesk's own: a symlink in their place is refused,
never followed.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

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


def mark_done(journal: Path, index: int) -> None:
    try:
        with open(journal.with_suffix(".done"), "a") as fh:
            fh.write(f"{index}\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as exc:
        raise DataError(f"cannot record progress in {journal.with_suffix('.done')}: {exc.strerror or exc}; "
                        "the rest of the plan is finished (or undone) on the next start") from None


def done_indices(journal: Path) -> set[int]:
    try:
        text = journal.with_suffix(".done").read_text()
    except FileNotFoundError:
        return set()
    return {int(x) for x in text.split() if x.strip().isdigit()}


def finish(journal: Path) -> None:
    journal.with_suffix(".done").unlink(missing_ok=True)
    journal.unlink(missing_ok=True)


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

def checked_paths(project_dir: Path, job_dir: Path, rels: list[str]) -> list[Path]:
    """The item's paths as absolute paths, each checked (after resolving its parents) to lie in ``job_dir``."""
    out = []
    for rel in rels:
        p = project_dir / rel
        if not (p == job_dir or inside(p, job_dir)):
            raise DataError(f"plan path {rel} resolves outside {job_dir}; refused")
        out.append(p)
    return out


def move_to_trash(project_dir: Path, plan_id: str, paths: list[Path]) -> None:
    trash = _real_dir(trash_root(project_dir, create=True) / plan_id, create=True)
    for p in paths:
        if not os.path.lexists(p):
            continue  # moved on an earlier (interrupted) run, or never there
        dest = trash / p.relative_to(project_dir)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(p, dest)
        except OSError as exc:
            if exc.errno == errno.EXDEV:  # a mount point inside a job directory: never copied
                raise DataError(f"{p} is on another file system; cryodesk deletes only by moving "
                                "into the project's trash (nothing was changed for this job)") from None
            raise


def restore_from_trash(project_dir: Path, plan_id: str, rels: list[str]) -> list[str]:
    """Put back what an interrupted run had moved for an item that is now refused.

    Returns the paths that could not be put back (they stay in the trash,
    which is then kept rather than emptied).
    """
    trash = trash_dir(project_dir, plan_id)
    stuck = []
    for rel in rels:
        src, dest = trash / rel, project_dir / rel
        if not os.path.lexists(src):
            continue
        if os.path.lexists(dest):  # something new took its place meanwhile: keep both, report
            stuck.append(rel)
            continue
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.rename(src, dest)
        except OSError:
            stuck.append(rel)
    return stuck


def retire_trash(project_dir: Path, plan_id: str) -> None:
    """Mark a finished plan's trash as garbage (a rename: instant, done under the lock)."""
    trash = trash_dir(project_dir, plan_id)
    if os.path.lexists(trash):
        os.rename(trash, trash.with_name(f"{plan_id}.gc"))


def has_garbage(project_dir: Path) -> bool:
    root = Path(project_dir) / STATE_DIR / "trash"
    return root.is_dir() and not root.is_symlink() and any(root.glob("*.gc"))
