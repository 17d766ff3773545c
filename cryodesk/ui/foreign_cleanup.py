"""Cleanup Data for other programs' projects (issue 16): RELION's (read-write) and CryoSPARC's (read only).

* :class:`QtRelionCleanupDialog` — the options of ``cryodesk relion clean`` (RELION's harsh or
  gentle clean of the selected or of every eligible job; or preprocessing, intermediate
  iterations, failed/aborted jobs to ``Trash/``, emptying ``Trash/``), a preview per job of what
  goes with its bytes (the plans of :mod:`cryodesk.core.foreign.relion_clean`, computed off the
  GUI thread), and *Clean up*, which carries the plan shown out through the deletion service
  (``relion_clean.execute``) on a worker, with progress, then lists what each item freed.
* :class:`QtCryosparcPreviewDialog` — what CryoSPARC's own Cleanup Data would free, tab by tab
  (:func:`cryodesk.core.foreign.cryosparc_audit.preview`); no button changes anything.
* :class:`RelionJobActions` — *Job ▸ Delete…* of RELION jobs (to ``Trash/``, RELION's Delete)
  and *Job ▸ Empty RELION Trash…*: plan (worker) → confirm with bytes and paths → execute (worker).

The UI only shows plans and results; the core plans, rechecks and deletes.
"""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from ..core.foreign import cryosparc_audit, relion_clean
from ..core.units import human_bytes
from ..engine import workers
from . import palette
from .dialogs import OneDialog, QtConfirmDialog, QtRefusalDialog, add_plan_footer
from .foreign_actions import READ_ONLY
from .tables import fill_table, read_only_table

ACTION_LABELS = {"relion_clear": "clean", "relion_intermediate": "intermediate iterations",
                 "relion_delete": "delete to Trash/", "relion_empty_trash": "empty Trash/"}
PREVIEW_HEADERS = ["Job", "Directory", "Action", "Frees", "Removes", "Why"]
RESULT_HEADERS = ["Job", "Action", "Result", "Freed", "Message"]
CRYOSPARC_TABS = (("intermediate", "Intermediate results"), ("preprocessing", "Preprocessing"),
                  ("non_final", "Non-final"), ("killed", "Killed"), ("failed", "Failed"))


def project_kind(window, project_uid: str | None) -> str:
    """The kind of a project the browser lists ("cryodesk", "relion", "cryosparc")."""
    row = next((r for r in getattr(window.browser, "rows", []) if r.get("uid") == project_uid), None)
    return (row or {}).get("kind") or "cryodesk"


def plan_for(project_uid: str, clean: str | None, jobs, preprocessing=False, intermediate=False, failed=False,
             trash=False):
    """The plan of ``cryodesk relion clean``: ``clean`` "harsh"/"gentle" of ``jobs`` (None: all eligible),
    otherwise the chosen cleanup options."""
    if clean is not None:
        return relion_clean.plan_clear(project_uid, jobs or None, harsh=clean == "harsh")
    return relion_clean.plan_cleanup(project_uid, preprocessing=preprocessing, intermediate=intermediate,
                                     failed=failed, trash=trash)


def _fit_columns(table, columns) -> None:
    for c in columns:
        table.horizontalHeader().setSectionResizeMode(c, QHeaderView.ResizeMode.ResizeToContents)


def preview_rows(plan) -> list[tuple]:
    """One row per item: job, its directory, what happens, which paths, the bytes it frees, why."""
    rows = []
    for it in plan.items:
        d = it.versions.get("dir", "")
        action = ACTION_LABELS.get(it.action, it.action)
        if it.action == "relion_clear":
            action = it.reason.split("'s ", 1)[-1].split(" of ", 1)[0]  # "harsh clean" / "gentle clean"
        if it.action == "relion_delete":
            removes = f"→ Trash/{d} ({human_bytes(it.versions.get('moved_bytes', 0))} moved, freed on Empty Trash)"
        else:
            removes = (f"{len(it.paths)} path(s): " + ", ".join(p.removeprefix(d + "/") for p in it.paths[:4])
                       + (" …" if len(it.paths) > 4 else ""))
        rows.append((it.job, d, action, human_bytes(it.bytes), removes, it.reason))
    return rows


def result_rows(results) -> list[tuple]:
    return [(r.job, ACTION_LABELS.get(r.action, r.action), "ok" if r.ok else "FAILED", human_bytes(r.bytes),
             r.message) for r in results]


def freed(results) -> int:
    return sum(r.bytes for r in results if r.ok)


class QtRelionCleanupDialog(QDialog):
    """Plan, preview and carry out a clean-up of a RELION project (the options of ``relion clean``)."""

    preview_ready = Signal(object)
    cleanup_finished = Signal(object)  # the list of ItemResult

    def __init__(self, window, project_uid: str, selected=()) -> None:
        super().__init__(window)
        self.window_ = window
        self.project_uid = project_uid
        self.selected = list(selected)
        self.plan = None
        self.results = None
        self.pending = None
        self._serial = 0
        self.setObjectName("relionCleanupDialog")
        self.setWindowTitle(f"Cleanup Data — {project_uid} (RELION project)")
        root = QVBoxLayout(self)
        head = QLabel(f"<b>{project_uid}</b> is a RELION project: cleaned with RELION's own rules, under RELION's "
                      "lock. Final jobs are never touched; deleted jobs go to RELION's Trash/ (Undelete works) "
                      "until Trash/ is emptied.")
        head.setWordWrap(True)
        root.addWidget(head)
        body = QHBoxLayout()
        body.addLayout(self._build_options(), 0)
        right = QVBoxLayout()
        self.table = read_only_table(PREVIEW_HEADERS, stretch=4)
        self.table.setObjectName("relionPreview")
        _fit_columns(self.table, (0, 1, 2, 3))
        self.table.setColumnWidth(5, 220)
        right.addWidget(self.table, 1)
        self.results_label = QLabel("")
        self.results_label.setVisible(False)
        right.addWidget(self.results_label)
        self.results_table = read_only_table(RESULT_HEADERS, stretch=4)
        _fit_columns(self.results_table, (0, 1, 2, 3))
        self.results_table.setVisible(False)
        right.addWidget(self.results_table, 1)
        body.addLayout(right, 1)
        root.addLayout(body, 1)
        self.progress = QProgressBar()
        self.progress.setRange(0, 100)
        self.progress.setVisible(False)
        root.addWidget(self.progress)
        add_plan_footer(self, root, "Computing…")
        self.resize(1100, 560)
        self.update_preview()

    def _build_options(self) -> QVBoxLayout:
        col = QVBoxLayout()
        self.mode = QButtonGroup(self)
        clean = QGroupBox("Clean jobs (RELION's Clean)")
        cl = QVBoxLayout(clean)
        self.clean_radio = QRadioButton("Clean")
        self.kind_combo = QComboBox()
        self.kind_combo.addItem("harsh: bulky files too", "harsh")
        self.kind_combo.addItem("gentle: logs and metadata", "gentle")
        row = QHBoxLayout()
        row.addWidget(self.clean_radio)
        row.addWidget(self.kind_combo, 1)
        cl.addLayout(row)
        self.selected_box = QCheckBox(f"only the {len(self.selected)} selected job(s)" if self.selected
                                      else "only the selected jobs (none selected: every eligible job)")
        self.selected_box.setEnabled(bool(self.selected))
        self.selected_box.setChecked(bool(self.selected))
        cl.addWidget(self.selected_box)
        col.addWidget(clean)
        opts = QGroupBox("Cleanup options")
        ol = QVBoxLayout(opts)
        self.options_radio = QRadioButton("Clean up")
        self.options_radio.setChecked(True)
        ol.addWidget(self.options_radio)
        self.boxes = {}
        for key, label, tip in (
                ("preprocessing", "Preprocessing (harsh clean of MotionCorr, CtfFind, picking, Extract)", ""),
                ("intermediate", "Intermediate results (iterations before the last no job reads)", ""),
                ("failed", "Failed and aborted jobs (delete to Trash/)", ""),
                ("trash", "Empty RELION's Trash/", "frees what earlier deletes moved to Trash/")):
            box = QCheckBox(label)
            if tip:
                box.setToolTip(tip)
            box.toggled.connect(self._changed)
            ol.addWidget(box)
            self.boxes[key] = box
        col.addWidget(opts)
        for r in (self.clean_radio, self.options_radio):
            self.mode.addButton(r)
            r.toggled.connect(self._changed)
        self.kind_combo.currentIndexChanged.connect(self._changed)
        self.selected_box.toggled.connect(self._changed)
        col.addStretch(1)
        return col

    def choice(self) -> dict:
        """The options shown, as :func:`plan_for` takes them."""
        if self.clean_radio.isChecked():
            jobs = self.selected if self.selected_box.isChecked() else None
            return {"clean": self.kind_combo.currentData(), "jobs": jobs}
        return {"clean": None, "jobs": None, **{k: b.isChecked() for k, b in self.boxes.items()}}

    def _changed(self, *_a) -> None:
        self.run_button.setEnabled(False)  # never run a plan that does not match the options shown
        self._timer.start()

    def update_preview(self) -> None:
        self._serial += 1
        serial = self._serial
        c = self.choice()
        workers.submit(plan_for, self.project_uid, **c, on_done=lambda plan: self._show(serial, plan),
                       on_error=lambda exc: self._cannot(serial, exc), context=self)

    def _cannot(self, serial: int, exc) -> None:
        if serial == self._serial:
            self.plan = None
            fill_table(self.table, [])
            self.summary.setText(f"Cannot plan: {exc}")

    def _show(self, serial: int, plan) -> None:
        if serial != self._serial or self.pending is not None:
            return
        self.plan = plan
        fill_table(self.table, preview_rows(plan), tooltips=True)
        for r, it in enumerate(plan.items):  # every path in the tooltip of "Removes"
            self.table.item(r, 4).setToolTip("\n".join(it.paths) or self.table.item(r, 4).text())
        n = len(plan.items)
        moved = sum(i.versions.get("moved_bytes", 0) for i in plan.items if i.action == "relion_delete")
        self.summary.setText(f"{n} item(s), {human_bytes(plan.bytes)} freed ({plan.bytes:,} bytes)"
                             + (f"; {human_bytes(moved)} moved to Trash/" if moved else "") if n else
                             "Nothing to clean with these options")
        self.run_button.setText(f"Clean up {human_bytes(plan.bytes)}" if n else "Clean up")
        self.run_button.setEnabled(n > 0)
        self.preview_ready.emit(plan)

    def run_cleanup(self) -> None:
        """Carry out the plan shown on a worker (progress here and in the running-jobs panel); list the results."""
        plan, project, win = self.plan, self.project_uid, self.window_
        if plan is None or not plan.items or self.pending is not None:
            return
        self.run_button.setEnabled(False)
        for w in (*self.boxes.values(), self.clean_radio, self.options_radio, self.kind_combo, self.selected_box):
            w.setEnabled(False)
        task = win.running.add_task(f"RELION cleanup {project}: {human_bytes(plan.bytes)}")
        task.progressed.connect(self._progressed)  # a bound slot: disconnected if the dialog goes
        self.progress.setValue(0)
        self.progress.setVisible(True)
        self.summary.setText(f"Cleaning up {len(plan.items)} item(s)…")

        # the window, not the dialog, receives the end: a dialog closed (and replaced) meanwhile still
        # leaves the running-jobs panel, the status bar and the tree right
        def done(results) -> None:
            win.running.finish_task(task, "completed" if all(r.ok for r in results) else "failed")
            win.statusBar().showMessage(f"RELION cleanup of {project} freed {human_bytes(freed(results))}", 10000)
            win.watcher.poke()
            if shiboken6.isValid(self):
                self.pending = None
                self._results(plan, results)

        def failed(exc) -> None:
            win.running.finish_task(task, "failed", str(exc))
            win.report("RELION cleanup did not run", str(exc))
            if shiboken6.isValid(self):
                self.pending = None
                self.progress.setVisible(False)
                self.summary.setText(f"Cleanup did not run: {exc}")

        self.pending = workers.submit(relion_clean.execute, project, plan, task.report, on_done=done,
                                      on_error=failed, context=win)

    def _progressed(self, fraction: float, text: str) -> None:
        self.progress.setValue(int(fraction * 100))
        self.progress.setFormat(text or "%p%")

    def _results(self, plan, results) -> None:
        self.results = results
        self.progress.setValue(100)
        self.progress.setFormat("done")
        bad = [r for r in results if not r.ok]
        self.results_label.setText(f"<b>Done: freed {human_bytes(freed(results))}</b> ({freed(results):,} bytes) of "
                                   f"{human_bytes(plan.bytes)} planned; {len(results) - len(bad)} item(s) ok"
                                   + (f", {len(bad)} refused or failed" if bad else ""))
        self.results_label.setVisible(True)
        fill_table(self.results_table, result_rows(results), tooltips=True)
        self.results_table.setVisible(True)
        self.summary.setText(f"Freed {human_bytes(freed(results))}")
        self.cancel_button.setText("Close")
        self.cleanup_finished.emit(results)


class QtCryosparcPreviewDialog(QDialog):
    """What CryoSPARC's Cleanup Data would free in a CryoSPARC project, tab by tab; read only."""

    preview_ready = Signal(object)

    def __init__(self, window, project_uid: str) -> None:
        super().__init__(window)
        self.project_uid = project_uid
        self.preview = None
        self.setObjectName("cryosparcPreviewDialog")
        self.setWindowTitle(f"Cleanup Data — {project_uid} (CryoSPARC project, read-only)")
        root = QVBoxLayout(self)
        self.notice = QLabel(f"<b>{project_uid} is {READ_ONLY}.</b> These are the figures CryoSPARC's own Cleanup "
                             "Data would free, measured on disk now; clean it up from CryoSPARC. cryodesk changes "
                             "nothing here.")
        self.notice.setWordWrap(True)
        self.notice.setObjectName("readOnlyNotice")
        self.notice.setStyleSheet(palette.notice_stylesheet("warning"))
        root.addWidget(self.notice)
        self.tabs = QTabWidget()
        self.tables, self.labels = {}, {}
        for key, title in CRYOSPARC_TABS:
            page = QWidget()
            lay = QVBoxLayout(page)
            self.labels[key] = QLabel("Computing…")
            self.tables[key] = read_only_table(["Job", "Type", "CryoSPARC would free"], stretch=1)
            _fit_columns(self.tables[key], (0, 2))
            lay.addWidget(self.labels[key])
            lay.addWidget(self.tables[key])
            self.tabs.addTab(page, title)
        root.addWidget(self.tabs, 1)
        foot = QHBoxLayout()
        self.summary = QLabel("")
        foot.addWidget(self.summary, 1)
        self.close_button = QPushButton("Close")
        self.close_button.clicked.connect(self.accept)
        foot.addWidget(self.close_button)
        root.addLayout(foot)
        self.resize(900, 520)
        workers.submit(cryosparc_audit.preview, project_uid, on_done=self._show,
                       on_error=lambda exc: self.summary.setText(f"Cannot preview: {exc}"), context=self)

    def _show(self, d: dict) -> None:
        self.preview = d
        for i, (key, title) in enumerate(CRYOSPARC_TABS):
            t = d["tabs"][key]
            self.tabs.setTabText(i, f"{title} ({human_bytes(t['bytes'])})")
            self.labels[key].setText(f"{len(t['jobs'])} job(s): CryoSPARC's Cleanup Data would free "
                                     f"{human_bytes(t['bytes'])} ({t['bytes']:,} bytes)")
            fill_table(self.tables[key], [(j["uid"], j["type"].removeprefix("cryosparc."), human_bytes(j["bytes"]))
                                          for j in t["jobs"]])
        self.summary.setText("Read only: nothing in this dialog deletes or writes.")
        self.summary.setToolTip(d.get("read_only") or READ_ONLY)
        self.preview_ready.emit(d)


def open_cleanup(window, project_uid: str, kind: str):
    """The Cleanup Data dialog of another program's project (``kind`` "relion" or "cryosparc")."""
    if kind == "relion":
        shown = getattr(window, "project_uid", None) == project_uid
        return QtRelionCleanupDialog(window, project_uid, window.jobs.selected_uids() if shown else [])
    return QtCryosparcPreviewDialog(window, project_uid)


class RelionJobActions(OneDialog, QObject):
    """*Delete…* of RELION jobs (to Trash/) and *Empty RELION Trash…*: plan (worker) → confirm → execute (worker)."""

    message = Signal(str)
    done = Signal(object)  # the results of an executed plan

    def __init__(self, jobs_actions) -> None:
        super().__init__(jobs_actions)
        self.jobs = jobs_actions
        self.host = jobs_actions.host
        self.pending = None
        self.empty_trash = QAction("Empty RELION &Trash…", self)
        tip = "Remove what RELION's Delete moved to Trash/ in this RELION project (asks first, with its bytes)"
        self.empty_trash.setToolTip(tip)
        self.empty_trash.setStatusTip(tip)
        self.empty_trash.triggered.connect(lambda _=False: self.do_empty_trash())

    def is_relion(self) -> bool:
        return project_kind(self.host, getattr(self.host, "project_uid", None)) == "relion"

    def update_enabled(self) -> None:
        self.empty_trash.setEnabled(self.is_relion())
        self.empty_trash.setVisible(self.is_relion())

    def do_delete(self, uids: list[str]) -> None:
        project = self.host.project_uid
        self.message.emit(f"Planning RELION Delete of {len(uids)} job(s)…")
        self.pending = workers.submit(relion_clean.plan_delete, project, uids,
                                      on_done=lambda p: self._confirm_delete(p), on_error=self._failed, context=self)

    def _confirm_delete(self, plan) -> None:
        self.pending = None
        moved = sum(i.versions.get("moved_bytes", 0) for i in plan.items)
        dirs = [i.versions["dir"] for i in plan.items]
        text = (f"Delete {len(plan.items)} RELION job(s) (with the jobs that read them)? As RELION's Delete, each "
                f"directory moves to Trash/ ({human_bytes(moved)}, {moved:,} bytes; nothing is freed until Trash/ "
                f"is emptied; RELION's Undelete can bring them back):\n" + "\n".join(f"  {d} → Trash/{d}" for d in dirs))
        dialog = QtConfirmDialog("Delete RELION jobs", text, (), f"Move {human_bytes(moved)} to Trash", self.host)
        dialog.accepted.connect(lambda: self._execute("RELION Delete", plan))
        self._show(dialog)

    def do_empty_trash(self) -> None:
        project = self.host.project_uid
        if project is None:
            return
        self.pending = workers.submit(relion_clean.plan_empty_trash, project, on_done=self._confirm_empty,
                                      on_error=self._failed, context=self)

    def _confirm_empty(self, plan) -> None:
        self.pending = None
        if not plan.items:
            from ..core.results import Outcome

            self._show(QtRefusalDialog("emptied", [Outcome(plan.project, "empty trash", False,
                                                           f"{plan.project}: RELION's Trash/ is empty")], self.host))
            return
        text = (f"Permanently remove {len(plan.items)} job(s) from RELION's Trash/? This frees "
                f"{human_bytes(plan.bytes)} ({plan.bytes:,} bytes):\n"
                + "\n".join(f"  {i.paths[0]} ({human_bytes(i.bytes)})" for i in plan.items))
        dialog = QtConfirmDialog("Empty RELION Trash", text, (), f"Free {human_bytes(plan.bytes)}", self.host)
        dialog.accepted.connect(lambda: self._execute("Empty Trash", plan))
        self._show(dialog)

    def _execute(self, verb: str, plan) -> None:
        project = self.host.project_uid
        task = self.host.running.add_task(f"{verb} ({len(plan.items)} item(s))")

        def done(results) -> None:
            self.pending = None
            self.host.running.finish_task(task, "completed" if all(r.ok for r in results) else "failed")
            self.message.emit(f"{verb}: {sum(r.ok for r in results)} of {len(results)} item(s) done, freed "
                              f"{human_bytes(freed(results))}")
            self.jobs.changed.emit()
            bad = [r for r in results if not r.ok]
            if bad:
                from ..core.results import Outcome

                self._show(QtRefusalDialog("done", [Outcome(r.job, r.action, False, f"{r.job}: {r.message}")
                                                    for r in bad], self.host))
            self.done.emit(results)

        self.pending = workers.submit(relion_clean.execute, project, plan, task.report, on_done=done,
                                      on_error=self._failed, context=self)

    def _failed(self, exc) -> None:
        self.pending = None
        self.jobs.error.emit("The action failed", str(exc))
