"""Change events: every core service that changes what a window shows says so here.

A change is one row of the ``change`` table (:class:`~cryodesk.db.models.Change`),
written in the same transaction as the change itself, so it is published
exactly when the change commits, whichever process made it (the app, the
CLI, a worker on another host sharing a PostgreSQL database).  Windows follow
the log with a :class:`Follower` (polled off the GUI thread) and update only
what changed.

Kinds
-----
``added``    jobs created (the tree's shape changed)
``removed``  jobs deleted (the tree's shape changed)
``updated``  status, parameters, outputs or error of jobs changed
``flags``    final / ancestor-of-final flags changed
``sizes``    recorded sizes of jobs (or of the project) changed
``links``    jobs were linked into / unlinked from workspaces, or connected
``project``  the project's own row, workspaces or sessions changed
``projects`` the list of projects changed (``project`` is None)

``jobs`` is a list of job numbers, or None for "many or all of them" (more
than :data:`MAX_JOBS`: the reader reloads the scope).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from ..db.models import Change, Job, Project, utcnow

KINDS = ("added", "removed", "updated", "flags", "sizes", "links", "project", "projects")
#: above this many jobs an event says "many" (None) rather than listing them
MAX_JOBS = 5000
#: rows older than this are pruned now and then (a follower that slept longer reloads)
KEEP_SECONDS = 24 * 3600
#: a follower re-reads this many ids below its cursor: on PostgreSQL a transaction that
#: took a lower id may commit after a higher one was already seen
REREAD = 256


def _numbers(jobs) -> list[int] | None:
    if jobs is None:
        return None
    out = set()
    for j in jobs:
        if isinstance(j, Job):
            out.add(int(j.number))
        elif isinstance(j, str):
            out.add(int(j.lstrip("Jj")))
        else:
            out.add(int(j))
    return None if len(out) > MAX_JOBS else sorted(out)


def _project_id(project) -> int | None:
    if project is None:
        return None
    if isinstance(project, Project):
        return project.id
    return int(project)


def record(project, kind: str, jobs: Iterable | None = ()) -> None:
    """Publish that ``jobs`` (Job rows, numbers or uids; None = many) of ``project`` changed.

    Call it inside the transaction that makes the change.  An empty ``jobs``
    publishes nothing for the job kinds.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown change kind {kind!r}")
    numbers = _numbers(jobs)
    if numbers == [] and kind not in ("project", "projects"):
        return
    row = Change.create(project_id=_project_id(project), kind=kind,
                        jobs=numbers if kind not in ("project", "projects") else None)
    if row.id % 1000 == 0:  # now and then, forget what nobody needs any more
        import datetime as dt

        Change.delete().where(Change.at < utcnow() - dt.timedelta(seconds=KEEP_SECONDS)).execute()


def cursor() -> int:
    """The newest change id now (a follower starts here: what is shown is already current)."""
    return int(Change.select(Change.id).order_by(Change.id.desc()).limit(1).scalar() or 0)


@dataclass
class Batch:
    """What changed since a follower last looked, merged per project."""

    #: project id -> kind -> job numbers (None: many/all)
    projects: dict[int | None, dict[str, set[int] | None]] = field(default_factory=dict)
    #: the follower fell too far behind (its rows were pruned): reload everything
    overflow: bool = False

    def __bool__(self) -> bool:
        return bool(self.projects) or self.overflow

    def add(self, project_id, kind: str, jobs) -> None:
        kinds = self.projects.setdefault(project_id, {})
        if jobs is None or kinds.get(kind, set()) is None:
            kinds[kind] = None
        else:
            kinds.setdefault(kind, set()).update(jobs)

    def kinds(self, project_id) -> dict[str, set[int] | None]:
        return self.projects.get(project_id, {})


class Follower:
    """Reads the change log from now on (one per window; call :meth:`poll` off the GUI thread).

    Ids are handed out before commit, so on PostgreSQL a lower id can become
    visible after a higher one: each poll re-reads the last :data:`REREAD`
    ids and skips those it has already seen.
    """

    def __init__(self) -> None:
        self.last = cursor()
        # what is committed now is already shown: only later commits are news
        self._seen = self._ids_above(self.last - REREAD)

    @staticmethod
    def _ids_above(low: int) -> set[int]:
        return {i for (i,) in Change.select(Change.id).where(Change.id > max(0, low)).tuples()}

    def poll(self, limit: int = 100_000) -> Batch:
        """The changes committed since the last poll (merged)."""
        batch = Batch()
        low = max(0, self.last - REREAD)
        rows = list(Change.select(Change.id, Change.project_id, Change.kind, Change.jobs)
                    .where(Change.id > low).order_by(Change.id).limit(limit).tuples())
        for cid, pid, kind, jobs in rows:
            if cid in self._seen:
                continue
            self._seen.add(cid)
            batch.add(pid, kind, jobs)
        if rows:
            self.last = max(self.last, rows[-1][0])
        floor = self.last - REREAD
        self._seen = {i for i in self._seen if i > floor}
        batch.overflow = len(rows) >= limit
        return batch


def record_ids(project, kind: str, job_ids) -> None:
    """:func:`record` for job database ids (looked up as numbers)."""
    ids = sorted({int(i) for i in job_ids})
    if len(ids) > MAX_JOBS:
        record(project, kind, None)
        return
    numbers: list[int] = []
    for k in range(0, len(ids), 900):
        numbers += [n for (n,) in Job.select(Job.number).where(Job.id.in_(ids[k:k + 900])).tuples()]
    record(project, kind, numbers)
