"""The ``delete_project`` action: one job of a project that is being deleted as a whole.

A project delete (:mod:`cryodesk.core.project_lifecycle`) is a plan of these
items, children first, carried out like every deletion (journal, recheck,
trash); the rest of the directory goes with it afterwards.  Its rule differs
from ``delete`` in one point only: a final result (and its ancestors) may go,
when — and only when — the plan says so (``require.include_finals``, shown in
the plan; the user asked for it with ``--include-finals``).  Everything else
holds as for any item: nothing outside the job's directory, no running job in
the project, every descendant gone before it, and a journal made for another
project (another project id) is refused.
"""

from __future__ import annotations

from ...db.models import ACTIVE_STATUSES, Job
from .. import events
from ..graph import descendant_ids
from .actions import Action, register
from .plan import path_problem


class DeleteProject(Action):
    name = "delete_project"
    whole_dir = True

    def check(self, project, job, item):
        why = path_problem(item, self.whole_dir)
        if why:
            return why
        require = item.versions.get("require") or {}
        if not project.uuid or require.get("project_id") != project.uuid:
            return "the plan was made for another project (its project id differs)"
        if project.archived_at is not None:
            return f"{project.uid} was archived after the plan was made"
        if job.is_final and require.get("include_finals") is not True:
            return "it is marked as a final result (it was not when the plan was made)"
        busy = (Job.select(Job.number, Job.status).where((Job.project == project.id)
                                                         & Job.status.in_(ACTIVE_STATUSES)).tuples().first())
        if busy:
            return f"J{busy[0]} of the project is {busy[1]}"
        left = descendant_ids([job])
        if left:
            names = sorted(f"J{n}" for (n,) in Job.select(Job.number).where(Job.id.in_(sorted(left))).tuples())
            return f"its descendants {', '.join(names)} are still there"
        return None

    def apply(self, project, job, item):
        job.delete_instance()  # connections, links and output rows cascade
        events.record(project, "removed", [job])


register(DeleteProject())
