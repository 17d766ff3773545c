"""Glue between the job engine (``cryodesk.engine.Engine``) and the window: queue, tasks, progress rows.

Without the engine, tasks still run on the shared thread pool (see
:mod:`cryodesk.ui.workers`) and Run / Queue stay disabled.
"""

from __future__ import annotations

import threading

from PySide6.QtCore import QObject, QTimer, Signal

from . import workers
from .running_panel import engine_available


class EngineBridge(QObject):
    """Owns the window's :class:`~cryodesk.engine.Engine` (if installed) and reports into the panel."""

    jobs_changed = Signal()  # a job started or finished: the tree needs a reload

    def __init__(self, panel, parent=None) -> None:
        super().__init__(parent)
        self.panel = panel
        self.engine = None
        if engine_available():
            from ..engine import Engine

            self.engine = Engine(self)
            e = self.engine
            e.job_started.connect(lambda p, j: (panel.job_event(p, j, "running", 0.0), self._soon()))
            e.job_progress.connect(lambda p, j, f, m: panel.job_event(p, j, "running", f, m))
            e.job_waiting.connect(lambda p, j, why: panel.job_event(p, j, "waiting", None, why))
            e.job_finished.connect(lambda p, j, s: (panel.job_event(p, j, s), self._soon()))
        # many jobs finishing together cause one reload, not one each
        self._reload = QTimer(self)
        self._reload.setSingleShot(True)
        self._reload.setInterval(150)
        self._reload.timeout.connect(self.jobs_changed)

    @property
    def available(self) -> bool:
        return self.engine is not None

    def _soon(self) -> None:
        self._reload.start()

    def queue(self, project_uid: str, uids: list[str]):
        """Queue jobs in the engine (they run in dependency order); returns the QueuePlan."""
        plan = self.engine.queue(project_uid, uids)
        for job in plan.jobs:
            self.panel.job_event(project_uid, job.uid, "queued", 0.0)
        self._soon()
        return plan

    def run_task(self, name: str, fn, task, on_done, on_error=None) -> None:
        """Run ``fn(progress, cancel_event)`` off the GUI thread; ``on_done(result)`` on the GUI thread."""
        def failed(message):
            self.panel.finish_task(task)
            if on_error is not None:
                on_error(message)

        if self.engine is not None:
            def finished(status, payload):
                if status == "completed":
                    on_done(payload)
                else:
                    failed(f"{name} {status}: {payload}")

            self.engine.submit_task(name, fn, on_progress=task.report, on_finished=finished)
        else:
            cancel = threading.Event()
            workers.submit(fn, task.report, cancel, on_done=on_done, on_error=lambda exc: failed(str(exc)))

    def shutdown(self) -> None:
        self._reload.stop()
        if self.engine is not None:
            self.engine.shutdown(10000)
        workers.wait_all()
