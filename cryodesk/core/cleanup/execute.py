"""Carry out a cleanup plan through the deletion journal (core/deletion.py).

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

import os
from dataclasses import dataclass, field
from pathlib import Path

from ...base.errors import DataError
from ...base.fsio import tree_size
from ...db.models import ACTIVE_STATUSES, Connection, Job, OutputFile, Project
from .. import deletion, manifest
from ..actions import _apply_clear, _apply_delete
from ..deletion import DeletionPlan, PlanItem
from ..fsutil import check_job_dir
from ..projects import get_project
from ..rules import why_not_clear, why_not_delete
from ..sizes import job_data_size, mark_jobs_changed
from .model import CleanupPlan, PlanEntry

_DB_ACTION = {"clear": "cleanup_clear", "delete": "cleanup_delete", "clear_intermediate": "clear_versions"}
_PLAN_ACTION = {v: k for k, v in _DB_ACTION.items()}


# -- conditions re-checked just before each item ------------------------------------

def _require(entry: PlanEntry) -> dict:
    status_only = all(o in ("killed", "failed") for o in entry.options)
    return {
        "allow_ancestor": "preprocessing" in entry.options and entry.action == "clear",
        "status_in": sorted({o for o in entry.options}) if status_only else None,
    }


def _conditions(job: Job, item: PlanItem) -> str | None:
    req = item.versions.get("require") or {}
    if job.is_final:
        return "it was marked as a final result after the plan was made"
    if job.is_ancestor_of_final and not req.get("allow_ancestor"):
        return "it became an ancestor of a final result after the plan was made"
    if req.get("status_in") and job.status not in req["status_in"]:
        return f"it is {job.status} now (it was {'/'.join(req['status_in'])} when planned)"
    busy = (Job.select(Job.number, Job.status).join(Connection, on=(Connection.child == Job.id))
            .where((Connection.parent == job.id) & (Job.status.in_(ACTIVE_STATUSES))).tuples().first())
    if busy:
        return f"J{busy[0]} is {busy[1]} and reads its outputs"
    return None


def _recheck_clear(project, job, item):
    return _conditions(job, item) or why_not_clear(job)


def _recheck_delete(project, job, item):
    why = _conditions(job, item) or why_not_delete(job)
    if why:
        return why
    kids = [f"J{n}" for (n,) in Job.select(Job.number).join(Connection, on=(Connection.child == Job.id))
            .where(Connection.parent == job.id).tuples()]
    if kids:  # children go first; one that is still here was skipped or failed
        return "its descendants survive: " + ", ".join(sorted(set(kids), key=lambda u: int(u[1:])))
    return None


def _recheck_versions(project, job, item):
    why = _conditions(job, item) or why_not_clear(job)
    if why:
        return why
    groups = item.versions.get("groups") or {}
    for group, versions in groups.items():
        last = (OutputFile.select(OutputFile.version).where((OutputFile.job == job) & (OutputFile.group == group))
                .order_by(OutputFile.version.desc()).scalar())
        if last is not None and last in versions:
            return f"v{last} of {group} is now its last version (the job was re-run)"
        reader = (Connection.select(Connection.child).where(
            (Connection.parent == job.id) & (Connection.output == group) & (Connection.version.in_(versions))).first())
        if reader is not None:
            return f"J{reader.child.number} now reads an intermediate version of {group}"
    return None


@deletion.db_action("cleanup_clear", _recheck_clear)
def _apply_cleanup_clear(project: Project, job: Job, item: PlanItem) -> None:
    _apply_clear(project, job, item)


@deletion.db_action("cleanup_delete", _recheck_delete)
def _apply_cleanup_delete(project: Project, job: Job, item: PlanItem) -> None:
    _apply_delete(project, job, item)


@deletion.db_action("clear_versions", _recheck_versions)
def _apply_clear_versions(project: Project, job: Job, item: PlanItem) -> None:
    """Forget the removed versions' output rows and re-measure the job (idempotent)."""
    for group, versions in (item.versions.get("groups") or {}).items():
        OutputFile.delete().where((OutputFile.job == job) & (OutputFile.group == group)
                                  & (OutputFile.version.in_(list(versions)))).execute()
    job.size_bytes = job_data_size(Path(project.directory) / job.directory)
    job.save(only=[Job.size_bytes])  # other fields may be changing under the engine
    manifest.write_job(job, Path(project.directory))


# -- building the journal items ----------------------------------------------------------

def _measure(project_dir: Path, rels: list[str]) -> int:
    return sum(tree_size(project_dir / r) for r in rels)


def version_paths(project_dir: Path, job: Job, groups: dict) -> list[str]:
    """Files of ``groups`` ({group: [versions]}) not also used by a kept version, inside the job directory."""
    drop, keep = set(), set()
    for f in OutputFile.select(OutputFile.group, OutputFile.version, OutputFile.path).where(OutputFile.job == job):
        (drop if f.version in groups.get(f.group, ()) else keep).add(f.path)
    prefix = f"{job.directory}/"
    return sorted(p for p in drop - keep if p.startswith(prefix) and ".." not in Path(p).parts)


def versions_item(project_dir: Path, job: Job, groups: dict, reason: str, require: dict) -> PlanItem:
    paths = version_paths(project_dir, job, groups)
    return PlanItem(job=job.uid, action="clear_versions", paths=paths, bytes=_measure(project_dir, paths),
                    reason=reason, versions={"groups": groups, "require": require})


def _item(project_dir: Path, job: Job, entry: PlanEntry) -> PlanItem:
    reason = "; ".join(entry.reasons)
    require = _require(entry)
    if entry.action == "clear_intermediate":
        return versions_item(project_dir, job, entry.versions, reason, require)
    jdir = check_job_dir(project_dir, job.directory)
    if entry.action == "delete":
        paths = [job.directory] if os.path.lexists(jdir) else []
    else:
        paths = sorted(f"{job.directory}/{e.name}" for e in os.scandir(jdir)
                       if e.name != manifest.JOB_MANIFEST) if jdir.is_dir() else []
    size = job_data_size(jdir)
    return PlanItem(job=job.uid, action=_DB_ACTION[entry.action], paths=paths, bytes=size,
                    reason=reason, versions={"require": require})


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

