"""``db compact`` ("Reduce database size"): prune what can go, then give the space back.

What can go:

* change-log rows (:mod:`cryodesk.core.events`) older than ``keep_events_hours``
  (default: the log's own 24 hours), and those of projects that no longer
  exist, after five minutes (a window showing such a project learns from the
  ``projects`` event that it is gone);
* applied-item rows (deletion-journal bookkeeping) whose journal is gone —
  all of them when every project's directory could be looked into, else
  only those older than 30 days (an unreachable project may still have a
  journal);
* rows whose parent row is gone (:func:`cryodesk.db.compact.prune_orphans`).

Then ``VACUUM`` (SQLite) or ``VACUUM (FULL, ANALYZE)`` (PostgreSQL).  Refused
with a clear message while another process is writing: a job running (its
engine writes as it goes), a project being moved or deleted, another
connection holding SQLite's write lock, a PostgreSQL session in a
transaction that wrote; and if one starts meanwhile, the vacuum gives up
after a few seconds rather than stall it.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from ..base.errors import LockedError
from ..db import compact as dbc
from ..db import write_transaction
from ..db.backend import is_sqlite
from ..db.models import ACTIVE_STATUSES, AppliedItem, Change, Job, Project, ProjectOp, db, utcnow
from . import events, lifecycle, project_ops
from .deletion import journal as jn

DELETED_PROJECT_EVENTS_S = 300
APPLIED_ITEM_DAYS = 30


def _writers() -> list[str]:
    out = []
    for job in Job.select().where(Job.status.in_(ACTIVE_STATUSES)):
        owner = lifecycle.owner_of(job)
        if job.status == "queued" and owner is None:
            continue  # waiting for a worker: nothing writes yet
        if lifecycle.owner_alive(owner) is not False:
            out.append(f"{job.project.uid} {job.uid} is {job.status}"
                       + (f" (process {owner['pid']} on {owner['host']})" if owner else ""))
    for op in ProjectOp.select():
        out.append(f"project {op.source} is being {'moved' if op.kind == 'move' else 'deleted'} "
                   f"(process {op.pid} on {op.host})")
    return out + dbc.other_writers()


def _pending_plans() -> tuple[set[str], bool]:
    """Plan ids of every journal still in a project's directory; False if some directory was unreachable."""
    plans: set[str] = set()
    complete = True
    for (directory,) in Project.select(Project.directory).tuples():
        pdir = Path(directory)
        if not (pdir / "project.json").is_file():
            complete = False
            continue
        try:
            plans.update(j.stem for j in jn.journals(pdir))
        except (OSError, ValueError):
            complete = False
        try:
            rejected = pdir / jn.STATE_DIR / "journal" / jn.REJECTED
            if rejected.is_dir():
                plans.update(j.stem for j in rejected.glob("*.json"))
        except OSError:
            complete = False
    return plans, complete


def _prune(keep_events_hours: float, dry_run: bool) -> dict:
    now = utcnow()
    cutoff = now - dt.timedelta(hours=keep_events_hours)
    gone_cutoff = now - dt.timedelta(seconds=DELETED_PROJECT_EVENTS_S)
    existing = Project.select(Project.id)
    old_events = Change.select(Change.id).where(Change.at < cutoff)
    gone_events = Change.select(Change.id).where(Change.project_id.is_null(False)
                                                 & Change.project_id.not_in(existing) & (Change.at < gone_cutoff)
                                                 & (Change.at >= cutoff))
    plans, complete = _pending_plans()
    orphaned = AppliedItem.plan_id.not_in(sorted(plans)) if plans else AppliedItem.plan_id.is_null(False)
    if not complete:
        orphaned &= AppliedItem.at < now - dt.timedelta(days=APPLIED_ITEM_DAYS)
    applied = AppliedItem.select().where(orphaned)
    counts = {"change": old_events.count() + gone_events.count(), "applied_item": applied.count()}
    if dry_run:
        return counts
    with write_transaction():
        Change.delete().where(Change.id.in_(old_events)).execute()
        Change.delete().where(Change.id.in_(gone_events)).execute()
        AppliedItem.delete().where(orphaned).execute()
        counts["orphans"] = dbc.prune_orphans()
        events.record(None, "projects")  # windows reload what they show (their log may have been pruned)
    return counts


def compact_database(dry_run: bool = False, keep_events_hours: float = events.KEEP_SECONDS / 3600,
                     lock_timeout_s: float = 3.0) -> dict:
    """Prune and vacuum the database; returns sizes before and after, and what was pruned (see the module doc)."""
    t0 = time.monotonic()
    if keep_events_hours < 0:
        raise ValueError("keep_events_hours must not be negative")
    recovered = project_ops.recover_all()
    writers = _writers()
    if writers:
        raise LockedError("the database is not compacted while another process writes to it: "
                          + "; ".join(writers[:5]) + ("; …" if len(writers) > 5 else "")
                          + ". Try again when it has finished")
    database = db.obj
    out = {"backend": "sqlite" if is_sqlite(database) else "postgresql", "dry_run": dry_run,
           "before_bytes": dbc.size_bytes(), "before_tables_bytes": dbc.tables_bytes(),
           "recovered": recovered}
    out["pruned"] = _prune(keep_events_hours, dry_run)
    if not dry_run:
        try:
            dbc.vacuum(lock_timeout_s=lock_timeout_s)
        except dbc.Busy as exc:
            raise LockedError(f"another process started writing to the database while it was compacted "
                              f"({exc}); the pruned rows are gone, the space was not given back: try again "
                              "when it has finished") from None
    out["after_bytes"] = dbc.size_bytes()
    out["after_tables_bytes"] = dbc.tables_bytes()
    out["seconds"] = round(time.monotonic() - t0, 3)
    return out
