"""The running-jobs panel (bottom dock): this session's jobs and tasks, running and finished.

Rows are keyed ``("job", project_uid, job_uid)`` or ``("task", Task)`` and
stay after their job ends (finished, failed, killed: with the duration), so a
0.1 s job is seen too; *Clear finished* removes those.  Jobs run by another
process (a ``cryodesk worker``, an earlier session kept running in the
background) come from :func:`cryodesk.core.lifecycle.active_jobs` and say
where they run.  The table is read-only; *Kill* stops the selected jobs
wherever they run, *Log* (or the log cell) shows a job's ``job.log``, a
double-click selects the job in the tree.  Task progress may be reported from
any thread (a queued signal brings it to the GUI thread).
"""

from __future__ import annotations

import time

from PySide6.QtCore import QObject, QTimer, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from . import palette

FINISHED = ("completed", "failed", "killed", "cancelled", "deleted")
COLUMNS = ["Job / task", "Status", "Progress", "Started", "Duration", "Where", "Log", "Detail"]
C_TITLE, C_STATUS, C_PROGRESS, C_STARTED, C_DURATION, C_WHERE, C_LOG, C_DETAIL = range(len(COLUMNS))


class Task(QObject):
    """Progress of one background task; ``report`` may be called from any thread."""

    progressed = Signal(float, str)

    def __init__(self, title: str, parent=None) -> None:
        super().__init__(parent)
        self.title = title
        self.fraction = 0.0

    def report(self, fraction: float, text: str = "") -> None:
        self.progressed.emit(float(fraction), text)


def _duration(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"


def _epoch(dt) -> float | None:
    """A naive UTC datetime from the database as epoch seconds (None stays None)."""
    if dt is None:
        return None
    import calendar

    return calendar.timegm(dt.timetuple()) + dt.microsecond / 1e6


class _Row:
    __slots__ = ("key", "title", "status", "started", "ended", "where", "detail", "fraction")

    def __init__(self, key, title: str) -> None:
        self.key, self.title = key, title
        self.status, self.where, self.detail = "", "here", ""
        self.started: float | None = None
        self.ended: float | None = None
        self.fraction: float | None = None


class QtRunningJobsPanel(QWidget):
    """Table of this session's jobs and tasks, with a progress bar, duration and log link per row.

    Signals: ``kill_requested(list of (project_uid, job_uid))``, ``log_requested(project_uid, job_uid)``,
    ``job_activated(project_uid, job_uid)`` (double-click).
    """

    kill_requested = Signal(list)
    log_requested = Signal(str, str)
    job_activated = Signal(str, str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 4)
        layout.setSpacing(2)
        bar = QHBoxLayout()
        self.summary = QLabel("No jobs this session")
        self.summary.setObjectName("runningSummary")
        self.kill_button = QPushButton("Kill")
        self.kill_button.setObjectName("runningKill")
        self.kill_button.setToolTip("Kill the selected jobs (also those run by another process)")
        self.log_button = QPushButton("Log")
        self.log_button.setToolTip("Show the selected job's log (job.log)")
        self.clear_button = QPushButton("Clear finished")
        self.clear_button.setToolTip("Remove the rows of jobs and tasks that have ended")
        bar.addWidget(self.summary, 1)
        for b in (self.kill_button, self.log_button, self.clear_button):
            bar.addWidget(b)
        layout.addLayout(bar)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setObjectName("runningTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.verticalHeader().setVisible(False)
        self.table.verticalHeader().setDefaultSectionSize(22)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(C_DETAIL, QHeaderView.ResizeMode.Stretch)
        for c, w in ((C_TITLE, 230), (C_STATUS, 80), (C_PROGRESS, 110), (C_STARTED, 70), (C_DURATION, 64),
                     (C_WHERE, 150), (C_LOG, 56)):
            self.table.setColumnWidth(c, w)
        self.table.setMinimumHeight(80)  # the header and three rows; the dock can grow to show many
        layout.addWidget(self.table)
        self.keys: list[tuple] = []
        self.rows: dict[tuple, _Row] = {}
        self.tasks: list[Task] = []
        self.kill_button.clicked.connect(self._kill_selected)
        self.log_button.clicked.connect(self._log_selected)
        self.clear_button.clicked.connect(self.clear_finished)
        self.table.cellClicked.connect(self._cell_clicked)
        self.table.cellDoubleClicked.connect(self._cell_double_clicked)
        self.table.itemSelectionChanged.connect(self._update_buttons)
        # durations of running rows tick once a second, only while something runs
        self._ticker = QTimer(self)
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self._tick)
        self._update_buttons()

    # -- rows ------------------------------------------------------------------
    def _row_for(self, key, title: str) -> int:
        if key in self.rows:
            return self.keys.index(key)
        row = len(self.keys)
        self.keys.append(key)
        self.rows[key] = _Row(key, title)
        self.table.insertRow(row)
        for c in range(len(COLUMNS)):
            if c != C_PROGRESS:
                self.table.setItem(row, c, QTableWidgetItem(""))
        self.table.item(row, C_TITLE).setText(title)
        self.table.item(row, C_TITLE).setToolTip(title)
        bar = QProgressBar()
        bar.setRange(0, 1000)
        bar.setTextVisible(True)
        bar.setMaximumHeight(18)
        self.table.setCellWidget(row, C_PROGRESS, bar)
        if key[0] == "job":
            log = self.table.item(row, C_LOG)
            log.setText("job.log")
            log.setForeground(QColor(palette.link_colour()))
            log.setToolTip("Show this job's log")
        return row

    def _remove(self, key) -> None:
        if key in self.rows:
            row = self.keys.index(key)
            self.keys.pop(row)
            del self.rows[key]
            self.table.removeRow(row)

    def set_row(self, key, title: str, status: str, fraction: float | None = None, detail: str = "",
                where: str | None = None) -> None:
        """Create or update a row; a finished status stamps the end (the row stays)."""
        r = self._row_for(key, title)
        state = self.rows[key]
        now = time.time()
        if status in ("running", "started") and state.started is None:
            state.started = now
        if status in FINISHED and state.ended is None:
            state.ended = now
            if state.started is None:
                state.started = now
        elif status not in FINISHED:
            state.ended = None
        if status in FINISHED and status == "completed":
            fraction = 1.0
        state.status = status
        if fraction is not None:
            state.fraction = fraction
        if detail:
            state.detail = detail
        if where is not None:
            state.where = where
        self._paint_row(r, state)
        self._update_summary()

    def _paint_row(self, r: int, state: _Row) -> None:
        status_item = self.table.item(r, C_STATUS)
        status_item.setText(state.status)
        colour = palette.STATUS_COLOURS.get(state.status)
        if colour:
            status_item.setForeground(QColor(colour))
        if state.fraction is not None:
            self.table.cellWidget(r, C_PROGRESS).setValue(int(max(0.0, min(1.0, state.fraction)) * 1000))
        self.table.item(r, C_STARTED).setText(time.strftime("%H:%M:%S", time.localtime(state.started))
                                              if state.started else "")
        if state.started is not None:
            end = state.ended if state.ended is not None else time.time()
            self.table.item(r, C_DURATION).setText(_duration(end - state.started))
        self.table.item(r, C_WHERE).setText("this window" if state.where == "here" else state.where)
        self.table.item(r, C_DETAIL).setText(state.detail)
        self.table.item(r, C_DETAIL).setToolTip(state.detail)

    def _tick(self) -> None:
        for r, key in enumerate(self.keys):
            state = self.rows[key]
            if state.started is not None and state.ended is None:
                self.table.item(r, C_DURATION).setText(_duration(time.time() - state.started))
        self._update_summary()

    def _update_summary(self) -> None:
        active = [s for s in self.rows.values() if s.status not in FINISHED]
        running = sum(1 for s in active if s.status in ("running", "started"))
        finished = len(self.rows) - len(active)
        self.summary.setText(f"{running} running · {len(active) - running} queued or waiting · {finished} finished"
                             if self.rows else "No jobs this session")
        if active and not self._ticker.isActive():
            self._ticker.start()
        elif not active and self._ticker.isActive():
            self._ticker.stop()

    def stop(self) -> None:
        """Stop the duration ticker (the window closes)."""
        self._ticker.stop()

    def status_of(self, project_uid: str, job_uid: str) -> str | None:
        state = self.rows.get(("job", project_uid, job_uid))
        return None if state is None else state.status

    def row_of(self, project_uid: str, job_uid: str) -> int | None:
        key = ("job", project_uid, job_uid)
        return self.keys.index(key) if key in self.rows else None

    # -- jobs ---------------------------------------------------------------------
    def job_event(self, project_uid: str, job_uid: str, status: str, fraction=None, detail: str = "",
                  where: str | None = None) -> None:
        key = ("job", project_uid, job_uid)
        title = self.rows[key].title if key in self.rows else f"{project_uid} {job_uid}"
        self.set_row(key, title, status, fraction, detail, where)

    def set_title(self, project_uid: str, job_uid: str, title: str) -> None:
        key = ("job", project_uid, job_uid)
        if key in self.rows and title:
            full = f"{project_uid} {job_uid} {title}"
            self.rows[key].title = full
            item = self.table.item(self.keys.index(key), C_TITLE)
            item.setText(full)
            item.setToolTip(full)

    def show_active(self, active, finished: dict | None = None) -> None:
        """Merge the database's active jobs (:func:`cryodesk.core.lifecycle.active_jobs`) into the rows.

        Jobs run here are reported by the engine's signals; the others (another
        process, queued for a worker) get their rows from here, saying where
        they run.  ``finished`` (``{(project, uid): {status, error, ...}}``)
        ends rows whose jobs are no longer active.
        """
        for a in active:
            key = ("job", a.project_uid, a.uid)
            if a.where == "here" and key in self.rows:
                continue  # the engine's signals keep it
            where = {"no process": "waiting for a worker", "gone": "its process is gone"}.get(a.where, a.where)
            detail = "kill requested" if a.kill_requested else ""
            self.set_row(key, f"{a.project_uid} {a.uid} {a.title}", a.status, None, detail, where)
            state = self.rows[key]
            started = _epoch(a.started_at)
            if started is not None:
                state.started = started
                self._paint_row(self.keys.index(key), state)
        for (project_uid, uid), info in (finished or {}).items():
            key = ("job", project_uid, uid)
            state = self.rows.get(key)
            if state is None or state.status in FINISHED:
                continue
            self.set_row(key, state.title, info["status"], None, info.get("error") or "")
            if info.get("completed_at") is not None:
                state.ended = _epoch(info["completed_at"])
                if info.get("started_at") is not None:
                    state.started = _epoch(info["started_at"])
                self._paint_row(self.keys.index(key), state)

    def open_job_keys(self) -> list[tuple[str, str]]:
        """``(project, uid)`` of job rows not yet finished (the window re-reads how they stand)."""
        return [(k[1], k[2]) for k, s in self.rows.items() if k[0] == "job" and s.status not in FINISHED]

    # -- tasks ----------------------------------------------------------------------
    def add_task(self, title: str) -> Task:
        task = Task(title, self)
        self.tasks.append(task)
        self.set_row(("task", task), title, "running", 0.0)
        task.progressed.connect(lambda f, t, tk=task: self._progress(tk, f, t))
        return task

    def _progress(self, task: Task, fraction: float, text: str) -> None:
        key = ("task", task)
        if key in self.rows and self.rows[key].status == "running":
            task.fraction = fraction
            self.set_row(key, task.title, "running", fraction, text)

    def finish_task(self, task: Task, status: str = "completed", detail: str = "") -> None:
        """The task ended: its row stays with ``status`` (completed, failed, cancelled)."""
        key = ("task", task)
        if key in self.rows:
            self.set_row(key, task.title, status, None, detail)
        if task in self.tasks:
            self.tasks.remove(task)

    def clear_finished(self) -> None:
        for key in [k for k, s in self.rows.items() if s.status in FINISHED]:
            self._remove(key)
            if key[0] == "task":
                key[1].deleteLater()
        self._update_summary()
        self._update_buttons()

    def running_count(self) -> int:
        """Rows of jobs and tasks that have not ended."""
        return sum(1 for s in self.rows.values() if s.status not in FINISHED)

    # -- gestures ----------------------------------------------------------------------
    def selected_jobs(self) -> list[tuple[str, str]]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        # (while rows are being removed the selection may name a row that has gone)
        return [(self.keys[r][1], self.keys[r][2]) for r in rows if r < len(self.keys) and self.keys[r][0] == "job"]

    def _update_buttons(self) -> None:
        jobs = self.selected_jobs()
        live = [j for j in jobs if self.rows[("job", *j)].status not in FINISHED]
        self.kill_button.setEnabled(bool(live))
        self.kill_button.setToolTip("Kill the selected jobs (also those run by another process)" if live else
                                    "Select a queued or running job to kill it")
        self.log_button.setEnabled(len(jobs) == 1)

    def _kill_selected(self) -> None:
        live = [j for j in self.selected_jobs() if self.rows[("job", *j)].status not in FINISHED]
        if live:
            self.kill_requested.emit(live)

    def _log_selected(self) -> None:
        jobs = self.selected_jobs()
        if len(jobs) == 1:
            self.log_requested.emit(*jobs[0])

    def _cell_clicked(self, row: int, column: int) -> None:
        key = self.keys[row]
        if column == C_LOG and key[0] == "job":
            self.log_requested.emit(key[1], key[2])

    def _cell_double_clicked(self, row: int, column: int) -> None:
        key = self.keys[row]
        if key[0] == "job" and column != C_LOG:
            self.job_activated.emit(key[1], key[2])

