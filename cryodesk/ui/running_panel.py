"""The running-jobs panel (bottom dock): active jobs of the project and the app's own tasks.

Tasks (clear, delete, cleanup…) report progress from worker threads through
a signal, so the bars are updated on the GUI thread.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, Signal
from PySide6.QtWidgets import (QHeaderView, QLabel, QProgressBar, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWidget)

from ..core.units import human_bytes


class Task(QObject):
    """Progress of one background task; ``report`` may be called from any thread."""

    progressed = Signal(float, str)

    def __init__(self, title: str, parent=None) -> None:
        super().__init__(parent)
        self.title = title
        self.fraction = 0.0

    def report(self, fraction: float, text: str = "") -> None:
        self.progressed.emit(float(fraction), text)


def engine_available() -> bool:
    """True once the job engine (``cryodesk.engine``) provides ``Engine``."""
    try:
        from .. import engine
    except ImportError:
        return False
    return hasattr(engine, "Engine")


class QtRunningJobsPanel(QWidget):
    """Table of active jobs and running tasks, with a progress bar per row."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        self.note = QLabel("")
        layout.addWidget(self.note)
        self.table = QTableWidget(0, 4)
        self.table.setObjectName("runningTable")
        self.table.setHorizontalHeaderLabels(["Job / task", "Status", "Progress", "Detail"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        layout.addWidget(self.table)
        self.tasks: list[Task] = []
        self._job_rows = 0
        if not engine_available():
            self.note.setText("Job engine not installed: Run / Queue are disabled. "
                              "Clear, delete and cleanup tasks are shown here.")

    def show_active_jobs(self, snap) -> None:
        """List the jobs of ``snap`` whose status is active (queued … waiting)."""
        for _ in range(self._job_rows):
            self.table.removeRow(0)
        idx = [] if snap is None else snap.active.nonzero()[0].tolist()
        for r, i in enumerate(idx):
            self.table.insertRow(r)
            self.table.setItem(r, 0, QTableWidgetItem(f"{snap.uid(i)} {snap.titles[i]}"))
            self.table.setItem(r, 1, QTableWidgetItem(snap.status_name(i)))
            self.table.setItem(r, 3, QTableWidgetItem(human_bytes(int(snap.size[i]))))
        self._job_rows = len(idx)

    def add_task(self, title: str) -> Task:
        task = Task(title, self)
        row = self.table.rowCount()
        self.table.insertRow(row)
        self.table.setItem(row, 0, QTableWidgetItem(title))
        self.table.setItem(row, 1, QTableWidgetItem("running"))
        bar = QProgressBar()
        bar.setRange(0, 1000)
        self.table.setCellWidget(row, 2, bar)
        self.table.setItem(row, 3, QTableWidgetItem(""))
        task.progressed.connect(lambda f, t, tk=task: self._progress(tk, f, t))
        self.tasks.append(task)
        return task

    def _row(self, task: Task) -> int:
        return self._job_rows + self.tasks.index(task)

    def _progress(self, task: Task, fraction: float, text: str) -> None:
        if task not in self.tasks:
            return
        task.fraction = fraction
        row = self._row(task)
        bar = self.table.cellWidget(row, 2)
        if bar is not None:
            bar.setValue(int(fraction * 1000))
        self.table.item(row, 3).setText(text)

    def finish_task(self, task: Task) -> None:
        if task in self.tasks:
            self.table.removeRow(self._row(task))
            self.tasks.remove(task)
        task.deleteLater()

    def running_count(self) -> int:
        return self._job_rows + len(self.tasks)
