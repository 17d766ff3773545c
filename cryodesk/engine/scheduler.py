"""The engine's one scheduling logic, Qt-free: queue, dependency order, cancel, heartbeats, tasks.

Both engines run jobs through this class, so they cannot drift apart:

* :class:`cryodesk.engine.Engine` (the GUI's, a ``QObject``): pool threads are
  ``QThreadPool`` workers, outcomes come back as queued Qt signals;
* :class:`cryodesk.engine.headless.HeadlessEngine` (``cryodesk job run`` /
  ``worker run``): plain thread pools and a small event loop, no Qt loaded.

A subclass supplies only the mechanics — how a body is started on a pool
(:meth:`Scheduler._launch`), how a call is deferred to the engine's thread
(:meth:`Scheduler._later`), the poll timer and the signal objects (anything
with ``emit``) — and calls :meth:`Scheduler._on_started`,
:meth:`Scheduler._on_progress` and :meth:`Scheduler._on_finished` in the
engine's thread.  The bodies are the same (:mod:`cryodesk.engine.bodies`), and
so are the status transitions, owners, heartbeats and kill requests
(:mod:`cryodesk.core.lifecycle`).
"""

from __future__ import annotations

import itertools
import logging
import os
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from ..base.errors import CryodeskError
from ..core import lifecycle, registry
from ..core.jobs import get_jobs, refresh
from ..core.projects import get_project
from .bodies import job_body, task_body

log = logging.getLogger("cryodesk.engine")
_task_ids = itertools.count(1)


def ensure_job_types(names: Iterable[str] | None = None) -> None:
    """Register the built-in job types (:mod:`cryodesk.jobs`) — all of them, or only those ``names``.

    Importing every type loads the numeric kernels' modules (numpy, the cache, about a second):
    the app does it on a worker after its window shows; ``cryodesk job run`` loads only the
    types of the jobs it runs.
    """
    import importlib

    jobs = importlib.import_module("cryodesk.jobs")
    if names is None:
        jobs.load_all()
    else:
        jobs.load(names)


def default_cpu_threads() -> int:
    """``max(1, cores - 1)``: one core stays free for the GUI thread (or the headless loop)."""
    return max(1, (os.cpu_count() or 2) - 1)


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
    worker: object  # the handle _launch returned (has .cancel_event)
    on_progress: Callable | None
    on_finished: Callable | None


class Scheduler:
    """Jobs and tasks of one engine: what runs, what waits and why, and what ends unrun.

    Subclasses call :meth:`_init_scheduler` from their ``__init__``, set
    :attr:`pools` (``{"cpu": ..., "io": ...}``) and the signal attributes
    ``job_started, job_progress, job_waiting, job_finished, job_handed_off,
    task_started, task_progress, task_finished, idle`` (see
    :class:`cryodesk.engine.Engine` for their arguments), and implement the
    hooks below.
    """

    pools: dict

    def _init_scheduler(self) -> None:
        self.owner = lifecycle.new_owner()
        self._pending: dict[int, _Pending] = {}
        self._running: dict[int, tuple[_Pending, object]] = {}
        self._tasks: dict[str, _Task] = {}
        self._started = False
        self._busy = False
        self._last_beat = 0.0
        self._unknown_types: set[int] = set()  # queued jobs of a type this process cannot run (said once)

    # -- hooks -------------------------------------------------------------------------
    def _launch(self, key, body, pool: str, name: str, announces_start: bool):
        """Start ``body`` on pool ``pool``; return a handle with a ``cancel_event``."""
        raise NotImplementedError

    def _later(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` from the engine's loop, after the current call returns."""
        raise NotImplementedError

    def _start_timer(self) -> None:
        raise NotImplementedError

    def _stop_timer(self) -> None:
        raise NotImplementedError

    def _wait_pools(self, wait_ms: int) -> bool:
        """Wait until the pools' threads are done (``wait_ms < 0``: as long as it takes)."""
        raise NotImplementedError

    def _job_types(self, jobs) -> None:
        """Make sure the types of ``jobs`` are registered (default: every built-in type)."""
        ensure_job_types()

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
        self._start_timer()
        return recovered

    def shutdown(self, wait_ms: int = -1) -> bool:
        """Cancel everything, end this engine's queued jobs as killed, wait for the pools.

        Returns False if threads were still running after ``wait_ms``.
        """
        self._stop_timer()
        for pend in list(self._pending.values()):
            lifecycle.end_unrun(pend.job_id, "killed", "cancelled: cryodesk was closed before it ran")
        self._pending.clear()
        self.cancel_all()
        done = self._wait_pools(wait_ms)
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
        project = get_project(project)
        self.start()  # first: it may mark jobs of a dead process killed
        jobs = get_jobs(project, jobs)
        self._job_types(jobs)
        plan = lifecycle.plan_queue(project, jobs, self.owner)
        queued = lifecycle.mark_queued(plan.jobs, self.owner)
        for job in queued:
            self._add_pending(project.uid, job)
        if len(queued) < len(plan.jobs):  # another process queued or started some since they were planned
            taken = {j.id for j in queued}
            for job in refresh([j for j in plan.jobs if j.id not in taken]):
                plan.refused.append((job.uid, f"{job.uid}: it is already {job.status} (another process took it)"))
            plan.jobs = queued
        self._mark_busy()
        self._later(self._schedule)  # callers connect signals after queue() returns
        return plan

    def adopt_queued(self, project=None, lane: str | None = None) -> list:
        """Claim jobs queued without an owner (``cryodesk job queue``; of worker lane ``lane`` if given)
        and run them here."""
        ensure_job_types()
        self.start()
        taken = [job for job in lifecycle.claimable(project, lane) if self._knows_type(job)
                 and lifecycle.claim(job, self.owner)]
        for job in taken:
            self._add_pending(job.project.uid, job)
        if taken:
            self._mark_busy()
            self._later(self._schedule)
        return taken

    def _knows_type(self, job) -> bool:
        """Whether this process can run ``job``'s type; a type it does not know (a newer cryodesk's, a
        plugin not installed here) is left queued for a worker that does, and said once."""
        try:
            registry.get(job.type)
            return True
        except CryodeskError as exc:
            if job.id not in self._unknown_types:
                self._unknown_types.add(job.id)
                log.warning("%s %s left queued: %s", job.project.uid, job.uid, exc)
            return False

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
        self._later(self._schedule)  # its queued children end too
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
        self._later(self._check_idle)
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
        task = _Task(name, None, on_progress, on_finished)
        self._tasks[task_id] = task
        self._mark_busy()
        task.worker = self._launch(("task", task_id), task_body(fn), pool, f"task {task_id} {name}", False)
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
                    worker = self._launch(("job", job_id), job_body(pend.project_uid, pend.job_uid), pend.resource,
                                          f"job {pend.project_uid} {pend.job_uid}", True)
                    self._running[job_id] = (pend, worker)
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
