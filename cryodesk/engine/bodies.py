"""The engine's worker bodies: a job (run through the Qt-free runner) and a generic task.

A *body* is ``body(progress, cancel_event[, started]) -> (status, payload)``;
it runs in a pool thread through :func:`run_body` (inside
``db.connection_context()``) and never touches Qt.  Both pool mechanisms —
the GUI's ``QThreadPool`` workers (:mod:`cryodesk.engine.workers`) and the
headless engine's threads (:mod:`cryodesk.engine.headless`) — call
:func:`run_body`, with a :class:`ProgressThrottle` for its reports.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from typing import Callable

from ..base.errors import CryodeskError, JobCancelled

log = logging.getLogger("cryodesk.engine")

#: progress reports are throttled to this interval (s): a body may report per particle
PROGRESS_INTERVAL = 0.05

Body = Callable[[Callable[[float, str], None], threading.Event], tuple[str, object]]


class ProgressThrottle:
    """Pass ``report(fraction, message)`` on at most every :data:`PROGRESS_INTERVAL` (100 % always)."""

    def __init__(self, report: Callable[[float, str], None]):
        self._report = report
        self._last = 0.0

    def __call__(self, fraction: float, message: str = "") -> None:
        now = time.monotonic()
        if fraction < 1.0 and now - self._last < PROGRESS_INTERVAL:
            return
        self._last = now
        self._report(float(fraction), str(message))


def run_body(body: Body, progress, cancel_event: threading.Event, started: Callable[[], None],
             announces_start: bool, name: str) -> tuple[str, object]:
    """Run ``body`` in this (pool) thread inside ``db.connection_context()``; never raises.

    ``started`` is called before the body, or by the body itself if it ``announces_start``
    (a job: only once it will really run).
    """
    from ..db import db

    try:
        with db.connection_context():
            if announces_start:
                return body(progress, cancel_event, started)
            started()
            return body(progress, cancel_event)
    except BaseException as exc:  # never let an exception escape into the pool's thread
        log.error("worker %s failed:\n%s", name, traceback.format_exc())
        return "failed", f"{type(exc).__name__}: {exc}"


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
