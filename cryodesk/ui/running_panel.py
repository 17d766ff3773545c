"""The running-jobs panel (bottom dock): jobs the engine runs, other active jobs, and the app's tasks.

Rows are keyed: ``("job", project_uid, job_uid)`` or ``("task", Task)``.
Task progress may be reported from any thread (a queued signal brings it to
the GUI thread).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QHeaderView, QProgressBar, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget


class Task(QObject):
    """Progress of one background task; ``report`` may be called from any thread."""

    progressed = Signal(float, str)

    def __init__(self, title: str, parent=None) -> None:
        super().__init__(parent)
        self.title = title
        self.fraction = 0.0

    def report(self, fraction: float, text: str = "") -> None:
        self.progressed.emit(float(fraction), text)


class QtRunningJobsPanel(QWidget):
    """Table of running/queued jobs and tasks, with a progress bar per row."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.table = QTableWidget(0, 4)
        self.table.setObjectName("runningTable")
        self.table.setHorizontalHeaderLabels(["Job / task", "Status", "Progress", "Detail"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.table)
        self.keys: list[tuple] = []
        self.tasks: list[Task] = []

    # -- rows ------------------------------------------------------------------
    def _row_for(self, key, title: str) -> int:
        if key in self.keys:
            return self.keys.index(key)
        row = len(self.keys)
        self.keys.append(key)
        self.table.insertRow(row)
        self.table.setItem(row, 0, QTableWidgetItem(title))
        self.table.setItem(row, 1, QTableWidgetItem(""))
        bar = QProgressBar()
        bar.setRange(0, 1000)
        self.table.setCellWidget(row, 2, bar)
        self.table.setItem(row, 3, QTableWidgetItem(""))
        return row

    def _remove(self, key) -> None:
        if key in self.keys:
            row = self.keys.index(key)
            self.keys.pop(row)
            self.table.removeRow(row)

    def set_row(self, key, title: str, status: str, fraction: float | None = None, detail: str = "") -> None:
        row = self._row_for(key, title)
        self.table.item(row, 1).setText(status)
        if fraction is not None:
            self.table.cellWidget(row, 2).setValue(int(max(0.0, min(1.0, fraction)) * 1000))
        if detail:
            self.table.item(row, 3).setText(detail)

    # -- jobs ---------------------------------------------------------------------
    def show_active_jobs(self, snap) -> None:
        """Rows for the active jobs of ``snap`` (queued … waiting); finished ones disappear."""
        if snap is None:
            return
        active = {("job", snap.project_uid, snap.uid(i)): i for i in snap.active.nonzero()[0].tolist()}
        for key in [k for k in self.keys if k[0] == "job" and k[1] == snap.project_uid and k not in active]:
            self._remove(key)
        for key, i in active.items():
            self.set_row(key, f"{snap.project_uid} {snap.uid(i)} {snap.titles[i]}", snap.status_name(i))

    def job_event(self, project_uid: str, job_uid: str, status: str, fraction=None, detail: str = "") -> None:
        key = ("job", project_uid, job_uid)
        if status in ("completed", "failed", "killed"):
            self._remove(key)
        else:
            self.set_row(key, f"{project_uid} {job_uid}", status, fraction, detail)

    # -- tasks ----------------------------------------------------------------------
    def add_task(self, title: str) -> Task:
        task = Task(title, self)
        self.tasks.append(task)
        self.set_row(("task", task), title, "running", 0.0)
        task.progressed.connect(lambda f, t, tk=task: self._progress(tk, f, t))
        return task

    def _progress(self, task: Task, fraction: float, text: str) -> None:
        if ("task", task) in self.keys:
            task.fraction = fraction
            self.set_row(("task", task), task.title, "running", fraction, text)

    def finish_task(self, task: Task) -> None:
        self._remove(("task", task))
        if task in self.tasks:
            self.tasks.remove(task)
        task.deleteLater()

    def running_count(self) -> int:
        return len(self.keys)
