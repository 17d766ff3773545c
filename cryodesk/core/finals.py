"""Final results and the *ancestor of final* flag.

Marking a job final flags every ancestor across the whole project (every
workspace) as *ancestor of final*; unmarking recomputes the flags from the
remaining finals.  Flags are stored, so reading them is free; this module is
the only writer.
"""

from __future__ import annotations

from pathlib import Path

from ..base import hooks
from ..db.models import Job, Project, db
from . import events, manifest
from .graph import _closure_ids
from .guard import fresh_jobs, project_write
from .projects import get_project
from .results import BatchResult, Outcome
from .rules import why_not_mark_final


def _ids_where(sql: str, params: list) -> list[int]:
    return [r[0] for r in db.obj.execute_sql(sql, params).fetchall()]


def _set_flag(ids: list[int], value: bool) -> None:
    p = db.obj.param
    for i in range(0, len(ids), 900):
        chunk = ids[i : i + 900]
        # raw SQL: the query builder's per-statement overhead dominated at 26k ids
        db.obj.execute_sql(f"UPDATE job SET is_ancestor_of_final = {p} WHERE id IN ({', '.join([p] * len(chunk))})",
                           [value, *chunk])


def recompute_ancestor_flags(project: Project, write_manifests: bool = True, only_added=None) -> set[int]:
    """Set ``is_ancestor_of_final`` to exactly the ancestors of the project's final jobs.

    With ``only_added`` (jobs just marked final) flags are only added: the
    ancestors of new finals become flagged, nothing can lose its flag, so the
    closure of the other finals need not be walked.  Returns the ids whose
    flag changed.
    """
    project = get_project(project)
    p = db.obj.param
    with db.atomic():
        if only_added is not None:
            start = sorted({j.id for j in only_added})
            reach = _closure_ids(start, upward=True)
            now = set(_ids_where(f"SELECT id FROM job WHERE project_id = {p} AND is_ancestor_of_final = {p}",
                                 [project.id, True]))
            to_set, to_unset = sorted(reach - now), []
        else:
            # Every final's ancestors; a final reachable from another final is
            # an ancestor of final too, so the start set stays in the closure.
            finals = _ids_where(f"SELECT id FROM job WHERE project_id = {p} AND is_final = {p}", [project.id, True])
            should = _closure_ids(finals, upward=True)
            now = set(_ids_where(f"SELECT id FROM job WHERE project_id = {p} AND is_ancestor_of_final = {p}",
                                 [project.id, True]))
            to_set, to_unset = sorted(should - now), sorted(now - should)
        _set_flag(to_set, True)
        _set_flag(to_unset, False)
    changed = set(to_set) | set(to_unset)
    if write_manifests and changed:
        _write_manifests(project, changed)
    return changed


def _write_manifests(project: Project, ids) -> None:
    ids = sorted(ids)
    for i in range(0, len(ids), 900):
        manifest.write_jobs(Job.select().where(Job.id.in_(ids[i : i + 900])), Path(project.directory))


def set_final(project, jobs, final: bool = True, write_manifests: bool = True):
    """Mark (or unmark) ``jobs`` as final results and recompute the ancestor flags.

    Returns a :class:`~cryodesk.core.results.BatchResult` whose ``changed_ids``
    are the jobs whose flags changed.  With ``write_manifests=False`` the
    caller rewrites their ``job.json`` later with :func:`write_manifests`
    (the GUI does it in a worker: on a deep 50k-job tree that is thousands
    of files, seconds the user should not wait for).
    """
    project = get_project(project)
    ids = [j.id for j in jobs]
    action = "mark-final" if final else "unmark-final"
    result = BatchResult(action)
    touched = []
    # read the jobs inside the transaction that writes them: a clear or delete rechecks
    # "not final" under the same lock, so one of the two always sees the other
    with project_write(project, ids):
        found = fresh_jobs(ids)
        present = {j.id for j in found}
        for j in jobs:  # deleted meanwhile: say so, never report it marked
            if j.id not in present:
                result.outcomes.append(Outcome(j.uid, action, False, f"{j.uid}: it no longer exists"))
        jobs = found
        hooks.point("finals.checked", jobs=[j.uid for j in jobs], final=final)
        for job in jobs:
            if final:
                why = why_not_mark_final(job)
                if why:
                    result.outcomes.append(Outcome(job.uid, action, False, f"{job.uid}: {why}"))
                    continue
            if bool(job.is_final) != final:
                Job.update(is_final=final).where(Job.id == job.id).execute()
                job.is_final = final
                touched.append(job.id)
            result.outcomes.append(Outcome(job.uid, action, True))
        marked = [j for j in jobs if j.id in set(touched)]
        changed = recompute_ancestor_flags(project, write_manifests=False,
                                           only_added=marked if final else None)
        result.changed_ids = sorted(set(touched) | changed)
        events.record_ids(project, "flags", result.changed_ids)
        # the final flag itself is the project's own record (attach rebuilds the ancestor flags from
        # it): written before the commit, so a manifest that cannot be written rolls the change back
        _write_manifests(project, result.changed_ids if write_manifests else touched)
    return result


def write_manifests(project, ids) -> None:
    """Rewrite the ``job.json`` of jobs ``ids`` (after ``set_final(..., write_manifests=False)``)."""
    _write_manifests(get_project(project), ids)
