"""Queries on the job DAG: parents, children, ancestors, descendants, chains.

Ancestors and descendants are one recursive CTE each (``UNION``, not
``UNION ALL``, so diamonds are visited once), which SQLite and PostgreSQL
both run without loading the graph into Python.  A *workspace scope* follows
only edges whose far end is linked into that workspace.
"""

from __future__ import annotations

from typing import Iterable

from ..db import Connection, Job, JobWorkspace, Workspace
from .errors import NotFound, UsageError


def _ids(jobs: Iterable) -> list[int]:
    return [j.id if isinstance(j, Job) else int(j) for j in jobs]


def _closure_ids(start: list[int], upward: bool, workspace: Workspace | None = None) -> set[int]:
    """Ids of all jobs reachable from ``start`` (excluded unless on a cycle) along edges."""
    if not start:
        return set()
    C = Connection
    near, far = (C.child, C.parent) if upward else (C.parent, C.child)
    base = C.select(far.alias("id")).where(near.in_(start))
    if workspace is not None:
        base = base.join(JobWorkspace, on=(JobWorkspace.job == far)).where(JobWorkspace.workspace == workspace)
    cte = base.cte("reach", recursive=True, columns=("id",))
    C2 = Connection.alias()
    near2, far2 = (C2.child, C2.parent) if upward else (C2.parent, C2.child)
    rec = C2.select(far2).join(cte, on=(near2 == cte.c.id))
    if workspace is not None:
        JW = JobWorkspace.alias()
        rec = rec.join(JW, on=(JW.job == far2)).where(JW.workspace == workspace)
    q = cte.union(rec).select_from(cte.c.id)
    return {row[0] for row in q.tuples()}


def ancestor_ids(jobs, workspace: Workspace | None = None) -> set[int]:
    """Ids of every ancestor of ``jobs`` (jobs or ids), the jobs themselves excluded."""
    start = _ids(jobs)
    return _closure_ids(start, True, workspace) - set(start)


def descendant_ids(jobs, workspace: Workspace | None = None) -> set[int]:
    start = _ids(jobs)
    return _closure_ids(start, False, workspace) - set(start)


def _jobs_by_ids(ids: set[int]) -> list[Job]:
    if not ids:
        return []
    out: list[Job] = []
    ordered = sorted(ids)
    # chunk to stay below SQLite's bound-parameter limit
    for i in range(0, len(ordered), 30000):
        out.extend(Job.select().where(Job.id.in_(ordered[i : i + 30000])))
    out.sort(key=lambda j: j.number)
    return out


def ancestors(job: Job, workspace: Workspace | None = None) -> list[Job]:
    return _jobs_by_ids(ancestor_ids([job], workspace))


def descendants(job: Job, workspace: Workspace | None = None) -> list[Job]:
    return _jobs_by_ids(descendant_ids([job], workspace))


def parents(job: Job) -> list[Job]:
    ids = {c.parent_id for c in Connection.select(Connection.parent).where(Connection.child == job)}
    return _jobs_by_ids(ids)


def children(job: Job) -> list[Job]:
    ids = {c.child_id for c in Connection.select(Connection.child).where(Connection.parent == job)}
    return _jobs_by_ids(ids)


def chain_ids(a: Job, b: Job, workspace: Workspace | None = None) -> set[int]:
    """The job chain between ``a`` and ``b``: descendants(a) ∩ ancestors(b), plus both.

    The order of ``a`` and ``b`` does not matter.

    Raises
    ------
    NotFound
        If neither job is an ancestor of the other (in the scope).
    """
    if a.id == b.id:
        return {a.id}
    for top, bottom in ((a, b), (b, a)):
        down = descendant_ids([top], workspace)
        if bottom.id in down:
            return (down & ancestor_ids([bottom], workspace)) | {top.id, bottom.id}
    scope = f" in workspace W{workspace.number}" if workspace is not None else ""
    raise NotFound(f"there is no job chain between {a.uid} and {b.uid}{scope}: neither is an ancestor of the other")


def chain(a: Job, b: Job, workspace: Workspace | None = None) -> list[Job]:
    return _jobs_by_ids(chain_ids(a, b, workspace))


def check_in_workspace(job: Job, workspace: Workspace | None) -> None:
    if workspace is None:
        return
    if not JobWorkspace.select().where((JobWorkspace.job == job) & (JobWorkspace.workspace == workspace)).exists():
        raise UsageError(f"{job.uid} is not in workspace W{workspace.number}")


def would_create_cycle(child: Job, parent: Job) -> bool:
    """True if connecting ``parent`` → ``child`` would close a cycle."""
    return parent.id == child.id or parent.id in descendant_ids([child])
