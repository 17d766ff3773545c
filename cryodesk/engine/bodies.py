"""The engine's worker bodies: a job (run through the Qt-free runner) and a generic task.

A *body* is ``body(progress, cancel_event[, started]) -> (status, payload)``;
it runs in a pool thread inside ``db.connection_context()`` (see
:mod:`cryodesk.engine.workers`) and never touches Qt.
"""

from __future__ import annotations

import logging
import traceback

from ..base.errors import CryodeskError, JobCancelled
from .workers import Body

log = logging.getLogger("cryodesk.engine")


def task_body(fn) -> Body:
    """Adapt a task function ``fn(progress, cancel_event)`` to a worker body."""

    def body(progress, cancel_event):
        try:
            result = fn(progress, cancel_event)
        except JobCancelled:
            return "cancelled", None
        except CryodeskError as exc:
            return "failed", str(exc)
        except Exception as exc:
            log.error("task failed:\n%s", traceback.format_exc())
            return "failed", f"{type(exc).__name__}: {exc}"
        return "completed", result

    return body


def job_body(project_uid: str, job_uid: str) -> Body:
    """The worker body of one job: :func:`cryodesk.core.runner.run_job`, then release its owner.

    ``started`` is announced only if the job was not cancelled while it waited
    for a pool thread (then it ends *killed* without running).
    """
    from ..core import lifecycle, runner
    from ..core.jobs import get_job

    def body(progress, cancel_event, started):
        job = get_job(project_uid, job_uid)
        try:
            if cancel_event.is_set():  # cancelled while it waited for a pool thread
                job = lifecycle.end_unrun(job, "killed", "cancelled by the user before it ran")
            else:
                started()
                job = runner.run_job(project_uid, job, progress, cancel_event)
        except CryodeskError as exc:
            # refused at start (the world changed since it was queued: a parent cleared, ...),
            # or recording the outcome failed (the project's disk went away): never leave it "running"
            try:
                job = lifecycle.end_if_active(job, f"not run: {getattr(exc, 'reason', exc)}",
                                              statuses=("queued", "running"))
            except CryodeskError as again:  # (a disk too full for even that: it stays as it was, said here)
                log.warning("%s %s: %s; %s", project_uid, job_uid, exc, again)
        except Exception as exc:
            log.error("%s %s: engine error:\n%s", project_uid, job_uid, traceback.format_exc())
            job = lifecycle.end_if_active(job, f"cryodesk could not run or record it: an internal error "
                                               f"({type(exc).__name__}); details in the application log",
                                          statuses=("queued", "running"))
        finally:
            lifecycle.release(job)
        return job.status, job.error

    return body
