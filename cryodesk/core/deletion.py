"""Journaled deletion: every byte cryodesk deletes goes through here.

A :class:`DeletionPlan` lists, per job, the paths to remove (each inside that
job's own directory) and the database change that goes with it (``clear``,
``delete``, ``clear_versions``).  :func:`execute` first writes the whole plan
as a journal, then for each item: moves its paths into the project's trash
(an atomic rename on the same file system; a symlink is moved as a link,
never followed), applies the database change, and records the item as done.
Finally the trash is emptied and the journal removed.

If the process dies at any point, :func:`recover` (run on the next start)
rolls the journal forward: every step is idempotent, so database and disk end
up as the plan said, and nothing outside the plan is touched.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from ..base.errors import DataError, LockedError
from ..base.fsio import atomic_write_json, file_lock, inside
from ..db.models import Job, Project, db, utcnow
from .fsutil import check_job_dir, require_project_dir

STATE_DIR = ".cryodesk"


@dataclass
class PlanItem:
    """One job's part of a plan."""

    job: str  # uid, e.g. "J5"
    action: str  # "clear" | "delete" | "clear_versions"
    paths: list[str]  # relative to the project directory
    bytes: int = 0
    reason: str = ""
    #: for clear_versions: {"group": [versions...]}
    versions: dict = field(default_factory=dict)


@dataclass
class DeletionPlan:
    project: str
    items: list[PlanItem]
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def bytes(self) -> int:
        return sum(i.bytes for i in self.items)

    def to_dict(self) -> dict:
        return {"id": self.id, "project": self.project, "items": [asdict(i) for i in self.items]}

    @classmethod
    def from_dict(cls, d: dict) -> "DeletionPlan":
        return cls(project=d["project"], id=d["id"], items=[PlanItem(**i) for i in d["items"]])


@dataclass
class ItemResult:
    job: str
    action: str
    ok: bool
    message: str = ""
    bytes: int = 0


def state_dir(project_dir: Path) -> Path:
    return project_dir / STATE_DIR


def _journal_dir(project_dir: Path) -> Path:
    return state_dir(project_dir) / "journal"


def _trash_dir(project_dir: Path, plan_id: str) -> Path:
    return state_dir(project_dir) / "trash" / plan_id


# -- database side of each action (idempotent) ----------------------------------

_APPLY: dict[str, Callable[[Project, Job, PlanItem], None]] = {}
_RECHECK: dict[str, Callable[[Project, Job, PlanItem], str | None]] = {}


def db_action(name: str, recheck: Callable[[Project, Job, PlanItem], str | None]):
    """Register the database change for plan action ``name`` (it must be idempotent).

    ``recheck`` runs just before the item is carried out and returns a reason
    to skip it (say, the job was marked final after the plan was made).
    """

    def deco(fn):
        _APPLY[name] = fn
        _RECHECK[name] = recheck
        return fn

    return deco


#: modules that register db actions; imported before a journal is replayed, so a
#: fresh process (recovery at start-up) knows every action a crashed one used
ACTION_MODULES = ("cryodesk.core.actions", "cryodesk.core.runner", "cryodesk.core.cleanup.execute")


def _load_actions(plan: "DeletionPlan") -> None:
    from importlib import import_module

    if all(i.action in _APPLY for i in plan.items):
        return
    for name in ACTION_MODULES:
        import_module(name)
    unknown = sorted({i.action for i in plan.items} - set(_APPLY))
    if unknown:
        raise DataError(f"deletion journal {plan.id} uses unknown actions {', '.join(unknown)}; "
                        "a newer cryodesk wrote it: finish it with that version")


def _check_paths(project_dir: Path, item: PlanItem) -> list[Path]:
    job_dir = check_job_dir(project_dir, item.job)
    out = []
    for rel in item.paths:
        p = project_dir / rel
        if not (p == job_dir or inside(p, job_dir)):
            raise DataError(f"{item.job}: plan path {rel} is outside the job directory; refused")
        out.append(p)
    return out


def _move_to_trash(project_dir: Path, plan_id: str, item: PlanItem) -> None:
    trash = _trash_dir(project_dir, plan_id)
    for p in _check_paths(project_dir, item):
        if not os.path.lexists(p):
            continue  # already moved on an earlier (interrupted) run
        dest = trash / p.relative_to(project_dir)
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.rename(p, dest)


def _restore_from_trash(project_dir: Path, plan_id: str, item: PlanItem) -> list[str]:
    """Put back whatever an interrupted run had moved for an item that is now refused.

    Returns the paths that could not be put back (they stay in the trash,
    which is then kept rather than emptied).
    """
    trash = _trash_dir(project_dir, plan_id)
    stuck = []
    for rel in item.paths:
        src = trash / rel
        dest = project_dir / rel
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


def _write_done(journal: Path, index: int) -> None:
    with open(journal.with_suffix(".done"), "a") as fh:
        fh.write(f"{index}\n")
        fh.flush()
        os.fsync(fh.fileno())


def _done_indices(journal: Path) -> set[int]:
    try:
        text = journal.with_suffix(".done").read_text()
    except FileNotFoundError:
        return set()
    return {int(x) for x in text.split() if x.strip().isdigit()}


def _retire_trash(project_dir: Path, plan_id: str) -> None:
    """Mark a finished plan's trash as garbage (a rename: instant, done under the lock)."""
    trash = _trash_dir(project_dir, plan_id)
    if os.path.lexists(trash):
        os.rename(trash, trash.with_name(f"{plan_id}.gc"))


def collect_garbage(project_dir: Path) -> list[str]:
    """Remove retired trash (``trash/*.gc``), *outside* the project lock.

    Emptying terabytes takes minutes; the journal is already gone and the
    database already updated, so nothing else has to wait for it.  Returns
    the errors (paths that could not be removed stay for the next run).
    """
    errors: list[str] = []

    def onerror(_fn, path, exc_info):
        exc = exc_info[1]
        errors.append(f"{path}: {getattr(exc, 'strerror', None) or exc}")

    root = state_dir(Path(project_dir)) / "trash"
    if root.is_dir():
        for gc in sorted(root.glob("*.gc")):
            shutil.rmtree(gc, onerror=onerror)
    return errors


def _run(project: Project, plan: DeletionPlan, journal: Path, progress=None, cancel=None) -> list[ItemResult]:
    project_dir = Path(project.directory)
    _load_actions(plan)
    done = _done_indices(journal)
    results: list[ItemResult] = []
    keep_trash = False
    for index, item in enumerate(plan.items):
        if index in done:
            results.append(ItemResult(item.job, item.action, True, "done before a restart", item.bytes))
            continue
        if cancel is not None and cancel():
            results.append(ItemResult(item.job, item.action, False, "cancelled before this item"))
            continue
        keep_trash |= _run_item(project, project_dir, plan, item, index, journal, results)
        if progress is not None:
            progress((index + 1) / max(1, len(plan.items)), f"{item.action} {item.job}")
    if keep_trash:
        results.append(ItemResult("-", "empty-trash", False,
                                  f"files that could not be put back are kept in {_trash_dir(project_dir, plan.id)}"))
    else:
        _retire_trash(project_dir, plan.id)
    journal.with_suffix(".done").unlink(missing_ok=True)
    journal.unlink(missing_ok=True)
    return results


def _write_lock(database):
    """A transaction that takes the write lock at once (SQLite ``IMMEDIATE``).

    The recheck and the database change then see the same state: another
    process cannot mark the job final in between.
    """
    if database.__class__.__name__.startswith("Sqlite"):
        return database.atomic("IMMEDIATE")
    return database.atomic()


def _run_item(project, project_dir: Path, plan: DeletionPlan, item: PlanItem, index: int, journal: Path,
              results: list) -> bool:
    """Carry out one item; returns True if files had to be left in the trash."""
    try:
        with _write_lock(db.obj):
            job = Job.get_or_none((Job.project == project) & (Job.number == int(item.job[1:])))
            reason = _RECHECK[item.action](project, job, item) if job is not None else None
            if reason:
                stuck = _restore_from_trash(project_dir, plan.id, item)
                _write_done(journal, index)
                results.append(ItemResult(item.job, item.action, False, f"skipped: {reason}"))
                return bool(stuck)
            _move_to_trash(project_dir, plan.id, item)
            if job is not None:
                _APPLY[item.action](project, job, item)
                # the project's measured size is now out of date
                Project.update(jobs_changed_at=utcnow()).where(Project.id == project.id).execute()
        _write_done(journal, index)
        results.append(ItemResult(item.job, item.action, True, "", item.bytes))
        return False
    except (OSError, DataError) as exc:
        # put back what this item had already moved: the database still
        # describes those files, and emptying the trash would lose them
        stuck = _restore_from_trash(project_dir, plan.id, item)
        msg = getattr(exc, "strerror", None) or str(exc)
        results.append(ItemResult(item.job, item.action, False, f"{msg}", 0))
        return bool(stuck)


def execute(project: Project, plan: DeletionPlan, progress=None, cancel=None) -> list[ItemResult]:
    """Carry out ``plan`` through a journal; returns one result per item.

    The caller has already asked the rules; ``recheck`` in higher layers
    drops items that became illegal since planning.
    """
    project_dir = require_project_dir(project.directory)
    with file_lock(state_dir(project_dir) / "lock", f"project {project.uid}"):
        _recover_locked(project)
        jdir = _journal_dir(project_dir)
        jdir.mkdir(parents=True, exist_ok=True)
        journal = jdir / f"{plan.id}.json"
        atomic_write_json(journal, plan.to_dict())
        results = _run(project, plan, journal, progress, cancel)
    return results + _garbage_results(project_dir)


def _garbage_results(project_dir: Path) -> list[ItemResult]:
    return [ItemResult("-", "empty-trash", False, err) for err in collect_garbage(project_dir)]


def _recover_locked(project: Project) -> list[ItemResult]:
    jdir = _journal_dir(Path(project.directory))
    results: list[ItemResult] = []
    if not jdir.is_dir():
        return results
    for journal in sorted(jdir.glob("*.json")):
        try:
            plan = DeletionPlan.from_dict(json.loads(journal.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            # The journal is written atomically, so an unreadable one was never
            # acted on: nothing was deleted from it.
            journal.unlink(missing_ok=True)
            continue
        results.extend(_run(project, plan, journal))
    return results


def pending(project: Project) -> bool:
    jdir = _journal_dir(Path(project.directory))
    return jdir.is_dir() and any(jdir.glob("*.json"))


def recover(project: Project) -> list[ItemResult]:
    """Roll forward any plan a crashed process left half-done (cheap when there is none)."""
    if not pending(project):
        return _garbage_results(Path(project.directory)) if _has_garbage(project) else []
    try:
        lock = file_lock(state_dir(Path(project.directory)) / "lock", f"project {project.uid}", timeout=0)
        lock.__enter__()
    except LockedError:
        return []  # the holder is alive and finishes (or replays) its own journal
    try:
        results = _recover_locked(project)
    finally:
        lock.__exit__(None, None, None)
    return results + _garbage_results(Path(project.directory))


def _has_garbage(project: Project) -> bool:
    root = state_dir(Path(project.directory)) / "trash"
    return root.is_dir() and any(root.glob("*.gc"))
