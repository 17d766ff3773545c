"""Job actions, single or batch: clear, delete, mark complete, link/unlink/move, clone.

Every action takes a list of jobs and returns a :class:`BatchResult` saying per
job what was done and what was refused and why.  Destructive actions are
two-step: ``plan_clear`` / ``plan_delete`` build a
:class:`~cryodesk.core.deletion.DeletionPlan` (shown to the user, printable as
JSON), and :func:`run_plan` carries it out through the journal.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..db.models import Connection, Job, JobWorkspace, OutputFile, Workspace, db
from . import deletion, events, manifest
from .deletion import DeletionPlan
from .graph import ancestor_ids, descendant_ids
from .guard import project_write
from .jobs import get_job, refresh, set_status
from .projects import get_project, get_workspace
from .results import BatchResult, Outcome
from .rules import why_not_clear, why_not_delete, why_not_mark_complete


@dataclass
class ActionPlan:
    """A deletion plan plus the jobs that were refused while planning it."""

    action: str
    plan: DeletionPlan
    refused: list[Outcome]
    #: what the user must know before it runs (a final result losing its particle images)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"action": self.action, "bytes": self.plan.bytes, **self.plan.to_dict(),
                "refused": [asdict(o) for o in self.refused], "warnings": list(self.warnings)}


# -- clear and delete: planned here, carried out by the deletion service --------------

def plan_clear(project, jobs, reason: str = "cleared on request") -> ActionPlan:
    project = get_project(project)
    jobs = refresh(jobs)
    pdir = Path(project.directory)
    items, refused = [], []
    for job in jobs:
        why = why_not_clear(job)
        if why:
            refused.append(Outcome(job.uid, "clear", False, f"{job.uid} cannot be cleared: {why}"))
            continue
        # an ancestor of final may be cleared (it can be re-run), when the plan shown said it is one
        items.append(deletion.clear_item(pdir, job, reason, require={"allow_ancestor": bool(job.is_ancestor_of_final)}))
    return ActionPlan("clear", DeletionPlan(project.uid, items), refused, _image_warnings(project, jobs, items))


def _image_warnings(project, jobs, items) -> list[str]:
    """The final results whose particle images are in the stacks of a job being cleared (the plan says so)."""
    from .cleanup.planner import finals_losing_images, image_warning

    cleared = {i.job for i in items}
    lost: dict[str, list[str]] = {}
    for job in jobs:
        if job.uid in cleared and job.is_ancestor_of_final:
            for f in finals_losing_images(project, job):
                lost.setdefault(f, []).append(job.uid)
    types = {f"J{n}": t for n, t in Job.select(Job.number, Job.type).where(
        Job.project == project.id, Job.number.in_([int(u[1:]) for u in lost])).tuples()} if lost else {}
    return [image_warning(project.uid, f, by, "the clear", final_type=types.get(f, ""))
            for f, by in sorted(lost.items(), key=lambda kv: int(kv[0][1:]))]


def plan_delete(project, jobs) -> ActionPlan:
    """Plan deleting ``jobs``; a job whose descendants are not all in the batch is refused."""
    project = get_project(project)
    jobs = refresh(jobs)
    pdir = Path(project.directory)
    by_id = {j.id: j for j in jobs}
    refused: dict[int, str] = {}
    for j in jobs:
        why = why_not_delete(j)
        if why:
            refused[j.id] = why
    desc = {j.id: descendant_ids([j]) for j in jobs}
    changed = True
    while changed:  # a refused job keeps its ancestors in the batch alive too
        changed = False
        allowed = set(by_id) - set(refused)
        for jid in sorted(allowed):
            outside = desc[jid] - allowed
            if outside:
                names = sorted(f"J{n}" for (n,) in Job.select(Job.number).where(Job.id.in_(sorted(outside))).tuples())
                refused[jid] = why_not_delete(by_id[jid], sorted(names, key=lambda u: int(u[1:])))
                changed = True
    items = []
    # children before parents (a job with more of the batch above it goes first);
    # job numbers alone are not enough: a building job may be connected to a newer parent
    in_batch = set(by_id)
    depth = {j.id: len(ancestor_ids([j]) & in_batch) for j in jobs}
    for j in sorted(jobs, key=lambda j: (-depth[j.id], -j.number)):
        if j.id not in refused:
            items.append(deletion.delete_item(pdir, j, "deleted on request"))
    outcomes = [Outcome(by_id[i].uid, "delete", False, f"{by_id[i].uid} cannot be deleted: {why}")
                for i, why in sorted(refused.items(), key=lambda kv: by_id[kv[0]].number)]
    return ActionPlan("delete", DeletionPlan(project.uid, items), outcomes)


def run_plan(project, action_plan: ActionPlan, progress=None, cancel=None) -> BatchResult:
    """Execute an :class:`ActionPlan` through the journal; refusals come first in the result."""
    project = get_project(project)
    result = BatchResult(action_plan.action, list(action_plan.refused))
    for r in deletion.execute(project, action_plan.plan, progress=progress, cancel=cancel):
        result.outcomes.append(Outcome(r.job, r.action, r.ok, r.message, r.bytes))
    return result


def clear_jobs(project, jobs) -> BatchResult:
    return run_plan(project, plan_clear(project, jobs))


def delete_jobs(project, jobs) -> BatchResult:
    return run_plan(project, plan_delete(project, jobs))


# -- non-destructive actions ---------------------------------------------------------

def mark_complete(project, jobs) -> BatchResult:
    project = get_project(project)
    jobs = refresh(jobs)
    result = BatchResult("mark-complete")
    for job in jobs:
        why = why_not_mark_complete(job)
        if why:
            result.outcomes.append(Outcome(job.uid, "mark-complete", False, f"{job.uid}: {why}"))
            continue
        with project_write(project, [job.id]):
            uid, job = job.uid, Job.get_or_none(Job.id == job.id)
            if job is None:
                result.outcomes.append(Outcome(uid, "mark-complete", False, f"{uid}: it no longer exists"))
                continue
            why = why_not_mark_complete(job)  # judged again on the row as committed now
            if why:
                result.outcomes.append(Outcome(job.uid, "mark-complete", False, f"{job.uid}: {why}"))
                continue
            set_status(job, "completed", write=False)
            manifest.write_job(job, Path(project.directory))
        result.outcomes.append(Outcome(job.uid, "mark-complete", True, _usable_outputs(job)))
    return result


def _usable_outputs(job: Job) -> str:
    """What a job marked complete offers its children: the last version of each output it kept."""
    last: dict[str, int] = {}
    for group, version in OutputFile.select(OutputFile.group, OutputFile.version).where(
            OutputFile.job == job).tuples():
        last[group] = max(version, last.get(group, version))
    if not last:
        return "it kept no outputs (nothing had finished when it stopped): children cannot read it"
    return "its outputs are now " + ", ".join(f"{g} v{v}" for g, v in sorted(last.items()))


def _linked(job: Job, ws: Workspace) -> bool:
    return JobWorkspace.select().where((JobWorkspace.job == job) & (JobWorkspace.workspace == ws)).exists()


def link(project, jobs, workspace) -> BatchResult:
    project = get_project(project)
    jobs = refresh(jobs)
    ws = get_workspace(project, workspace)
    result = BatchResult("link")
    with project_write(project):  # (archived, another database's: refused)
        for job in jobs:
            if _linked(job, ws):
                result.outcomes.append(Outcome(job.uid, "link", True, f"already in {ws.uid}"))
                continue
            JobWorkspace.create(job=job, workspace=ws)
            manifest.write_job(job, Path(project.directory))
            result.outcomes.append(Outcome(job.uid, "link", True))
        events.record(project, "links", [o.uid for o in result.outcomes if o.ok])
    return result


def unlink(project, jobs, workspace) -> BatchResult:
    project = get_project(project)
    jobs = refresh(jobs)
    ws = get_workspace(project, workspace)
    result = BatchResult("unlink")
    with project_write(project):  # (archived, another database's: refused)
        for job in jobs:
            if not _linked(job, ws):
                result.outcomes.append(Outcome(job.uid, "unlink", False, f"{job.uid} is not in {ws.uid}"))
                continue
            if JobWorkspace.select().where(JobWorkspace.job == job).count() <= 1:
                result.outcomes.append(Outcome(job.uid, "unlink", False,
                                               f"{job.uid}: {ws.uid} is its only workspace; move it or delete it instead"))
                continue
            JobWorkspace.delete().where((JobWorkspace.job == job) & (JobWorkspace.workspace == ws)).execute()
            manifest.write_job(job, Path(project.directory))
            result.outcomes.append(Outcome(job.uid, "unlink", True))
        events.record(project, "links", [o.uid for o in result.outcomes if o.ok])
    return result


def move(project, jobs, workspace, source=None) -> BatchResult:
    """Link ``jobs`` into ``workspace`` and unlink them from ``source`` (default: every other workspace)."""
    project = get_project(project)
    jobs = refresh(jobs)
    ws = get_workspace(project, workspace)
    src = get_workspace(project, source) if source is not None else None
    result = BatchResult("move")
    with project_write(project):  # (archived, another database's: refused)
        for job in jobs:
            if src is not None and not _linked(job, src):
                result.outcomes.append(Outcome(job.uid, "move", False, f"{job.uid} is not in {src.uid}"))
                continue
            if not _linked(job, ws):
                JobWorkspace.create(job=job, workspace=ws)
            q = JobWorkspace.delete().where((JobWorkspace.job == job) & (JobWorkspace.workspace != ws))
            if src is not None:
                q = JobWorkspace.delete().where((JobWorkspace.job == job) & (JobWorkspace.workspace == src)
                                                & (JobWorkspace.workspace != ws))
            q.execute()
            manifest.write_job(job, Path(project.directory))
            result.outcomes.append(Outcome(job.uid, "move", True))
        events.record(project, "links", [o.uid for o in result.outcomes if o.ok])
    return result


def clone(project, jobs, workspace) -> tuple[BatchResult, dict[str, str]]:
    """Clone ``jobs`` (one job, or a chain) into ``workspace`` as new building jobs.

    Inputs that point inside the cloned set are remapped to the clones; inputs
    from outside keep pointing to the original parents.  Returns the result
    and the map old uid → new uid.
    """
    from .jobs import InputSpec, create_job

    project = get_project(project)
    ws = get_workspace(project, workspace)
    ordered = sorted(refresh(jobs), key=lambda j: j.number)
    inside = {j.id for j in ordered}
    # create parents before children: order by depth inside the set
    depth: dict[int, int] = {}

    def _depth(j: Job) -> int:
        if j.id not in depth:
            ps = [c.parent for c in Connection.select().where(Connection.child == j) if c.parent_id in inside]
            depth[j.id] = 1 + max((_depth(p) for p in ps), default=-1)
        return depth[j.id]

    ordered.sort(key=lambda j: (_depth(j), j.number))
    mapping: dict[str, str] = {}
    result = BatchResult("clone")
    with db.atomic():
        for j in ordered:
            specs = []
            for c in Connection.select().where(Connection.child == j).order_by(Connection.slot, Connection.position):
                parent_uid = f"J{c.parent.number}"
                specs.append(InputSpec(c.slot, mapping.get(parent_uid, parent_uid), c.output,
                                       None if parent_uid in mapping else c.version))
            new = create_job(project, j.type, ws, specs, dict(j.params), j.title)
            mapping[j.uid] = new.uid
            result.outcomes.append(Outcome(j.uid, "clone", True, f"cloned as {new.uid}"))
    return result, mapping


def jobs_from_uids(project, uids) -> list[Job]:
    project = get_project(project)
    return [get_job(project, u) for u in uids]
