"""The GUI's job engine: a QObject whose two QThreadPools run the jobs the shared scheduler starts.

The logic — queue, dependency order, cancel, heartbeats, kill requests, tasks —
is :class:`cryodesk.engine.scheduler.Scheduler`, shared with the Qt-free
:class:`cryodesk.engine.headless.HeadlessEngine` of ``cryodesk job run``;
this module adds the Qt mechanics: pool threads, queued signals, a poll timer.

One :class:`Engine` per process (the GUI's, or the one a headless session
run drives: :mod:`cryodesk.engine.live`).  It lives in the thread that
created it (the GUI thread); every signal it emits is emitted there, so
widgets may connect to it directly.  Job bodies run in pool threads through
:func:`cryodesk.core.runner.run_job` and never see Qt.

Pools
-----
``cpu`` (``max(1, cores - 1)`` threads) runs job types with
``resource="cpu"``; ``io`` (2 threads) runs ``resource="io"`` jobs (copies,
imports) and, by default, generic tasks.  Leaving one core free keeps the GUI
thread responsive while numeric jobs run; the separate io pool means a long
copy never queues behind (or starves) a CPU job, nor the reverse.

Generic tasks
-------------
:meth:`Engine.submit_task` runs any Qt-free long operation (cleanup execution,
size refresh, cache copy) with the same progress / cancel / finished
reporting as jobs; see its docstring.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QCoreApplication, QObject, QThreadPool, QTimer, Signal

from . import workers
from .scheduler import Scheduler, default_cpu_threads, ensure_job_types
from .workers import Worker

__all__ = ["Engine", "ensure_app", "ensure_job_types"]


def ensure_app() -> QCoreApplication:
    """The running Qt application, or a new QCoreApplication (headless)."""
    return QCoreApplication.instance() or QCoreApplication(sys.argv[:1] or ["cryodesk"])


class Engine(QObject, Scheduler):
    """Runs jobs and tasks on two QThreadPools and reports through signals.

    Signals (all emitted in the engine's thread)
    -------------------------------------------
    job_started(project_uid, job_uid)
    job_progress(project_uid, job_uid, fraction, message)
    job_waiting(project_uid, job_uid, reason) — queued, waiting for a parent
    job_finished(project_uid, job_uid, status) — completed / failed / killed
    job_handed_off(project_uid, job_uid) — still queued, now for another process to run
    task_started(task_id, name)
    task_progress(task_id, fraction, message)
    task_finished(task_id, status, payload) — status completed / failed / cancelled;
        payload is fn's return value, the error message, or None
    idle() — nothing queued, running or in progress any more

    The methods (``queue``, ``cancel``, ``kill``, ``submit_task``, ...) are
    :class:`~cryodesk.engine.scheduler.Scheduler`'s.
    """

    job_started = Signal(str, str)
    job_progress = Signal(str, str, float, str)
    job_waiting = Signal(str, str, str)
    job_finished = Signal(str, str, str)
    job_handed_off = Signal(str, str)  # queued, given to another process (see hand_off_queued)
    task_started = Signal(str, str)
    task_progress = Signal(str, float, str)
    task_finished = Signal(str, str, object)
    idle = Signal()

    def __init__(self, parent: QObject | None = None, *, cpu_threads: int | None = None,
                 io_threads: int = 2, poll_interval_ms: int = 1000):
        QObject.__init__(self, parent)
        self._init_scheduler()
        self.pools = {"cpu": QThreadPool(self), "io": QThreadPool(self)}
        for pool in self.pools.values():
            workers.register_pool(pool)  # so tests and shutdown can ask whether anything still runs
        self.pools["cpu"].setMaxThreadCount(cpu_threads or default_cpu_threads())
        self.pools["io"].setMaxThreadCount(io_threads)
        # a finished worker is owned by the worker registry until our finished slot has run
        # (cryodesk.engine.workers), so dropping it from the scheduler's dicts there is safe
        self._timer = QTimer(self)
        self._timer.setInterval(poll_interval_ms)
        self._timer.timeout.connect(self.poll)

    # -- the scheduler's mechanics ---------------------------------------------------------
    def _launch(self, key, body, pool: str, name: str, announces_start: bool) -> Worker:
        worker = Worker(key, body, announces_start=announces_start, name=name)
        # bound methods of this QObject: Qt delivers them queued, in the engine's thread
        worker.signals.started.connect(self._on_started)
        worker.signals.progress.connect(self._on_progress)
        worker.signals.finished.connect(self._on_finished)
        return workers.start(worker, self.pools[pool])

    def _later(self, fn) -> None:
        QTimer.singleShot(0, fn)

    def _start_timer(self) -> None:
        self._timer.start()

    def _stop_timer(self) -> None:
        self._timer.stop()

    def _wait_pools(self, wait_ms: int) -> bool:
        return all(pool.waitForDone(wait_ms) for pool in self.pools.values())
