"""*File → Open project folder…*: RELION and CryoSPARC project directories (and cryodesk's) opened in place.

The same service as ``cryodesk project open DIR``
(:func:`cryodesk.core.foreign.service.open_project`), run off the GUI thread.  A
CryoSPARC project says "managed by CryoSPARC — read-only" when it is opened and
whenever it is shown; every change to it is refused by the core's write guard,
so a button that is still enabled ends in that refusal, never in a write.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QFileDialog, QMenu

from ..core.foreign.service import open_project
from ..core.units import human_bytes
from ..engine import workers

READ_ONLY = "managed by CryoSPARC — read-only"


class ForeignActions(QObject):
    opened = Signal(str)  # the project's uid
    message = Signal(str)

    def __init__(self, host) -> None:
        super().__init__(host)
        self.host = host
        self.pending = None
        self.last: dict | None = None  # the summary of the last open (tests read it)
        self.ask_directory = lambda: QFileDialog.getExistingDirectory(
            host, "Open which project folder (RELION, CryoSPARC or cryodesk)?", str(Path.home())) or None
        self.open = QAction("&Open project folder…", self)
        self.open.setShortcut("Ctrl+O")
        tip = ("Open a RELION project (default_pipeline.star), a CryoSPARC project directory (read-only) or a "
               "cryodesk project in place")
        self.open.setStatusTip(tip)
        self.open.setToolTip(tip)
        self.open.triggered.connect(lambda _=False: self.do_open())

    def do_open(self, directory: str | None = None) -> None:
        path = directory or self.ask_directory()
        if not path:
            return
        self.message.emit(f"opening {path}…")
        self.pending = workers.submit(open_project, path, on_done=self._done, on_error=self._failed, context=self)

    def _done(self, result) -> None:
        self.pending = None
        project, info = result
        self.last = info
        size = (info.get("size") or {}).get("measured_bytes")
        what = {"relion": "RELION project", "cryosparc": f"CryoSPARC project ({READ_ONLY})"}.get(
            info["kind"], "cryodesk project")
        self.message.emit(f"opened {project.directory} as {project.uid}: {what}"
                          + (f", {info['jobs']} jobs, {human_bytes(size)}" if size is not None else ""))
        self.host.refresh_browser()
        self.host.browser.select_scope(project.uid, "")
        self.opened.emit(project.uid)

    def _failed(self, exc) -> None:
        self.pending = None
        self.last = {"error": str(exc)}
        from ..core.results import Outcome
        from .dialogs import QtRefusalDialog

        self.message.emit(f"Failed: {exc}")
        dialog = QtRefusalDialog("opened", [Outcome("—", "open", False, str(exc))], self.host)
        self.host.foreign_dialog = dialog
        dialog.open()

    def scope_notice(self, project_uid: str, _workspace: str = "") -> None:
        """Say so in the status bar when the project shown is CryoSPARC's (read-only)."""
        row = next((r for r in self.host.browser.rows if r["uid"] == project_uid), None)
        if row is not None and row.get("kind") == "cryosparc":
            self.host.statusBar().showMessage(f"{project_uid} is {READ_ONLY}: browse, measure and preview only",
                                              0)


def install(win, menu: QMenu, before: QAction | None = None) -> ForeignActions:
    """Add *Open project folder…* to ``menu`` (before ``before``) and the read-only notice on the browser."""
    actions = ForeignActions(win)
    menu.insertAction(before, actions.open) if before is not None else menu.addAction(actions.open)
    actions.message.connect(lambda m: win.statusBar().showMessage(m, 8000))
    win.browser.scope_selected.connect(actions.scope_notice)
    win.foreign_actions = actions
    return actions
