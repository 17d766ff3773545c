"""Cleanup Data dialog: options on the left, a live preview on the right, Clean up at the bottom.

The preview is recomputed off the GUI thread (``plan_cleanup``) shortly after
each option change; an older preview arriving late is dropped.  Clean up runs
``execute_cleanup`` as an engine task (progress in the running-jobs panel),
and what it changed reaches the window through change events.
"""

from __future__ import annotations

import html

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QFrame,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
)

from ..core import projects, sizes
from ..core.cleanup import CleanupOptions, execute_cleanup, plan_cleanup
from ..core.registry import PREPROCESSING_CATEGORIES
from ..core.units import human_bytes
from ..engine import workers
from . import palette
from .cleanup_tabs import CATEGORY_LABELS, QtCleanupTabs
from .dialogs import add_plan_footer

MODE_CHOICES = (("Leave", None), ("Clear", "clear"), ("Clear and delete", "delete"))


def _compute(project_uid: str, workspace_uid: str | None, options: CleanupOptions):
    project = projects.get_project(project_uid)
    return plan_cleanup(project, options, workspace_uid), sizes.size_summary(project)


class QtCleanupDialog(QDialog):
    """Plan and run a cleanup of a project or one workspace.  ``preview_ready`` fires per new preview."""

    preview_ready = Signal(object)
    cleanup_finished = Signal(object)

    def __init__(self, window, project_uid: str, workspace_uid: str | None = None) -> None:
        super().__init__(window)
        self.window_ = window
        self.project_uid, self.workspace_uid = project_uid, workspace_uid or None
        self.setObjectName("cleanupDialog")
        self.setWindowTitle(f"Cleanup Data — {project_uid}{' ' + workspace_uid if workspace_uid else ''}")
        self.plan = None
        self._serial = 0
        root = QVBoxLayout(self)
        self.header = QLabel("Computing…")
        self.header.setObjectName("cleanupHeader")
        root.addWidget(self.header)
        self.stale_bar = QFrame()
        self.stale_bar.setStyleSheet(palette.notice_stylesheet("warning", "QFrame"))
        sb = QHBoxLayout(self.stale_bar)
        sb.addWidget(QLabel("Size out of date — figures use recorded sizes."))
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh_sizes)
        sb.addStretch(1)
        sb.addWidget(self.refresh_button)
        self.stale_bar.setVisible(False)
        root.addWidget(self.stale_bar)
        # what the user must know before running the plan (a final result losing its particle images)
        self.warnings = QLabel("")
        self.warnings.setObjectName("cleanupWarnings")
        self.warnings.setWordWrap(True)
        self.warnings.setStyleSheet(palette.notice_stylesheet("warning", "QLabel"))
        self.warnings.setVisible(False)
        root.addWidget(self.warnings)
        body = QHBoxLayout()
        body.addLayout(self._build_options(), 0)
        self.tabs = QtCleanupTabs()
        body.addWidget(self.tabs, 1)
        root.addLayout(body, 1)
        add_plan_footer(self, root, "")
        self.resize(1100, 640)
        self.update_preview()

    def _build_options(self) -> QVBoxLayout:
        col = QVBoxLayout()
        pre = QGroupBox("Clear preprocessing jobs")
        pl = QVBoxLayout(pre)
        self.pre_boxes = {}
        for cat in PREPROCESSING_CATEGORIES:
            box = QCheckBox(CATEGORY_LABELS.get(cat, cat))
            box.toggled.connect(self._changed)
            pl.addWidget(box)
            self.pre_boxes[cat] = box
        # the guide's "all pre-processing jobs (including particle extraction and restack jobs)": its own box, off
        self.restack_box = QCheckBox("Restack jobs")
        self.restack_box.setToolTip("Clear restack and downsample jobs: they can be re-run from the particles "
                                    "they read. Not part of the preprocessing categories; off by default.")
        self.restack_box.toggled.connect(self._changed)
        pl.addWidget(self.restack_box)
        col.addWidget(pre)
        self.intermediate_box = QCheckBox("Clear intermediate results")
        self.intermediate_box.setToolTip("Every job in scope keeps only its last version and the versions "
                                         "another job reads; final jobs keep theirs")
        self.intermediate_box.toggled.connect(self._changed)
        col.addWidget(self.intermediate_box)
        self.mode_boxes = {}
        for key, label in (("non_final", "Non-final jobs"), ("killed", "Killed jobs"), ("failed", "Failed jobs")):
            row = QHBoxLayout()
            row.addWidget(QLabel(label))
            combo = QComboBox()
            for text, value in MODE_CHOICES:
                combo.addItem(text, value)
            combo.currentIndexChanged.connect(self._changed)
            row.addWidget(combo)
            col.addLayout(row)
            self.mode_boxes[key] = combo
        col.addStretch(1)
        return col

    def options(self) -> CleanupOptions:
        return CleanupOptions(
            preprocessing=tuple(c for c, b in self.pre_boxes.items() if b.isChecked()),
            restack=self.restack_box.isChecked(),
            intermediate=self.intermediate_box.isChecked(),
            **{k: c.currentData() for k, c in self.mode_boxes.items()})

    def _changed(self, *_args) -> None:
        self.run_button.setEnabled(False)  # never run a plan that does not match the options shown
        self._timer.start()

    def update_preview(self) -> None:
        self._serial += 1
        serial = self._serial
        workers.submit(_compute, self.project_uid, self.workspace_uid, self.options(),
                       on_done=lambda res: self._show(serial, *res),
                       on_error=lambda exc: self.summary.setText(f"Cannot plan: {exc}"), context=self)

    def _show(self, serial: int, plan, size) -> None:
        if serial != self._serial:
            return
        self.plan = plan
        h = plan.header
        where = f"{h['scope']}" + (f" ({h['workspace_title']})" if h.get("workspace_title") else "")
        project = (f" · Project: {human_bytes(h['project_size_bytes'] or 0)}" if h.get("workspace") else
                   f" (other files: {human_bytes(h.get('other_bytes') or 0)})")
        self.header.setText(f"<b>{where}</b> — {h['project_title']}<br>Sessions: {h['sessions']} "
                            f"({human_bytes(h['sessions_bytes'])}, never touched) · Jobs: {h['jobs']} "
                            f"({human_bytes(h['jobs_bytes'])}) · On disk: {human_bytes(h['size_bytes'] or 0)}"
                            f"{project}")
        self.stale_bar.setVisible(bool(h.get("size_stale")))
        self.tabs.show_plan(plan)
        n = len(plan.entries)
        self.warnings.setText("<br>".join(f"⚠ {html.escape(w)}" for w in plan.warnings))
        self.warnings.setVisible(bool(plan.warnings))
        lose = len(plan.warnings)
        self.summary.setText(f"{n} job(s) affected, {human_bytes(plan.bytes)} freed"
                             + (f" — {lose} final result(s) lose their particle images (see above)" if lose else ""))
        self.run_button.setText(f"Clean up {human_bytes(plan.bytes)}" if n else "Clean up")
        self.run_button.setEnabled(n > 0)
        self.preview_ready.emit(plan)

    def refresh_sizes(self) -> None:
        self.refresh_button.setEnabled(False)
        project = self.project_uid

        def scan():
            return sizes.refresh_project_size(projects.get_project(project))

        workers.submit(scan, on_done=lambda _s: (self.refresh_button.setEnabled(True), self.update_preview()),
                       on_error=lambda exc: self.summary.setText(f"Cannot refresh sizes: {exc}"), context=self)

    def run_cleanup(self) -> None:
        """Execute the plan shown as an engine task (progress in the running-jobs panel) and close the dialog."""
        plan, project = self.plan, self.project_uid
        if plan is None or not plan.entries:
            return
        win = self.window_
        task = win.running.add_task(f"Cleanup {plan.scope}: {human_bytes(plan.bytes)}")

        def finished(result) -> None:
            win.running.finish_task(task)
            win.statusBar().showMessage(f"Cleanup freed {human_bytes(result.bytes_freed)}", 10000)
            win.watcher.poke()
            self.cleanup_finished.emit(result)

        win.run_task(f"Cleanup {plan.scope}",
                     lambda progress, cancel: execute_cleanup(project, plan, progress, cancel),
                     task, finished)
        self.accept()
