"""Final results and the *ancestor of final* flag.

Marking a job final flags every ancestor across the whole project (every
workspace) as *ancestor of final*; unmarking recomputes the flags from the
remaining finals.  Flags are stored, so reading them is free; this module is
the only writer.
"""

from __future__ import annotations

from ..db import Job, Project, db
from . import manifest
from .graph import _closure_ids
from .projects import get_project
from .rules import why_not_mark_final


def _project_job_ids(project, flag) -> set[int]:
    return {r[0] for r in Job.select(Job.id).where((Job.project == project) & (flag == True)).tuples()}  # noqa: E712


def recompute_ancestor_flags(project: Project, write_manifests: bool = True) -> set[int]:
    """Set ``is_ancestor_of_final`` to exactly the ancestors of the project's final jobs.

    Returns the ids of the jobs whose flag changed.
    """
    project = get_project(project)
    with db.atomic():
        finals = _project_job_ids(project, Job.is_final)
        # A final job reachable from another final is also an ancestor of final,
        # so the start set is not removed from the closure.
        should = _closure_ids(sorted(finals), upward=True)
        now = _project_job_ids(project, Job.is_ancestor_of_final)
        changed = (should - now) | (now - should)
        for ids, value in ((sorted(should - now), True), (sorted(now - should), False)):
            for i in range(0, len(ids), 30000):
                Job.update(is_ancestor_of_final=value).where(Job.id.in_(ids[i : i + 30000])).execute()
    if write_manifests and changed:
        pdir = project.directory
        for i in range(0, len(changed), 30000):
            for job in Job.select().where(Job.id.in_(sorted(changed)[i : i + 30000])):
                manifest.write_job(job, pdir)
    return changed


def set_final(project, jobs, final: bool = True):
    """Mark (or unmark) ``jobs`` as final results and recompute the ancestor flags.

    Returns a :class:`~cryodesk.core.actions.BatchResult`.
    """
    from .actions import BatchResult, Outcome

    from .jobs import refresh

    project = get_project(project)
    jobs = refresh(jobs)
    action = "mark-final" if final else "unmark-final"
    result = BatchResult(action)
    touched = []
    with db.atomic():
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
        changed = recompute_ancestor_flags(project, write_manifests=False)
    pdir = project.directory
    ids = sorted(set(touched) | changed)
    for i in range(0, len(ids), 30000):
        for job in Job.select().where(Job.id.in_(ids[i : i + 30000])):
            manifest.write_job(job, pdir)
    return result
