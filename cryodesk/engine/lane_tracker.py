"""Follow the SLURM lanes from a running app: :func:`cryodesk.core.lanes.sync` (and the live-session restores'
:func:`cryodesk.core.sessions.lane_run.sync`) on a pool thread, on a timer.

While any job on a SLURM lane is active, every ``interval_ms`` one sync runs
(never two at once): it submits jobs whose inputs are ready and moves the
others along with the scheduler's states.  What it changes in the database
reaches the windows through change events like every other edit.  An app that
starts again simply starts following again: that is its re-attach.
"""

from __future__ import annotations

import logging

from PySide6.QtCore import QObject, QTimer, Signal

from ..core import lanes
from ..core.sessions import lane_run
from . import workers

log = logging.getLogger("cryodesk.lanes")


class LaneTracker(QObject):
    synced = Signal(object)  # the SyncReport of a pass that did something or met an error

    def __init__(self, parent: QObject | None = None, interval_ms: int = 2000):
        super().__init__(parent)
        self._busy = False
        self.last_errors: list[str] = []
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.tick)

    def start(self) -> None:
        self._timer.start()
        QTimer.singleShot(0, self.tick)

    def stop(self) -> None:
        self._timer.stop()

    def tick(self) -> None:
        if self._busy:
            return
        self._busy = True
        workers.submit(self._pass, on_done=self._done, on_error=self._failed, context=self)

    @staticmethod
    def _pass():
        if not lanes.lane_jobs_active() and not lane_run.active_count():
            return None
        return lane_run.sync(None, lanes.sync())  # jobs, then live-session restores on the lanes

    def _done(self, report) -> None:
        self._busy = False
        if report is None:
            return
        self.last_errors = list(report.errors)
        if report.changed or report.errors or report.submitted:
            self.synced.emit(report)

    def _failed(self, exc) -> None:
        self._busy = False
        self.last_errors = [str(exc)]
        log.warning("lane sync failed: %s", exc)
