"""Follow the database's change log and tell the window what changed (polled off the GUI thread).

Every core service records what it changed in the ``change`` table, in the
transaction of the change, whichever process made it: this window, the CLI, a
``cryodesk worker run`` or another window (:mod:`cryodesk.core.events`).
:class:`QtChangeWatcher` reads that log every :data:`POLL_MS` with a
:class:`~cryodesk.core.events.Follower` on a worker (never two polls at once)
and emits the merged :class:`~cryodesk.core.events.Batch` in the GUI thread.
After an edit made here, :meth:`~QtChangeWatcher.poke` polls at once, so the
window's own edits come back through the same path as everybody else's,
without waiting for the next tick.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, QTimer, Signal

from ..core import events
from ..engine import workers

#: how often the change log is read (ms): changes made elsewhere show within about this
POLL_MS = 500


class QtChangeWatcher(QObject):
    """Polls the change log; ``changed(batch)`` fires in the GUI thread for each non-empty batch.

    Parameters
    ----------
    interval_ms : int
        Time between polls while :meth:`start` ed.
    """

    changed = Signal(object)  # events.Batch
    failed = Signal(str)

    def __init__(self, interval_ms: int = POLL_MS, parent=None) -> None:
        super().__init__(parent)
        # The cursor is taken now, in this thread, before the window loads anything: what is
        # committed now is what the window will show; only later commits are news.
        # (Two small indexed queries; every poll after them runs on a worker.)
        self.follower = events.Follower()
        self._timer = QTimer(self)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self.poll)
        self._worker = None
        self._again = False  # a poke arrived while a poll was running: poll once more after it
        self.polls = 0  # finished polls (tests wait on it)

    # -- control -----------------------------------------------------------------
    def start(self) -> None:
        self._timer.start()

    def stop(self) -> None:
        """Stop polling; what a poll already running finds is dropped."""
        self._timer.stop()
        self._again = False

    @property
    def active(self) -> bool:
        return self._timer.isActive()

    @property
    def busy(self) -> bool:
        return self._worker is not None

    def poke(self) -> None:
        """Poll now (after an edit made in this window), or right after the poll that runs."""
        if not self._timer.isActive():
            return
        if self._worker is not None:
            self._again = True
        else:
            self.poll()

    # -- polling -------------------------------------------------------------------
    def poll(self) -> None:
        """Start one poll on a worker unless one is running (then the next starts after it)."""
        if self._worker is not None:
            self._again = True
            return
        self._worker = workers.submit(self.follower.poll, on_done=self._polled, on_error=self._poll_failed,
                                      context=self)

    def _polled(self, batch) -> None:
        self._worker = None
        self.polls += 1
        if batch and self._timer.isActive():  # a window closing wants no more updates
            self.changed.emit(batch)
        self._next()

    def _poll_failed(self, exc) -> None:
        # a locked or vanished database: say so and keep following (the next poll may work)
        self._worker = None
        self.polls += 1
        self.failed.emit(str(exc))
        self._next()

    def _next(self) -> None:
        if self._again and self._timer.isActive():
            self._again = False
            self.poll()
