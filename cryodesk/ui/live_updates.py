"""Apply change events to the window: patch the jobs that changed, reload only when the tree's shape did.

The policy, for the project the window shows (:class:`LiveScope`):

* ``updated`` / ``flags`` / ``sizes`` naming jobs of the shown scope: re-read
  just those jobs (:func:`cryodesk.core.layout.job_rows`, on a worker), write
  them into the snapshot's arrays in place and repaint (overview, cards,
  inspector, status bar, sidebar);
* ``added`` / ``links``, ``removed`` of a shown job, a job list of "many"
  (None) or an overflowing batch: reload the scope, keeping view and selection;
* any change of job counts or sizes, ``project`` or ``projects``: refresh the
  project browser's figures (one summary query, on a worker).

One re-read runs at a time; events arriving meanwhile are merged into the next.
While a load is running, batches are held and applied to the snapshot it
brings (the load may have read the database before they committed).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from ..core import layout, projects
from ..engine import workers

#: kinds whose job lists can be patched in place
PATCH_KINDS = ("updated", "flags", "sizes")
#: kinds that change which jobs or edges a scope has
SHAPE_KINDS = ("added", "links")


def _reread(project_uid: str | None, numbers: list[int], summaries: bool):
    """Worker body: the current rows of ``numbers`` and (optionally) every project's summary."""
    rows = layout.job_rows(project_uid, numbers) if project_uid is not None and numbers else None
    return rows, (projects.project_summaries() if summaries else None)


def _shown(snap, numbers) -> set[int]:
    """The job ``numbers`` that are in ``snap``."""
    wanted = np.fromiter(numbers, dtype=np.int64)
    return set(wanted[np.isin(wanted, snap.numbers)].tolist())


class LiveScope(QObject):
    """Turns :class:`~cryodesk.core.events.Batch` es into patches and reloads of ``win`` (the main window).

    ``patched(indices)`` fires after jobs were patched in place; ``browser_refreshed``
    after the project browser got new figures.
    """

    patched = Signal(object)
    browser_refreshed = Signal()

    def __init__(self, win) -> None:
        super().__init__(win)
        self.win = win
        self._numbers: set[int] = set()  # jobs of the shown snapshot to re-read
        self._browser = False  # the browser's figures are stale
        self._held: list = []  # batches that arrived while a load was running
        self._worker = None  # the re-read in flight
        self.patches = 0  # patches applied (tests count them)

    # -- deciding ----------------------------------------------------------------------
    def apply(self, batch) -> None:
        """Handle one batch from the change watcher (GUI thread)."""
        win = self.win
        if win.loading:
            self._held.append(batch)
            return
        snap = win.view.scene().snap
        if batch.overflow:  # fell behind the log: nothing can be trusted but a fresh read
            self._browser = True
            return self._reload()
        reload = False
        for pid, kinds in batch.projects.items():
            if pid is None or set(kinds) - {"flags"}:
                self._browser = True  # counts or sizes of some project (or the project list) changed
            if snap is None or pid is None or pid != snap.project_id:
                continue
            for kind, numbers in kinds.items():
                if kind in SHAPE_KINDS:
                    reload = True
                elif kind == "removed":
                    # a job of another workspace going away leaves this tree as it is
                    reload |= numbers is None or bool(_shown(snap, numbers))
                elif kind in PATCH_KINDS:
                    if numbers is None:
                        reload = True
                    else:  # jobs of other workspaces are not on screen: not read
                        self._numbers |= _shown(snap, numbers)
        if reload:
            return self._reload()
        self._kick()

    def loaded(self) -> None:
        """A load finished (or failed): what arrived meanwhile is applied to what it shows."""
        held, self._held = self._held, []
        self._numbers.clear()  # the load read every job
        for batch in held:
            self.apply(batch)
        self._kick()

    # -- acting -------------------------------------------------------------------------------
    def _reload(self) -> None:
        self._numbers.clear()
        self.win.reload_scope()
        self._kick()  # the browser's figures, meanwhile

    def _kick(self) -> None:
        if self._worker is not None or not (self._numbers or self._browser):
            return
        win = self.win
        snap = win.view.scene().snap
        numbers = sorted(self._numbers) if snap is not None else []
        project_uid = snap.project_uid if snap is not None else None
        self._numbers.clear()
        browser, self._browser = self._browser, False
        serial = win.load_serial
        self._worker = workers.submit(_reread, project_uid, numbers, browser, context=self,
                                      on_done=lambda res: self._reread_done(serial, snap, *res),
                                      on_error=self._reread_failed)

    def _reread_done(self, serial: int, snap, rows, summaries) -> None:
        self._worker = None
        win = self.win
        if summaries is not None:
            win.set_browser_rows(summaries)
            self.browser_refreshed.emit()
        # a load started since reads the database after these changes: its snapshot wins
        if rows is not None and serial == win.load_serial and not win.loading and win.view.scene().snap is snap:
            idx = snap.apply_rows(rows)
            if len(idx):
                win.view.scene().refresh_jobs(idx)
                self.patches += 1
                win.jobs_patched(idx)
                self.patched.emit(idx)
        self._kick()

    def _reread_failed(self, exc) -> None:
        self._worker = None
        self.win.statusBar().showMessage(f"Cannot read changes: {exc}", 8000)
