"""The write guard: read what a decision depends on and write the change in one locked transaction.

Every service that judges a rule and then changes a project — clear, delete,
cleanup, mark final, set parameters, connect, mark complete, start a job —
does both inside :func:`project_write`.  The guard holds on every backend:

* SQLite: ``BEGIN IMMEDIATE`` (the database's write lock, from the first statement);
* PostgreSQL: ``SELECT ... FOR UPDATE`` on the project row, then on the job rows
  involved (in id order).  Every guarded writer of a project takes the project
  row first, so they run one after another, and each reads the state the
  previous one committed.

Read the rows *inside* the block: a row read before it may be stale.
"""

from __future__ import annotations

from contextlib import contextmanager

from ..db import lock_rows, write_transaction
from ..db.models import Job, Project


@contextmanager
def project_write(project, job_ids=()):
    """A write transaction holding ``project``'s row and the rows of ``job_ids``."""
    project_id = project.id if isinstance(project, Project) else int(project)
    with write_transaction():
        lock_rows(Project, [project_id])
        if job_ids:
            lock_rows(Job, job_ids)
        yield


def fresh_jobs(job_ids) -> list[Job]:
    """The jobs ``job_ids`` as committed now (call inside :func:`project_write`), in the given order."""
    ids = [int(i) for i in job_ids]
    by_id = {}
    for k in range(0, len(ids), 900):
        by_id.update({j.id: j for j in Job.select().where(Job.id.in_(ids[k:k + 900]))})
    return [by_id[i] for i in ids if i in by_id]
