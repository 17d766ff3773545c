"""Glue between the job engine (:class:`cryodesk.engine.Engine`) and the window: queue, tasks, progress rows.

What the engine's jobs change in the database (status, outputs, sizes)
reaches the tree through change events like every other edit; ``activity``
only tells the window's change watcher to look now rather than at its next tick.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

from ..engine import Engine, workers


class EngineBridge(QObject):
    """Owns the window's :class:`~cryodesk.engine.Engine` and reports its jobs into the running-jobs panel."""

    activity = Signal()  # a job was queued, started or finished: its changes are in the log now

    def __init__(self, panel, parent=None) -> None:
        super().__init__(parent)
        self.panel = panel
        self.engine = e = Engine(self)
        e.job_started.connect(lambda p, j: (panel.job_event(p, j, "running", 0.0), self.activity.emit()))
        e.job_progress.connect(lambda p, j, f, m: panel.job_event(p, j, "running", f, m))
        e.job_waiting.connect(lambda p, j, why: panel.job_event(p, j, "waiting", None, why))
        e.job_finished.connect(lambda p, j, s: (panel.job_event(p, j, s), self.activity.emit()))
        e.job_handed_off.connect(lambda p, j: panel.job_event(p, j, "queued", None, "handed to a background worker",
                                                              where="background worker"))
        from ..engine.lane_tracker import LaneTracker

        self.lanes = LaneTracker(self)  # follows jobs on SLURM lanes (re-attaches after a restart)
        self.lanes.synced.connect(lambda _report: self.activity.emit())
        self.lanes.start()

    def send_to_lane(self, project_uid: str, uids: list[str], lane: str, variables: dict, on_done, on_error):
        """Send jobs to ``lane`` on a pool thread (a submission may go through ssh); returns the worker."""
        from ..core import lanes

        return workers.submit(lanes.send, project_uid, uids, lane, variables, on_done=on_done, on_error=on_error,
                              context=self)

    def queue(self, project_uid: str, uids: list[str]):
        """Queue jobs in the engine (they run in dependency order); returns the QueuePlan."""
        plan = self.engine.queue(project_uid, uids)
        for job in plan.jobs:
            self.panel.job_event(project_uid, job.uid, "queued", 0.0, where="here")
            self.panel.set_title(project_uid, job.uid, job.title)
        self.activity.emit()
        return plan

    def run_task(self, name: str, fn, task, on_done, on_error=None) -> str:
        """Run ``fn(progress, cancel_event)`` as an engine task; ``on_done(result)`` in the GUI thread.

        ``task`` is the running-jobs panel's row (its ``report`` gets the progress);
        on failure or cancellation the row says so and ``on_error(message)`` is called.
        Returns the engine's task id.
        """
        def finished(status, payload):
            if status == "completed":
                on_done(payload)
                return
            self.panel.finish_task(task, status, str(payload or ""))
            if on_error is not None:
                on_error(f"{name} {status}: {payload}")

        return self.engine.submit_task(name, fn, on_progress=task.report, on_finished=finished)

    def kill(self, project_uid: str, job_uid: str, on_error=None) -> str:
        """Kill a job wherever it runs (this engine, a worker, an earlier session in the background, a lane).

        Returns ``"cancelled"`` (ours: it ends killed at its next cancellation
        point), ``"killed"`` (it had not started), ``"requested"`` (its
        process picks the request up within a second or two) or, for a job on
        a SLURM lane, ``"cancelling"``: the lane's cancel command (``scancel``,
        perhaps through ``ssh``) runs on a pool thread so the window never
        waits for it; the job's row says what came of it, and a failure goes
        to ``on_error(message)``.
        """
        from ..core import lanes

        if self.engine.cancel(project_uid, job_uid):
            outcome = "cancelled"
        elif lanes.on_slurm_lane(project_uid, job_uid):
            self.panel.job_event(project_uid, job_uid, self.panel.status_of(project_uid, job_uid) or "running",
                                 None, "kill requested: cancelling it on its lane…")

            def failed(exc) -> None:
                self.activity.emit()
                if on_error is not None:
                    on_error(str(exc))

            workers.submit(lanes.kill, project_uid, job_uid, context=self, on_error=failed,
                           on_done=lambda outcome: self._killed(project_uid, job_uid, outcome))
            return "cancelling"
        else:
            outcome = self.engine.kill(project_uid, job_uid)
        self._killed(project_uid, job_uid, outcome)
        return outcome

    def _killed(self, project_uid: str, job_uid: str, outcome: str) -> None:
        if outcome == "requested":
            self.panel.job_event(project_uid, job_uid, self.panel.status_of(project_uid, job_uid) or "running",
                                 None, "kill requested; its process stops it at its next cancellation point")
        elif outcome == "killed":
            self.panel.job_event(project_uid, job_uid, "killed", None, "killed before it ran")
        self.activity.emit()

    def queue_for_worker(self, project_uid: str, uids: list[str]) -> dict:
        """Queue jobs for a background worker (as ``cryodesk job queue``) and start one, detached:
        they keep running when the app quits.  Returns ``{"queued", "refused", "worker_pid"}``."""
        from ..core import lifecycle
        from ..core.jobs import get_jobs
        from ..engine import detach

        plan = lifecycle.plan_queue(project_uid, get_jobs(project_uid, uids))
        queued = lifecycle.mark_queued(plan.jobs)
        pid = None
        if queued:
            pid, _log = detach.spawn_worker(project_uid=project_uid)
            for job in queued:
                self.panel.job_event(project_uid, job.uid, "queued", 0.0, "queued for a background worker",
                                     where=f"background worker (process {pid})")
                self.panel.set_title(project_uid, job.uid, job.title)
        self.activity.emit()
        return {"queued": [j.uid for j in queued], "refused": [m for _, m in plan.refused], "worker_pid": pid}

    def busy_jobs(self) -> dict[str, list[tuple[str, str]]]:
        """This engine's running and queued jobs (what quitting would affect)."""
        return self.engine.jobs()

    def keep_running_in_background(self) -> dict:
        """Hand this engine's queued jobs to a detached worker; the running ones stay here.

        Returns ``{"handed": [uids], "worker_pid": pid or None, "log": path or None}``.
        """
        from ..engine import detach

        handed = self.engine.hand_off_queued()
        pid = log = None
        if handed:
            pid, log = detach.spawn_worker()
        return {"handed": [f"{j.project.uid} {j.uid}" for j in handed], "worker_pid": pid, "log": log}

    def shutdown(self, wait_ms: int = 10000) -> bool:
        """Stop the engine (its queued jobs end killed) and wait for every worker of the app."""
        self.lanes.stop()
        done = self.engine.shutdown(wait_ms)
        return workers.wait_all(wait_ms) and done
