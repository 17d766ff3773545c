"""The job engine: queue, dependency order, two thread pools, progress, cancel.

One :class:`Engine` per process (the GUI's, or the one a ``cryodesk job run`` /
``cryodesk worker run`` command drives headless).  It lives in the thread that
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

import itertools
import logging
import os
import time
from dataclasses import dataclass
from typing import Callable

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal

from ..core import lifecycle, registry
from ..core.jobs import get_jobs
from ..core.projects import get_project
from . import workers
from .bodies import job_body, task_body
from .workers import Worker

log = logging.getLogger("cryodesk.engine")
_task_ids = itertools.count(1)


def ensure_job_types() -> None:
    """Register the built-in job types (import :mod:`cryodesk.jobs`) if nobody has yet.

    Importing them loads the numeric kernels (numba), about a second: the app does it on a
    worker after its window shows; an engine does it before it queues anything.
    """
    import importlib

    importlib.import_module("cryodesk.jobs")


@dataclass
class _Pending:
    project_uid: str
    job_uid: str
    job_id: int
    resource: str
    waiting: str | None = None  # why it has not started yet (shown by UIs)


@dataclass
class _Task:
    name: str
    worker: Worker
    on_progress: Callable | None
    on_finished: Callable | None


class Engine(QObject):
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
        super().__init__(parent)
        self.owner = lifecycle.new_owner()
        self.pools = {"cpu": QThreadPool(self), "io": QThreadPool(self)}
        for pool in self.pools.values():
            workers.register_pool(pool)  # so tests and shutdown can ask whether anything still runs
        self.pools["cpu"].setMaxThreadCount(cpu_threads or max(1, (os.cpu_count() or 2) - 1))
        self.pools["io"].setMaxThreadCount(io_threads)
        self._pending: dict[int, _Pending] = {}
        self._running: dict[int, tuple[_Pending, Worker]] = {}
        self._tasks: dict[str, _Task] = {}
        # a finished worker is owned by the worker registry until our finished slot has run
        # (cryodesk.engine.workers), so dropping it from these dicts there is safe
        self._started = False
        self._busy = False
        self._last_beat = 0.0
        self._timer = QTimer(self)
        self._timer.setInterval(poll_interval_ms)
        self._timer.timeout.connect(self.poll)

    # -- lifecycle -----------------------------------------------------------------
    def start(self) -> list:
        """Recover jobs a crashed process left active (marked killed) and start polling."""
        if self._started:
            return []
        lifecycle.engine_alive(self.owner)
        self._started = True
        recovered = lifecycle.recover_interrupted()
        for job in recovered:
            log.warning("%s %s: %s", job.project.uid, job.uid, job.error)
        self._timer.start()
        return recovered

    def shutdown(self, wait_ms: int = -1) -> bool:
        """Cancel everything, end this engine's queued jobs as killed, wait for the pools.

        Returns False if threads were still running after ``wait_ms``.
        """
        self._timer.stop()
        for pend in list(self._pending.values()):
            lifecycle.end_unrun(pend.job_id, "killed", "cancelled: cryodesk was closed before it ran")
        self._pending.clear()
        self.cancel_all()
        done = all(pool.waitForDone(wait_ms) for pool in self.pools.values())
        lifecycle.engine_alive(self.owner, False)
        self._started = False
        return done

    # -- jobs --------------------------------------------------------------------------
    def queue(self, project, jobs) -> lifecycle.QueuePlan:
        """Queue ``jobs`` (uids or Job rows) of ``project``; they start in dependency order.

        Returns the :class:`~cryodesk.core.lifecycle.QueuePlan`: ``plan.jobs``
        were queued, ``plan.refused`` lists ``(uid, message)`` for the others
        (a parent cleared or failed is named in the message).
        """
        ensure_job_types()
        self.start()
        project = get_project(project)
        jobs = get_jobs(project, jobs)
        plan = lifecycle.plan_queue(project, jobs, self.owner)
        for job in lifecycle.mark_queued(plan.jobs, self.owner):
            self._add_pending(project.uid, job)
        self._mark_busy()
        QTimer.singleShot(0, self._schedule)  # callers connect signals after queue() returns
        return plan

    def adopt_queued(self, project=None, lane: str | None = None) -> list:
        """Claim jobs queued without an owner (``cryodesk job queue``; of worker lane ``lane`` if given)
        and run them here."""
        ensure_job_types()
        self.start()
        taken = [job for job in lifecycle.claimable(project, lane) if lifecycle.claim(job, self.owner)]
        for job in taken:
            self._add_pending(job.project.uid, job)
        if taken:
            self._mark_busy()
            QTimer.singleShot(0, self._schedule)
        return taken

    def cancel(self, project, job) -> bool:
        """Cancel a job of this engine: running → killed (partial output handled by its type);
        queued → killed before it ran.  False if this engine does not have it."""
        job = get_jobs(project, [job])[0]
        if job.id in self._running:
            self._running[job.id][1].cancel_event.set()
            return True
        pend = self._pending.pop(job.id, None)
        if pend is None:
            return False
        lifecycle.end_unrun(job, "killed", "cancelled by the user before it ran")
        self.job_finished.emit(pend.project_uid, pend.job_uid, "killed")
        QTimer.singleShot(0, self._schedule)  # its queued children end too
        return True

    def kill(self, project, job) -> str:
        """Stop a job wherever it runs: ``"cancelled"`` (this engine had it), else what
        :func:`cryodesk.core.lifecycle.request_kill` did (``"killed"`` / ``"requested"``)."""
        if self.cancel(project, job):
            return "cancelled"
        from ..core import lanes

        return lanes.kill(project, job)  # on a SLURM lane this also calls its cancel command

    def hand_off_queued(self) -> list:
        """Give this engine's queued jobs that have not started to whoever claims them next (a
        ``cryodesk worker run``); returns the Job rows handed off.  Running jobs stay here."""
        handed = lifecycle.hand_off(list(self._pending), self.owner)
        for job in handed:
            pend = self._pending.pop(job.id, None)
            if pend is not None:
                self.job_handed_off.emit(pend.project_uid, pend.job_uid)
        QTimer.singleShot(0, self._check_idle)
        return handed

    def cancel_all(self) -> None:
        """Cancel every running job and task (queued jobs of this engine follow as killed)."""
        for pend in list(self._pending.values()):
            self.cancel(pend.project_uid, pend.job_uid)
        for _, worker in self._running.values():
            worker.cancel_event.set()
        for task in self._tasks.values():
            task.worker.cancel_event.set()

    def jobs(self) -> dict[str, list[tuple[str, str]]]:
        """``{"running": [(project_uid, job_uid)...], "queued": [...]}`` of this engine."""
        return {"running": [(p.project_uid, p.job_uid) for p, _ in self._running.values()],
                "queued": [(p.project_uid, p.job_uid) for p in self._pending.values()]}

    def waiting_reason(self, project_uid: str, job_uid: str) -> str | None:
        for p in self._pending.values():
            if (p.project_uid, p.job_uid) == (project_uid, job_uid):
                return p.waiting
        return None

    @property
    def is_idle(self) -> bool:
        return not (self._pending or self._running or self._tasks)

    # -- generic tasks ---------------------------------------------------------------
    def submit_task(self, name: str, fn: Callable, pool: str = "io", *,
                    on_progress: Callable[[float, str], None] | None = None,
                    on_finished: Callable[[str, object], None] | None = None) -> str:
        """Run ``fn(progress, cancel_event)`` in a pool thread; returns the task id.

        ``fn`` is any Qt-free long operation (a cleanup plan's execution, a size
        refresh, a cache copy).  It runs inside ``db.connection_context()``, so
        it may use the database.  It should call ``progress(fraction, message)``
        (``0 <= fraction <= 1``; thread-safe, throttled to ~20 Hz) and check
        ``cancel_event.is_set()`` (a :class:`threading.Event`) often, raising
        :class:`~cryodesk.base.errors.JobCancelled` to stop early.

        Outcome, through ``task_finished(task_id, status, payload)`` and the
        optional ``on_finished(status, payload)`` callback (both in the
        engine's thread): ``"completed"`` with ``fn``'s return value,
        ``"cancelled"`` (``JobCancelled`` raised) with ``None``, or
        ``"failed"`` with the error message (a ``CryodeskError``'s text, or
        ``"TypeError: ..."`` for a bug, whose traceback goes to the log).
        ``pool`` is ``"io"`` (default: disk-bound work) or ``"cpu"``.
        Cancel with :meth:`cancel_task`.
        """
        if pool not in self.pools:
            raise ValueError(f"pool must be 'cpu' or 'io', got {pool!r}")
        task_id = f"T{next(_task_ids)}"
        worker = Worker(("task", task_id), task_body(fn), name=f"task {task_id} {name}")
        self._tasks[task_id] = _Task(name, worker, on_progress, on_finished)
        self._connect(worker)
        self._mark_busy()
        workers.start(worker, self.pools[pool])
        return task_id

    def cancel_task(self, task_id: str) -> bool:
        task = self._tasks.get(task_id)
        if task is None:
            return False
        task.worker.cancel_event.set()
        return True

    # -- internals -----------------------------------------------------------------------
    def _add_pending(self, project_uid: str, job) -> None:
        resource = registry.get(job.type).resource
        self._pending[job.id] = _Pending(project_uid, job.uid, job.id, resource if resource in self.pools else "cpu")

    def _connect(self, worker: Worker) -> None:
        # bound methods of this QObject: Qt delivers them queued, in the engine's thread
        worker.signals.started.connect(self._on_started)
        worker.signals.progress.connect(self._on_progress)
        worker.signals.finished.connect(self._on_finished)

    def poll(self) -> None:
        """Timer tick: pick up cross-process kill requests and parents finished elsewhere; heartbeats."""
        now = time.monotonic()
        if (self._running or self._pending) and now - self._last_beat >= lifecycle.HEARTBEAT_INTERVAL:
            self._last_beat = now
            lifecycle.heartbeat(list(self._running) + list(self._pending), self.owner)
        if self._running:
            for job_id in lifecycle.kill_requested(self._running):
                self._running[job_id][1].cancel_event.set()
        if self._pending:
            self._schedule()

    def _schedule(self, after: int | None = None) -> None:
        """Start ready jobs, end those that never will; ``after``: only the children of that job."""
        candidates = None if after is None else self._pending_children([after])
        while candidates is None or candidates:
            ids = sorted(self._pending if candidates is None else candidates & self._pending.keys())
            ended: list[int] = []  # a job ended unrun may decide its queued children
            status = lifecycle.status_of(ids)
            mine = sorted(lifecycle.owned_queued(ids, self.owner))
            verdicts = lifecycle.readiness_many(mine)
            for job_id in ids:
                pend = self._pending.get(job_id)
                if pend is None:  # a slot of a signal emitted below cancelled it
                    continue
                if job_id not in verdicts:
                    # killed from another process, deleted, or taken over: no longer ours to run
                    del self._pending[job_id]
                    self.job_finished.emit(pend.project_uid, pend.job_uid, status.get(job_id, "deleted"))
                    ended.append(job_id)
                    continue
                state, why = verdicts[job_id]
                if state == "wait":
                    if why != pend.waiting:
                        pend.waiting = why
                        self.job_waiting.emit(pend.project_uid, pend.job_uid, why)
                    continue
                del self._pending[job_id]
                if state == "ready":
                    worker = Worker(("job", job_id), job_body(pend.project_uid, pend.job_uid), announces_start=True,
                                    name=f"job {pend.project_uid} {pend.job_uid}")
                    self._running[job_id] = (pend, worker)
                    self._connect(worker)
                    workers.start(worker, self.pools[pend.resource])
                else:
                    lifecycle.end_unrun(job_id, state, why)
                    self.job_finished.emit(pend.project_uid, pend.job_uid, state)
                    ended.append(job_id)
            candidates = self._pending_children(ended)
        self._check_idle()

    def _pending_children(self, parent_ids: list[int]) -> set[int]:
        if not parent_ids or not self._pending:
            return set()
        return lifecycle.children_of(parent_ids) & self._pending.keys()

    def _mark_busy(self) -> None:
        self._busy = True

    def _check_idle(self) -> None:
        if self._busy and self.is_idle:
            self._busy = False
            self.idle.emit()

    def _on_started(self, key) -> None:
        kind, ident = key
        if kind == "job" and ident in self._running:
            pend = self._running[ident][0]
            self.job_started.emit(pend.project_uid, pend.job_uid)
        elif kind == "task" and ident in self._tasks:
            self.task_started.emit(ident, self._tasks[ident].name)

    def _on_progress(self, key, fraction: float, message: str) -> None:
        kind, ident = key
        if kind == "job" and ident in self._running:
            pend = self._running[ident][0]
            self.job_progress.emit(pend.project_uid, pend.job_uid, fraction, message)
        elif kind == "task" and ident in self._tasks:
            task = self._tasks[ident]
            if task.on_progress is not None:
                task.on_progress(fraction, message)
            self.task_progress.emit(ident, fraction, message)

    def _on_finished(self, key, status: str, payload) -> None:
        kind, ident = key
        if kind == "job":
            entry = self._running.pop(ident, None)
            if entry is not None:
                self.job_finished.emit(entry[0].project_uid, entry[0].job_uid, status)
            self._schedule(after=ident)  # children waiting for it may start now
        else:
            task = self._tasks.pop(ident, None)
            if task is not None:
                if task.on_finished is not None:
                    task.on_finished(status, payload)
                self.task_finished.emit(ident, status, payload)
            self._check_idle()
