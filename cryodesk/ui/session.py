"""What the window does about running work: kill, logs, the running panel's view of the database, quitting.

* **Kill** (card menu, Job menu, running panel) goes through
  :meth:`EngineBridge.kill`: a job of this window's engine is cancelled, any
  other (a worker, an earlier session in the background) gets a kill request
  across processes.
* **The running panel** shows jobs run elsewhere too: after every change event
  it re-reads :func:`cryodesk.core.lifecycle.active_jobs` (on a worker, one at a
  time) and how its unfinished rows stand now.
* **Quitting** with jobs of this window's engine running or queued asks
  (:class:`~cryodesk.ui.dialogs.QtQuitDialog`): *keep running in the
  background* (queued jobs go to a detached worker, the window hides and the
  process exits when its running jobs have ended: ``went_background`` then
  ``background_finished``), *kill them and quit*, or *don't quit*.  A job
  never dies silently with the window.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout

from ..base.errors import CryodeskError
from ..core import jobs, lifecycle
from ..engine import workers
from .dialogs import QtQuitDialog
from .inspector import tail


def _running_state(open_rows: list[tuple[str, str]]):
    """Worker body: every active job, and how the panel's unfinished rows stand now."""
    active = lifecycle.active_jobs()
    live = {(a.project_uid, a.uid) for a in active}
    finished = {}
    by_project: dict[str, list[str]] = {}
    for project_uid, uid in open_rows:
        if (project_uid, uid) not in live:
            by_project.setdefault(project_uid, []).append(uid)
    for project_uid, uids in by_project.items():
        try:
            for uid, info in lifecycle.finished_since(project_uid, uids).items():
                finished[(project_uid, uid)] = info
        except CryodeskError:  # the project went away
            continue
    return active, finished


def _read_log(project_uid: str, uid: str) -> tuple[str, str]:
    job = jobs.get_job(project_uid, uid)
    path = jobs.job_dir(job) / "job.log"
    return str(path), tail(path, 64 * 1024) or "(no log yet)"


class QtLogDialog(QDialog):
    """A job's ``job.log`` (its last 64 KiB), read-only, with Refresh."""

    def __init__(self, project_uid: str, uid: str, parent=None) -> None:
        super().__init__(parent)
        self.project_uid, self.uid = project_uid, uid
        self.setWindowTitle(f"{project_uid} {uid}: job.log")
        self.setObjectName("logDialog")
        lay = QVBoxLayout(self)
        self.path = QLabel("")
        self.path.setWordWrap(True)
        lay.addWidget(self.path)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        lay.addWidget(self.text)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        self.refresh_button = QPushButton("Refresh")
        buttons.addButton(self.refresh_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        self.refresh_button.clicked.connect(self.refresh)
        lay.addWidget(buttons)
        self.resize(760, 460)
        self.loaded = 0
        self.refresh()

    def refresh(self) -> None:
        workers.submit(_read_log, self.project_uid, self.uid, on_done=self._show, context=self,
                       on_error=lambda exc: self.text.setPlainText(f"Cannot read the log: {exc}"))

    def _show(self, result) -> None:
        path, text = result
        self.path.setText(path)
        self.text.setPlainText(text)
        self.text.verticalScrollBar().setValue(self.text.verticalScrollBar().maximum())
        self.loaded += 1


class SessionControl(QObject):
    """Kill, logs, the running panel's database view and the quit question of ``win`` (the main window)."""

    went_background = Signal(dict)  # what was handed off: {"handed", "worker_pid", "log"}
    background_finished = Signal()  # the running jobs of a backgrounded window have ended: exit now
    quit_decided = Signal(str)  # background / kill / stay

    def __init__(self, win) -> None:
        super().__init__(win)
        self.win = win
        self.mode: str | None = None  # None until quitting was decided: "kill", "background", "close"
        self.dialog: QtQuitDialog | None = None
        self.log_dialog: QtLogDialog | None = None
        self._reader = None
        self._again = False
        panel = win.running
        panel.kill_requested.connect(self.kill)
        panel.log_requested.connect(self.show_log)
        panel.job_activated.connect(self._activate)
        win.watcher.changed.connect(lambda _batch: self.refresh_running())
        win.bridge.activity.connect(self.refresh_running)

    # -- kill and logs -----------------------------------------------------------------
    def kill(self, pairs) -> dict[str, str]:
        """Kill ``(project_uid, job_uid)`` pairs; refusals go to the message log.  Returns outcomes by uid."""
        out = {}
        for project_uid, uid in pairs:
            try:
                out[uid] = self.win.bridge.kill(project_uid, uid, on_error=lambda msg, p=project_uid, u=uid:
                                                self.win.report(f"{p} {u} was not killed: {msg}"))
            except CryodeskError as exc:
                out[uid] = "refused"
                self.win.report(f"{project_uid} {uid} was not killed: {exc}")
        if out:
            self.win.statusBar().showMessage(
                "Kill: " + ", ".join(f"{u} {o}" for u, o in out.items()), 8000)
        self.refresh_running()
        return out

    def show_log(self, project_uid: str, uid: str) -> QtLogDialog:
        if self.log_dialog is not None:
            self.log_dialog.deleteLater()
        self.log_dialog = QtLogDialog(project_uid, uid, self.win)
        self.log_dialog.show()
        return self.log_dialog

    def _activate(self, project_uid: str, uid: str) -> None:
        if project_uid == self.win.project_uid:
            self.win.select_uid(uid)

    # -- the running panel ---------------------------------------------------------------
    def refresh_running(self) -> None:
        """Re-read active jobs (on a worker; one read at a time, another after it if asked meanwhile)."""
        if self.mode is not None:
            return
        if self._reader is not None:
            self._again = True
            return
        self._reader = workers.submit(_running_state, self.win.running.open_job_keys(), context=self,
                                      on_done=self._running_read, on_error=self._running_failed)

    def _running_read(self, result) -> None:
        self._reader = None
        active, finished = result
        self.win.running.show_active(active, finished)
        if self._again:
            self._again = False
            self.refresh_running()

    def _running_failed(self, exc) -> None:
        self._reader = None
        self.win.statusBar().showMessage(f"Cannot read running jobs: {exc}", 8000)

    # -- quitting ------------------------------------------------------------------------------
    def may_close(self) -> bool:
        """True if the window may close now; otherwise the quit question is showing."""
        if self.mode is not None:
            return True
        busy = self.win.bridge.busy_jobs()
        if not busy["running"] and not busy["queued"]:
            self.mode = "close"
            return True
        if self.dialog is None:
            fmt = lambda pairs: [f"{p} {u}" for p, u in pairs]  # noqa: E731
            self.dialog = QtQuitDialog(fmt(busy["running"]), fmt(busy["queued"]), self.win)
            self.dialog.finished.connect(lambda _r: self._decided(self.dialog.choice))
            self.dialog.open()
        return False

    def _decided(self, choice: str) -> None:
        dialog, self.dialog = self.dialog, None
        if dialog is not None:
            dialog.deleteLater()
        self.quit_decided.emit(choice)
        if choice == "stay":
            return
        if choice == "kill":
            self.mode = "kill"
            self.win.bridge.engine.cancel_all()
            self.win.close()
            return
        self.go_background()

    def go_background(self) -> dict:
        """Hand queued jobs to a worker, hide the window, exit once the running jobs have ended."""
        self.mode = "background"
        win = self.win
        win.save_state()
        win.watcher.stop()
        win.running.stop()
        info = win.bridge.keep_running_in_background()
        win.hide()
        self.went_background.emit(info)
        engine = win.bridge.engine
        if engine.is_idle:
            self.background_finished.emit()
        else:
            engine.idle.connect(self._background_idle)
        return info

    def _background_idle(self) -> None:
        self.win.bridge.engine.idle.disconnect(self._background_idle)
        self.background_finished.emit()
