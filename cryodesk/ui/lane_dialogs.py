"""Lanes in the window: choose the lane a job runs on, and see the lanes and their status."""

from __future__ import annotations

from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
)

from ..base.errors import CryodeskError
from ..core import lanes
from ..engine import workers
from .tables import fill_table, read_only_table

LOCAL = "This app (local)"


class QtRunOnLaneDialog(QDialog):
    """Pick a lane (this app, a worker, a SLURM cluster) and per-job script variables for ``uids``."""

    def __init__(self, uids: list[str], parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Run on lane")
        self.setMinimumWidth(480)
        self.uids = list(uids)
        self.infos = {i.name: i for i in lanes.list_lanes()}
        form = QFormLayout(self)
        form.addRow(QLabel(f"Run {', '.join(self.uids[:8])}{' …' if len(self.uids) > 8 else ''} on:"))
        self.lane = QComboBox()
        self.lane.addItem(LOCAL, None)
        for name, info in self.infos.items():
            self.lane.addItem(f"{name} ({info.type})", name)
        form.addRow("Lane", self.lane)
        self.about = QLabel("")
        self.about.setWordWrap(True)
        form.addRow(self.about)
        self.vars = QLineEdit()
        self.vars.setPlaceholderText("e.g. num_cpu=4 ram_gb=8 partition=gpu")
        self.vars.setToolTip("Variables of the SLURM submission script for these jobs (NAME=VALUE, space separated):\n"
                             + "\n".join(f"{k}: {v}" for k, v in lanes.SCRIPT_VARIABLES.items()))
        form.addRow("Script variables", self.vars)
        self.error = QLabel("")
        self.error.setStyleSheet("color: #d93025")
        self.error.setWordWrap(True)
        form.addRow(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.run_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.run_button.setText("Run")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.lane.currentIndexChanged.connect(self._describe)
        self._describe()

    def _describe(self) -> None:
        name = self.lane.currentData()
        info = self.infos.get(name)
        self.vars.setEnabled(info is not None and info.type == "slurm")
        if info is None:
            self.about.setText("Runs in this app's engine, in dependency order.")
        elif info.type == "worker":
            self.about.setText(f"Queued for 'cryodesk worker run --lane {name}' on "
                               f"{info.config.get('host') or 'the worker host'}.")
        else:
            via = f" through '{info.config['prefix']}'" if info.config.get("prefix") else ""
            self.about.setText(f"Submitted to the cluster{via} ({info.config.get('num_cpu')} CPU, "
                               f"{info.config.get('ram_gb')} GB by default); {info.active_jobs} active job(s) there.")

    def choice(self) -> tuple[str | None, dict]:
        """The chosen lane (None: this app) and the script variables."""
        return self.lane.currentData(), lanes.parse_vars(self.vars.text().split()) if self.vars.isEnabled() else {}

    def _accept(self) -> None:
        try:
            self.choice()
        except CryodeskError as exc:
            self.error.setText(str(exc))
            return
        self.accept()


class QtLanesDialog(QDialog):
    """The lanes and whether their scheduler answers (checked on a pool thread: ssh may be slow)."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Lanes")
        self.resize(720, 300)
        lay = QVBoxLayout(self)
        self.table = read_only_table(["Lane", "Type", "Active jobs", "Status"])
        lay.addWidget(self.table)
        self.note = QLabel("Add lanes with 'cryodesk lane add NAME --type slurm|worker …' (see the README).")
        self.note.setWordWrap(True)
        lay.addWidget(self.note)
        self.refresh_button = QPushButton("Check now")
        self.refresh_button.clicked.connect(self.refresh)
        lay.addWidget(self.refresh_button)
        self.statuses: dict[str, dict] = {}
        self.pending = None
        self.refresh()

    def _rows(self) -> list:
        rows = []
        for info in lanes.list_lanes():
            st = self.statuses.get(info.name)
            text = "checking…" if st is None else (("ok: " if st["ok"] else "UNREACHABLE: ") + st["message"])
            jobs = ", ".join(f"{n} {s}" for s, n in sorted((st or {}).get("jobs", {}).items())) \
                or str(info.active_jobs)
            rows.append((info.name, info.type, jobs, text))
        return rows

    def refresh(self) -> None:
        self.statuses = {}
        fill_table(self.table, self._rows())
        names = [i.name for i in lanes.list_lanes()]
        self.pending = workers.submit(lambda: {n: lanes.lane_status(n) for n in names}, on_done=self._checked,
                                      on_error=lambda exc: self.note.setText(f"could not check the lanes: {exc}"),
                                      context=self)

    def _checked(self, statuses: dict) -> None:
        self.statuses = statuses
        fill_table(self.table, self._rows(), tooltips=True)  # a long error reads in full in its tooltip
        self.table.resizeColumnsToContents()


def open_lanes_dialog(win) -> QtLanesDialog:
    dialog = QtLanesDialog(win)
    dialog.setModal(False)
    dialog.show()
    win.lanes_dialog = dialog  # tests and the next open find it
    return dialog
