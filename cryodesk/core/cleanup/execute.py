"""Carry out a cleanup plan through the deletion service (core/deletion).

A :class:`~cryodesk.core.cleanup.model.CleanupPlan` is turned into a
:class:`~cryodesk.core.deletion.DeletionPlan` whose items name concrete paths
(listed now, each inside the job's own directory) and carry the conditions
the plan was made under.  The journal holds those conditions, so each item is
re-checked just before it is carried out, also when a restart rolls an
interrupted run forward: a job marked final, made an ancestor of final,
started, given a running child, or marked complete (killed/failed groups)
since the plan was made is skipped and reported.

Deletes run children first, and a job is deleted only when no child of it
remains at that moment, so a delete that fails or is skipped keeps all its
ancestors (they are reported, not deleted).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ...base.errors import DataError
from ...db.models import Connection, Job, Project
from .. import deletion
from ..deletion import DeletionPlan, PlanItem
from ..projects import get_project
from ..sizes import mark_jobs_changed
from .model import CleanupPlan, PlanEntry

_ACTION = {"clear": "clear", "delete": "delete", "clear_intermediate": "clear_versions"}
_PLAN_ACTION = {v: k for k, v in _ACTION.items()}


def _require(entry: PlanEntry) -> dict:
    """The conditions the entry was planned under, rechecked when it applies (see deletion.actions)."""
    status_only = all(o in ("killed", "failed") for o in entry.options)
    regenerable = bool({"preprocessing", "restack"} & set(entry.options))
    return {
        # an ancestor of final may be cleared as a preprocessing/restack job, and loses intermediate
        # results like any job; any other action on one (a job that became one since) is refused
        "allow_ancestor": (regenerable and entry.action == "clear") or entry.action == "clear_intermediate",
        "status_in": sorted(set(entry.options)) if status_only else None,
    }


def _item(project_dir: Path, job: Job, entry: PlanEntry) -> PlanItem:
    reason, require = "; ".join(entry.reasons), _require(entry)
    if entry.action == "clear_intermediate":
        return deletion.versions_item(project_dir, job, entry.versions, reason, require)
    if entry.action == "delete":
        return deletion.delete_item(project_dir, job, reason, require)
    return deletion.clear_item(project_dir, job, reason, require)


def _children_first(entries: list[PlanEntry], jobs: dict[str, Job]) -> list[PlanEntry]:
    deletes = [e for e in entries if e.action == "delete" and e.uid in jobs]
    ids = {jobs[e.uid].id: e for e in deletes}
    kids: dict[int, list[int]] = {}
    if ids:
        for p, c in Connection.select(Connection.parent, Connection.child).where(
                Connection.parent.in_(list(ids))).tuples():
            kids.setdefault(p, []).append(c)
    order, seen = [], set()
    for start in sorted(ids, key=lambda i: -ids[i].number):
        stack = [(start, False)]
        while stack:
            jid, done = stack.pop()
            if done:
                order.append(ids[jid])
                continue
            if jid in seen:
                continue
            seen.add(jid)
            stack.append((jid, True))
            stack.extend((k, False) for k in kids.get(jid, ()) if k in ids and k not in seen)
    rest = [e for e in entries if e.action != "delete"]
    return order + rest


@dataclass
class CleanupResult:
    """What execution did: one outcome per plan entry (``ok`` False = skipped or failed)."""

    plan_bytes: int
    outcomes: list[dict] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def bytes_freed(self) -> int:
        return sum(o["bytes"] for o in self.outcomes if o["ok"])

    @property
    def ok(self) -> bool:
        return all(o["ok"] for o in self.outcomes) and not self.errors

    @property
    def skipped(self) -> list[dict]:
        return [o for o in self.outcomes if not o["ok"]]

    def to_dict(self) -> dict:
        return {"ok": self.ok, "plan_bytes": self.plan_bytes, "bytes_freed": self.bytes_freed,
                "done": sum(1 for o in self.outcomes if o["ok"]), "skipped_or_failed": len(self.skipped),
                "outcomes": self.outcomes, "errors": self.errors}


def execute_cleanup(project, plan: CleanupPlan, progress=None, cancel=None) -> CleanupResult:
    """Run ``plan`` (journaled; see the module doc).  Safe to call from a worker thread.

    Parameters
    ----------
    project : Project or str
    plan : CleanupPlan
        From :func:`plan_cleanup`; it may be old: every job is re-checked.
    progress : callable(fraction, message), optional
    cancel : threading.Event or callable returning bool, optional
        Checked before each job; the items not yet started are reported as cancelled.
    """
    project = get_project(project)
    # the row as committed: the one the plan was made with may predate a move by another process
    project = Project.get_or_none(Project.id == project.id) or project
    pdir = Path(project.directory)
    cancelled = getattr(cancel, "is_set", cancel)
    result = CleanupResult(plan.bytes)
    numbers = [e.number for e in plan.entries]
    jobs = {}
    for i in range(0, len(numbers), 30000):
        for j in Job.select().where((Job.project == project) & (Job.number.in_(numbers[i:i + 30000]))):
            jobs[j.uid] = j
    items = []
    for entry in _children_first(plan.entries, jobs):
        job = jobs.get(entry.uid)
        if job is None:
            result.outcomes.append({"uid": entry.uid, "action": entry.action, "ok": False, "bytes": 0,
                                    "message": "skipped: the job no longer exists"})
            continue
        try:
            items.append(_item(pdir, job, entry))
        except (OSError, DataError) as exc:  # unreadable, or a symlinked job directory: never followed
            msg = getattr(exc, "strerror", None) or str(exc)
            result.outcomes.append({"uid": entry.uid, "action": entry.action, "ok": False, "bytes": 0,
                                    "message": f"failed: {msg}"})
    if items:
        dplan = DeletionPlan(project.uid, items)
        for r in deletion.execute(project, dplan, progress=progress, cancel=cancelled):
            if r.action == "empty-trash":
                result.errors.append(r.message)
                continue
            result.outcomes.append({"uid": r.job, "action": _PLAN_ACTION.get(r.action, r.action), "ok": r.ok,
                                    "bytes": r.bytes if r.ok else 0, "message": r.message})
        mark_jobs_changed(project)
    result.outcomes.sort(key=lambda o: int(o["uid"][1:]) if o["uid"][1:].isdigit() else 0)
    return result

