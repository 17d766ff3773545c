"""Queries on the job DAG: parents, children, ancestors, descendants, chains.

Ancestors, descendants and chains walk an in-memory adjacency index of the
project (:mod:`cryodesk.core.graph_index`), validated against the change log
before each use, so they stay a few ms at 100,000 jobs and see what other
processes changed.  Where the index cannot answer (inside a transaction with
uncommitted structural changes) the same answer comes from one recursive
CTE (``UNION``, not ``UNION ALL``, so diamonds are visited once and a cycle
ends), which SQLite and PostgreSQL both run.  A *workspace scope* follows
only edges whose far end is linked into that workspace.
"""

from __future__ import annotations

from typing import Iterable

from ..base.errors import NotFound, UsageError
from ..db.models import Connection, Job, JobWorkspace, Workspace, db


def _ids(jobs: Iterable) -> list[int]:
    return [j.id if isinstance(j, Job) else int(j) for j in jobs]


def _closure_sql(upward: bool, n_start: int, scoped: bool, param: str) -> str:
    near, far = ("child_id", "parent_id") if upward else ("parent_id", "child_id")
    scope = (f" JOIN job_workspace jw ON jw.job_id = c.{far} AND jw.workspace_id = {param}" if scoped else "")
    marks = ", ".join([param] * n_start)
    return (
        f"WITH RECURSIVE reach(id) AS ("
        f"SELECT c.{far} FROM connection c{scope} WHERE c.{near} IN ({marks}) "
        f"UNION SELECT c.{far} FROM connection c JOIN reach r ON c.{near} = r.id{scope}"
        f") SELECT id FROM reach"
    )


def _closure_ids(start: list[int], upward: bool, workspace: Workspace | None = None) -> set[int]:
    """Ids of all jobs reachable from ``start`` along edges (up = towards parents)."""
    if not start:
        return set()
    from . import graph_index  # (numpy: loaded by the first query, not by every command)

    got = graph_index.closure(start, upward, workspace.id if workspace is not None else None)
    return got if got is not None else _closure_ids_sql(start, upward, workspace)


def _closure_ids_sql(start: list[int], upward: bool, workspace: Workspace | None = None) -> set[int]:
    """:func:`_closure_ids` by recursive SQL (the fallback, and the reference the index is tested against).

    Raw SQL on purpose: this is the hot path of every selection, flag and
    plan, and the query builder's overhead was a third of its cost at 50k
    jobs.  The covering indexes on (child, parent) and (parent, child) let
    both directions run from the index alone.
    """
    if not start:
        return set()
    database = db.obj
    out: set[int] = set()
    for i in range(0, len(start), 900):
        chunk = start[i : i + 900]
        params: list = []
        if workspace is not None:
            params = [workspace.id, *chunk, workspace.id]
        else:
            params = list(chunk)
        sql = _closure_sql(upward, len(chunk), workspace is not None, database.param)
        out.update(row[0] for row in database.execute_sql(sql, params).fetchall())
    return out


def ancestor_ids(jobs, workspace: Workspace | None = None) -> set[int]:
    """Ids of every ancestor of ``jobs`` (jobs or ids), the jobs themselves excluded."""
    start = _ids(jobs)
    out = _closure_ids(start, True, workspace)
    out.difference_update(start)  # in place: the answer can be most of a 100,000-job project
    return out


def descendant_ids(jobs, workspace: Workspace | None = None) -> set[int]:
    start = _ids(jobs)
    out = _closure_ids(start, False, workspace)
    out.difference_update(start)
    return out


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


def _chain_sql(scoped: bool, param: str) -> str:
    scope_p = f" JOIN job_workspace jw ON jw.job_id = c.parent_id AND jw.workspace_id = {param}" if scoped else ""
    scope_c = f" JOIN job_workspace jw ON jw.job_id = c.child_id AND jw.workspace_id = {param}" if scoped else ""
    # up = ancestors of the bottom job; down = descendants of the top job that stay inside up (or are bottom)
    return (
        f"WITH RECURSIVE up(id) AS ("
        f"SELECT c.parent_id FROM connection c{scope_p} WHERE c.child_id = {param} "
        f"UNION SELECT c.parent_id FROM connection c JOIN up u ON c.child_id = u.id{scope_p}), "
        f"down(id) AS ("
        f"SELECT c.child_id FROM connection c{scope_c} WHERE c.parent_id = {param} "
        f"AND (c.child_id IN (SELECT id FROM up) OR c.child_id = {param}) "
        f"UNION SELECT c.child_id FROM connection c JOIN down d ON c.parent_id = d.id{scope_c} "
        f"WHERE c.child_id IN (SELECT id FROM up) OR c.child_id = {param}"
        f") SELECT id FROM down"
    )


def _chain_down(top: Job, bottom: Job, workspace: Workspace | None) -> set[int]:
    from . import graph_index

    got = graph_index.chain(top.id, bottom.id, workspace.id if workspace is not None else None)
    return got if got is not None else _chain_down_sql(top, bottom, workspace)


def _chain_down_sql(top: Job, bottom: Job, workspace: Workspace | None) -> set[int]:
    database = db.obj
    if workspace is None:
        params = [bottom.id, top.id, bottom.id, bottom.id]
    else:
        w = workspace.id
        params = [w, bottom.id, w, w, top.id, bottom.id, w, bottom.id]
    rows = database.execute_sql(_chain_sql(workspace is not None, database.param), params).fetchall()
    return {r[0] for r in rows}


def chain_ids(a: Job, b: Job, workspace: Workspace | None = None) -> set[int]:
    """The job chain between ``a`` and ``b``: descendants(a) ∩ ancestors(b), plus both.

    The order of ``a`` and ``b`` does not matter.  One statement walks up
    from the lower job and down from the upper one inside that set, so only
    the chain itself comes back from the database.

    Raises
    ------
    NotFound
        If neither job is an ancestor of the other (in the scope).
    """
    if a.id == b.id:
        return {a.id}
    for top, bottom in ((a, b), (b, a)):
        down = _chain_down(top, bottom, workspace)
        if bottom.id in down:
            return down | {top.id}
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
    if parent.id == child.id:
        return True
    from . import graph_index

    got = graph_index.reaches(child.id, parent.id)
    return got if got is not None else parent.id in _closure_ids_sql([child.id], False)
