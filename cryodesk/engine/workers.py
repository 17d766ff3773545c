"""Pool workers: a ``QRunnable`` running one Qt-free body, with its own signals object.

The pattern follows superqt's ``WorkerBase``: ``QRunnable`` is not a QObject,
so each worker carries a :class:`WorkerSignals` (created in the engine's
thread) and the engine keeps a Python reference to both until the
``finished`` signal has been handled, so neither is collected while a pool
thread still uses it.  Signals cross threads as queued connections: the
engine's slots always run in the engine's (GUI) thread.

A *body* is ``body(progress, cancel_event) -> (status, payload)``; it runs in
a pool thread inside ``db.connection_context()`` (one SQLite connection per
thread) and must not touch Qt.
"""

from __future__ import annotations

import logging
import threading
import time
import traceback
from typing import Callable

from PySide6.QtCore import QObject, QRunnable, Signal

from ..base.errors import CryodeskError, JobCancelled
from ..db import db

log = logging.getLogger("cryodesk.engine")

#: progress signals are throttled to this interval (s): a body may report per particle
PROGRESS_INTERVAL = 0.05

Body = Callable[[Callable[[float, str], None], threading.Event], tuple[str, object]]


class WorkerSignals(QObject):
    """Signals of one worker; ``key`` identifies the worker to the engine."""

    started = Signal(object)
    progress = Signal(object, float, str)
    finished = Signal(object, str, object)  # key, status, payload


class Worker(QRunnable):
    """Run ``body`` in a pool thread, reporting through :attr:`signals`."""

    def __init__(self, key, body: Body, announces_start: bool = False):
        super().__init__()
        #: the body emits ``started`` itself (a job: only once it will really run)
        self._announces_start = announces_start
        self.key = key
        self.signals = WorkerSignals()
        self.cancel_event = threading.Event()
        self._body = body
        self._last_emit = 0.0

    def progress(self, fraction: float, message: str = "") -> None:
        """Thread-safe progress report (throttled; the final 100 % always goes through)."""
        now = time.monotonic()
        if fraction < 1.0 and now - self._last_emit < PROGRESS_INTERVAL:
            return
        self._last_emit = now
        self.signals.progress.emit(self.key, float(fraction), str(message))

    def _started(self) -> None:
        self.signals.started.emit(self.key)

    def run(self) -> None:  # called by QThreadPool in a pool thread
        status, payload = "failed", "the worker stopped unexpectedly"
        try:
            with db.connection_context():
                if self._announces_start:
                    status, payload = self._body(self.progress, self.cancel_event, self._started)
                else:
                    self._started()
                    status, payload = self._body(self.progress, self.cancel_event)
        except BaseException as exc:  # never let an exception escape into Qt's thread
            log.error("worker %s failed:\n%s", self.key, traceback.format_exc())
            status, payload = "failed", f"{type(exc).__name__}: {exc}"
        finally:
            self.signals.finished.emit(self.key, status, payload)


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
            job = lifecycle.end_if_active(job, f"not run: {getattr(exc, 'reason', exc)}", statuses=("queued", "running"))
        except Exception as exc:
            log.error("%s %s: engine error:\n%s", project_uid, job_uid, traceback.format_exc())
            job = lifecycle.end_if_active(job, f"{type(exc).__name__}: {exc}", statuses=("queued", "running"))
        finally:
            lifecycle.release(job)
        return job.status, job.error

    return body
