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

    def queue(self, project_uid: str, uids: list[str]):
        """Queue jobs in the engine (they run in dependency order); returns the QueuePlan."""
        plan = self.engine.queue(project_uid, uids)
        for job in plan.jobs:
            self.panel.job_event(project_uid, job.uid, "queued", 0.0)
        self.activity.emit()
        return plan

    def run_task(self, name: str, fn, task, on_done, on_error=None) -> str:
        """Run ``fn(progress, cancel_event)`` as an engine task; ``on_done(result)`` in the GUI thread.

        ``task`` is the running-jobs panel's row (its ``report`` gets the progress);
        on failure or cancellation the row goes and ``on_error(message)`` is called.
        Returns the engine's task id.
        """
        def finished(status, payload):
            if status == "completed":
                on_done(payload)
                return
            self.panel.finish_task(task)
            if on_error is not None:
                on_error(f"{name} {status}: {payload}")

        return self.engine.submit_task(name, fn, on_progress=task.report, on_finished=finished)

    def shutdown(self, wait_ms: int = 10000) -> bool:
        """Stop the engine (its queued jobs end killed) and wait for every worker of the app."""
        done = self.engine.shutdown(wait_ms)
        return workers.wait_all(wait_ms) and done
