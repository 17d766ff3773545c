"""Carry out a deletion plan through the journal; roll a crashed one forward.

For the whole plan, under the project's file lock: replay any journal a
crashed process left, check every item (:func:`refusal`), write the journal
durably, then for each item, in ONE write transaction that holds the rows it
judges (:func:`~cryodesk.core.guard.project_write`): re-read the job, recheck
the action's rule, move its paths into the trash, apply the database change;
then record the item as done.  At the end the trash is retired (renamed, under
the lock) and emptied in the background.

Every step is idempotent, so a process killed anywhere is finished by the
next one (:func:`recover`), and database and disk end up as the plan said —
or, for an item whose recheck now fails, as before it (its files are put back).
A journal item that is invalid (unknown action, a path outside its job, a
job uid like ``..``, a plan id that is not ours) is refused and reported,
never applied, and the journal is set aside in ``journal/rejected/`` (with a
``.why`` file) rather than replayed again; so is an unreadable one.

A journal is only ever carried out by the database that made it: :func:`execute`
records the plan (an ``applied_item`` row, item :data:`INTENT`) before it writes
the journal.  A journal this database has no record of (crafted, or left by a
database that is gone) has none of its undecided items applied: what it had
moved is put back and the journal is set aside.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from contextlib import contextmanager
from pathlib import Path

import peewee as pw

from ...base import hooks, trashworker
from ...base.errors import DataError, LockedError
from ...base.fsio import file_lock
from ...db import write_transaction
from ...db.models import AppliedItem, Job, Project, utcnow
from ..fsutil import require_project_dir
from ..guard import check_writable, may_write, project_write
from . import journal as jn
from .actions import ACTIONS, stamp_project
from .plan import JOB_UID, DeletionPlan, ItemResult, PlanItem, path_problem, versions_problem
from .trash import empty_in_background, empty_now

log = logging.getLogger("cryodesk.deletion")


@contextmanager
def _lock(project_dir: Path, uid: str, timeout: float = 10.0):
    """The project's deletion lock (an flock the kernel drops if the process dies)."""
    try:
        lock = file_lock(jn.state_dir(project_dir, create=True) / "lock", f"project {uid}", timeout=timeout)
        lock.__enter__()
    except OSError as exc:
        raise DataError(f"cannot take the lock of {uid} in {project_dir / jn.STATE_DIR}: "
                        f"{exc.strerror or exc}; nothing was deleted") from None
    try:
        yield
    finally:
        lock.__exit__(None, None, None)


def refusal(project_dir: Path, item: PlanItem) -> str | None:
    """Why ``item`` is invalid whatever the database says (unknown action, unsafe paths), or None."""
    action = ACTIONS.get(item.action)
    if action is None:
        return f"unknown action {item.action!r} (a newer cryodesk may have written it)"
    if not action.uid_pattern.match(item.job):
        return f"{item.job!r} is not a {'job' if action.uid_pattern is JOB_UID else 'session'} uid"
    try:
        why = (path_problem(item, action.whole_dir, action.uid_pattern, action.item_dir(item))
               or versions_problem(item))
    except DataError as exc:  # (an item_dir the action cannot accept)
        return str(exc)
    if why:
        return why
    try:
        jn.checked_paths(project_dir, action.check_dir(project_dir, item), item.paths)
    except DataError as exc:
        return str(exc)
    return None


def _job(project: Project, uid: str, action=None) -> Job | None:
    """The item's row: its job (or, for a session action, its session)."""
    if action is not None:
        return action.target(project, uid)
    return Job.get_or_none((Job.project == project) & (Job.number == int(uid[1:])))


#: the ``applied_item`` row that says this database made the plan (written before its journal)
INTENT = -1
UNKNOWN_PLAN = ("this database did not make the plan (a journal it has no record of: crafted, or left by "
                "another database); nothing of it is applied")


def _decided(plan_id: str) -> dict[int, str]:
    return dict(AppliedItem.select(AppliedItem.item, AppliedItem.outcome)
                .where((AppliedItem.plan_id == plan_id) & (AppliedItem.item >= 0)).tuples())


def _register(plan_id: str) -> None:
    with write_transaction():
        AppliedItem.insert(plan_id=plan_id, item=INTENT, outcome="planned").on_conflict_ignore().execute()


def _known(plan_id: str) -> bool:
    """This database made the plan: its intent row, or (a journal of a cryodesk before it) a decided item."""
    return AppliedItem.select().where(AppliedItem.plan_id == plan_id).exists()


def _record(plan_id: str, index: int, outcome: str) -> None:
    AppliedItem.insert(plan_id=plan_id, item=index, outcome=outcome).on_conflict_ignore().execute()


def _run_item(project: Project, project_dir: Path, plan: DeletionPlan, index: int,
              known: bool = True) -> tuple[ItemResult, bool]:
    """Carry out one (valid) item; returns its result and whether files had to stay in the trash.

    The item's decision (applied, or skipped by its recheck) is recorded in the
    same transaction as its database change.  A skipped item's files are put
    back *before* that commit, so a crash can never leave a decided item's
    files in a trash that is about to be emptied.
    """
    item = plan.items[index]
    action = ACTIONS[item.action]
    stuck: list[str] = []
    try:
        with action.guard(project_dir), project_write(project, _row_ids(project, item)):
            job = _job(project, item.job, action)
            if job is None and not action.jobless and known:
                # gone from the database (deleted by someone else meanwhile): what this plan had
                # moved goes with the trash, nothing more is touched
                _record(plan.id, index, "gone")
                return ItemResult(item.job, item.action, True, "the job no longer exists", 0), False
            # (a plan this database did not make is checked too, for the reason to give, but never applied)
            why = ((action.check(project, job, item) if job is not None or action.jobless else None)
                   or jn.mount_problem(project_dir, item.paths) or (None if known else UNKNOWN_PLAN))
            hooks.point("deletion.rechecked", job=item.job, action=item.action, refused=why)
            if why:
                stuck = jn.restore_from_trash(project_dir, plan.id, item.paths)
                _record(plan.id, index, "skipped")
                return ItemResult(item.job, item.action, False, f"skipped: {why}"), bool(stuck)
            jn.move_to_trash(project_dir, plan.id, item.paths)
            hooks.point("deletion.moved", job=item.job, action=item.action)
            action.apply(project, job, item)
            stamp_project(project)
            _record(plan.id, index, "applied")
        hooks.point("deletion.committed", job=item.job, action=item.action)
        return ItemResult(item.job, item.action, True, "", item.bytes), False
    except (OSError, DataError, LockedError, pw.DatabaseError) as exc:
        # the transaction rolled back, so the database still describes whatever this item had
        # moved: put it back (emptying the trash would lose it)
        stuck = jn.restore_from_trash(project_dir, plan.id, item.paths)
        if isinstance(exc, pw.DatabaseError):
            msg = f"database error: {str(exc).strip() or type(exc).__name__}"
        else:
            msg = getattr(exc, "strerror", None) or str(exc)
        return ItemResult(item.job, item.action, False, msg), bool(stuck)


def _row_ids(project: Project, item: PlanItem) -> list[int]:
    """Rows the item's rule reads: the job itself (its children are read under the project lock)."""
    action = ACTIONS.get(item.action)
    if action is None or not action.uid_pattern.match(item.job):
        return []
    target = action.target(project, item.job)
    return action.locked_job_ids(target) if target is not None else []


_BEFORE = {"applied": (True, "done before a restart"), "gone": (True, "the job no longer exists"),
           "skipped": (False, "skipped before a restart"), "refused": (False, "refused before a restart")}


def _run(project: Project, plan: DeletionPlan, journal: Path, progress=None, cancel=None) -> list[ItemResult]:
    project_dir = Path(project.directory)
    decided = _decided(plan.id)
    known = _known(plan.id)
    results: list[ItemResult] = []
    keep_trash = False
    refused: list[str] = []  # items never to be applied: the journal is set aside, not replayed again
    for index, item in enumerate(plan.items):
        if index in decided:
            ok, why = _BEFORE.get(decided[index], (False, decided[index]))
            if decided[index] == "refused":
                refused.append(f"{item.action} {item.job!r}: refused before a restart")
            results.append(ItemResult(item.job, item.action, ok, why, item.bytes if ok else 0, plan.id))
            continue
        bad = refusal(project_dir, item)
        if bad:  # never applied, nothing put back (its paths are not to be trusted)
            results.append(ItemResult(item.job, item.action, False, f"refused: {bad}", 0, plan.id))
            refused.append(f"{item.action} {item.job!r}: {bad}")
            log.info("deletion journal %s: %s %s refused: %s", plan.id, item.action, item.job, bad)
            _record(plan.id, index, "refused")
            continue
        if cancel is not None and cancel():
            results.append(ItemResult(item.job, item.action, False, "cancelled before this item"))
            continue
        result, stuck = _run_item(project, project_dir, plan, index, known)
        result.plan = plan.id
        results.append(result)
        keep_trash |= stuck
        if progress is not None:
            progress((index + 1) / max(1, len(plan.items)), f"{item.action} {item.job}")
    trash = jn.trash_dir(project_dir, plan.id)
    # a refused item's paths are not trusted, so nothing was put back for it: whatever is in the trash stays
    keep_trash = (keep_trash or bool(refused)) and jn.has_entries(trash)
    kept = f"; what it had moved is kept in {trash}" if keep_trash else ""
    if not keep_trash:
        jn.retire_trash(project_dir, plan.id)
    if refused or not known:
        why = "; ".join(
            ([f"{len(refused)} item(s) refused: {refused[0]}" + (f" (and {len(refused) - 1} more)"
                                                                if len(refused) > 1 else "")] if refused else [])
            + ([UNKNOWN_PLAN] if not known else []))
        dest = jn.reject(journal, why + kept)
        log.info("deletion journal set aside: %s (%s)", dest, why)
        results.append(ItemResult("-", "journal", False, f"journal {journal.name} set aside in {dest.parent}: "
                                                         f"{why}{kept}", 0, plan.id))
    else:
        if keep_trash:
            results.append(ItemResult("-", "empty-trash", False, f"files that could not be put back are kept "
                                                                 f"in {trash}", 0, plan.id))
        jn.finish(journal)
    # the journal first, then its rows: a crash in between leaves only harmless rows
    AppliedItem.delete().where(AppliedItem.plan_id == plan.id).execute()
    return results


def execute(project: Project, plan: DeletionPlan, progress=None, cancel=None) -> list[ItemResult]:
    """Carry out ``plan`` through a journal; returns one result per item (see the module doc).

    Items the plan itself got wrong are refused before the journal is written.
    The trash is emptied in the background afterwards.
    """
    if plan.project != project.uid:
        raise DataError(f"the plan is for {plan.project}, not {project.uid}; nothing was deleted")
    # archived, another database's, being moved: no journal is even written.  The row as committed:
    # the caller's may predate a move by another process (its items are re-checked under the lock)
    project = check_writable(project)
    project_dir = require_project_dir(project.directory)
    results: list[ItemResult] = []
    with _lock(project_dir, project.uid):
        # on a (nearly) full disk the journal, the trash's directories and the manifests need room:
        # the project's reserve gives it, and is made again once the trash has been emptied
        low = trashworker.release_reserve_if_low(project_dir)
        results += _recover_locked(project, project_dir)
        valid = []
        for item in plan.items:
            bad = refusal(project_dir, item)
            if bad:
                results.append(ItemResult(item.job, item.action, False, f"refused: {bad}"))
            else:
                valid.append(item)
        if valid:
            todo = DeletionPlan(plan.project, valid, plan.id)
            if _decided(todo.id):
                raise DataError(f"plan {todo.id} was carried out before; make a new plan")
            _register(todo.id)  # before the journal: a journal is carried out only by the database that made it
            try:
                journal = jn.write_journal(project_dir, todo.to_dict())
            except DataError:
                AppliedItem.delete().where(AppliedItem.plan_id == todo.id).execute()
                raise
            results += _run(project, todo, journal, progress, cancel)
    if low:  # the space is needed now, not when a background process gets to it
        results += [ItemResult("-", "empty-trash", False, e) for e in empty_now(project_dir)]
        trashworker.ensure_reserve(project_dir)
    else:
        empty_in_background(project_dir)
    return results


def _recover_locked(project: Project, project_dir: Path) -> list[ItemResult]:
    results: list[ItemResult] = []
    # rows of journals finished long ago whose removal a crash interrupted
    AppliedItem.delete().where(AppliedItem.at < utcnow() - dt.timedelta(days=30)).execute()
    for journal in jn.journals(project_dir):
        try:
            plan = DeletionPlan.from_dict(json.loads(jn.read_journal(journal)))
            if plan.project != project.uid or plan.id != journal.stem:
                raise DataError(f"journal {journal.name} is for plan {plan.id} of {plan.project}, "
                                f"not for {project.uid}")
        except (OSError, ValueError, DataError) as exc:
            # journals are written atomically, so an unreadable one was never acted on (nor a FIFO
            # or a link planted in its place: refused without being opened for long)
            why = str(exc) if isinstance(exc, DataError) else f"unreadable: {exc}"
            dest = jn.reject(journal, why)
            log.info("deletion journal set aside: %s (%s)", dest, why)
            results.append(ItemResult("-", "journal", False, f"journal {journal.name} refused and set aside "
                                                             f"in {dest.parent}: {why}"))
            continue
        results.extend(_run(project, plan, journal))
    return results


def pending(project: Project) -> bool:
    """A journal is waiting to be finished (a crashed or running deletion)."""
    return bool(jn.journals(Path(project.directory)))


def recover(project: Project) -> list[ItemResult]:
    """Roll forward any plan a crashed process left half-done (cheap when there is none).

    Call it before a write to the project, never for a read: it deletes.
    Returns nothing when another live process holds the lock (it finishes its own).
    """
    project_dir = Path(project.directory)
    pend = pending(project)
    if not pend and not jn.has_garbage(project_dir):
        return []
    if not may_write(project):  # another database's journal (or trash) is that database's to finish
        return []
    if not pend:
        empty_in_background(project_dir)
        return []
    try:
        with _lock(project_dir, project.uid, timeout=0):
            results = _recover_locked(project, project_dir)
    except LockedError:
        return []
    empty_in_background(project_dir)
    return results
