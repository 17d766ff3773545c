"""The rules about final results, in one place.

Each ``why_not_*`` returns ``None`` when the action is allowed, or the reason
(a phrase completing "J5 cannot be ... because ...") when it is refused.
Services and the UI ask these functions; nobody re-implements a rule.

As in the CryoSPARC guide: a *final* job cannot be cleared, deleted or have
its parameters changed; an *ancestor of final* can be cleared (it can be
re-run to regenerate its outputs) but not deleted, and its parameters cannot
change (that would make the final result irreproducible).
"""

from __future__ import annotations

from ..db.models import ACTIVE_STATUSES, Job


def _active(job: Job) -> str | None:
    if job.status in ACTIVE_STATUSES:
        return f"it is {job.status}; kill it or wait for it to finish first"
    return None


def active_readers(job: Job) -> list[tuple[str, str]]:
    """``(uid, status)`` of the active (queued, launched, running...) jobs that read what ``job`` made.

    At any depth: a grandchild reads its parent's particles, whose images are in
    this job's stacks (a selection keeps pointing into the extraction's files).
    """
    from .graph import descendant_ids

    below = sorted(descendant_ids([job]))
    out: list[tuple[str, str]] = []
    for i in range(0, len(below), 900):
        out += [(f"J{n}", s) for n, s in Job.select(Job.number, Job.status).where(
            Job.id.in_(below[i:i + 900]) & Job.status.in_(ACTIVE_STATUSES)).tuples()]
    return sorted(out, key=lambda r: int(r[0][1:]))


def readers_text(readers: list[tuple[str, str]]) -> str:
    """"J7 is running on its outputs" / "J7, J9 are running or queued on its outputs (or on what was made from them)"."""
    uids = [u for u, _ in readers]
    statuses = "/".join(dict.fromkeys(s for _, s in readers))
    return f"{', '.join(uids)} {'is' if len(uids) == 1 else 'are'} {statuses} on its outputs or on what was made from them"


def _active_children(job: Job) -> list[str]:
    return [u for u, _ in active_readers(job)]


def _foreign(job: Job, what: str) -> str | None:
    """Another program's job (issue 16: ``Job.path`` set) is changed only by that program's own rules."""
    if not getattr(job, "path", None):
        return None
    if job.type.startswith("relion."):
        return (f"it is a RELION job ({job.path}): {what} with RELION's rules "
                "('cryodesk relion clean|delete'), which keep the project usable by RELION")
    return f"it is another program's job ({job.path}): cryodesk only reads it"


def why_not_clear(job: Job, readers: bool = True) -> str | None:
    """``readers=False`` skips the one rule that needs the database (running children reading
    its outputs): for a quick judgement of a job's own state, as menus make."""
    foreign = _foreign(job, "clear it")
    if foreign:
        return foreign
    if job.is_final:
        return "it is marked as a final result; unmark it first"
    reason = _active(job)
    if reason or not readers:
        return reason
    readers = active_readers(job)
    if readers:
        return readers_text(readers)
    return None


def why_not_delete(job: Job, outside_descendants: list[str] = ()) -> str | None:
    foreign = _foreign(job, "delete it")
    if foreign:
        return foreign
    if job.is_final:
        return "it is marked as a final result; unmark it first"
    if job.is_ancestor_of_final:
        return "it is an ancestor of a final result (it may be cleared, not deleted)"
    reason = _active(job)
    if reason:
        return reason
    if outside_descendants:
        return "it has descendants that are not being deleted with it: " + ", ".join(outside_descendants)
    return None


def why_not_set_params(job: Job) -> str | None:
    if getattr(job, "path", None):
        return f"it is another program's job ({job.path}): its parameters (job.star, job.json) are read-only here"
    if job.is_final:
        return "it is marked as a final result; its parameters are frozen"
    if job.is_ancestor_of_final:
        return "it is an ancestor of a final result; its parameters are frozen"
    if job.status != "building":
        return f"it is {job.status}; clear it first to change its parameters"
    return None


def why_not_mark_complete(job: Job) -> str | None:
    foreign = _foreign(job, "mark it as finished")
    if foreign:
        return foreign
    if job.status not in ("killed", "failed"):
        return f"only killed or failed jobs can be marked as complete (it is {job.status})"
    return None


def why_not_kill(job: Job) -> str | None:
    """Another program's job runs in that program (RELION, CryoSPARC): cryodesk never stops it."""
    if not getattr(job, "path", None):
        return None
    program = "RELION" if job.type.startswith("relion.") else "CryoSPARC" if job.type.startswith("cryosparc.") \
        else "its own program"
    return f"it is another program's job ({job.path}): it runs in {program}; stop it there"


def why_not_mark_final(job: Job) -> str | None:
    if job.status != "completed":
        return f"only completed jobs can be marked as final (it is {job.status})"
    return None
