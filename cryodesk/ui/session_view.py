"""Live sessions in the app: the runners of the window's engine and the session view.

:class:`LiveSessions` owns one :class:`~cryodesk.engine.live.SessionRunner`
per session this app runs (on the window's engine, the local lane), resumes
sessions left *running* or *restoring* when the app starts, and stops them
when it quits (their status stays, so the next start resumes them).

:class:`QtSessionView` is one session's window: stage counts and throughput,
the exposure table (stage, defocus, CTF fit, particles, accepted/rejected),
thresholds the user can change while it runs, and Start / Pause / Mark
completed / Compact… / Restore / Reset failed / Export particles.  Every
button calls the same core service as the ``cryodesk session`` command.
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..base.errors import CryodeskError
from ..core import sessions
from ..core.units import human_bytes
from ..engine.live import SessionRunner

COLUMNS = ["Exposure", "Stage", "Defocus (Å)", "CTF fit", "Particles", "Status", "Movie / error"]


def _on_lane(s) -> bool:
    """A restore that belongs to a SLURM lane (submitted there, or the session's lane): never run here unasked."""
    if sessions.lane_run.is_active(s):
        return True
    try:
        return s.status == "restoring" and sessions.lane_run.session_lane(s.lane) is not None
    except CryodeskError:
        return False


class LiveSessions(QObject):
    """The session runners of one engine; ``changed(project_uid, session_uid)`` when one progressed."""

    changed = Signal(str, str)
    message = Signal(str)

    def __init__(self, engine, parent=None):
        super().__init__(parent)
        self.engine = engine
        self.runners: dict[tuple[str, str], SessionRunner] = {}

    def run(self, project_uid: str, session_uid: str) -> SessionRunner | None:
        """Run the session here (it must be running or restoring); None if another process runs it."""
        key = (project_uid, session_uid)
        if key in self.runners and self.runners[key].running:
            return self.runners[key]
        runner = SessionRunner(self.engine, project_uid, session_uid, self)
        runner.changed.connect(lambda: self.changed.emit(*key))
        runner.stopped.connect(lambda why: self._stopped(key, why))
        try:
            runner.start()
        except CryodeskError as exc:
            self.message.emit(str(exc))
            runner.deleteLater()
            return None
        self.runners[key] = runner
        return runner

    def _stopped(self, key, why: str) -> None:
        runner = self.runners.pop(key, None)
        if runner is not None:
            runner.deleteLater()
        self.changed.emit(*key)
        self.message.emit(f"{key[0]} {key[1]}: {why}")

    def resume(self) -> int:
        """Run every session left running or restoring (by an app that quit or died); returns how many."""
        from ..core.projects import list_projects

        n = 0
        for p in list_projects():
            for s in sessions.list_sessions(p):
                if s.status in sessions.ACTIVE and not sessions.runner_active(p, s) and not _on_lane(s):
                    n += self.run(p.uid, s.uid) is not None
        return n

    def is_running(self, project_uid: str, session_uid: str) -> bool:
        r = self.runners.get((project_uid, session_uid))
        return r is not None and r.running

    def stop_all(self, cancel: bool = True) -> None:
        for runner in list(self.runners.values()):
            runner.stop("app closing", cancel=cancel)


class QtSessionView(QWidget):
    """One live session: its exposures, counts, thresholds and actions."""

    def __init__(self, project_uid: str, session_uid: str, live: LiveSessions, parent=None, poll_ms: int = 1000):
        super().__init__(parent, Qt.WindowType.Window)
        self.project_uid, self.session_uid, self.live = project_uid, session_uid, live
        self.setObjectName("sessionView")
        self.setWindowTitle(f"{project_uid} {session_uid} — live session")
        self.summary = QLabel()
        self.summary.setObjectName("sessionSummary")
        self.summary.setTextFormat(Qt.TextFormat.RichText)
        self.counts = QLabel()
        self.counts.setObjectName("sessionCounts")
        self.progress = QProgressBar()
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QTableWidget.SelectionBehavior.SelectRows)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._table_menu)
        self.ctf_min = QDoubleSpinBox(decimals=3, minimum=-1.0, maximum=1.0, singleStep=0.05)
        self.df_min = QDoubleSpinBox(decimals=0, minimum=0, maximum=200000, singleStep=1000)
        self.df_max = QDoubleSpinBox(decimals=0, minimum=0, maximum=200000, singleStep=1000)
        self.part_min = QSpinBox(minimum=0, maximum=1000000)
        for w, tip in ((self.ctf_min, "lowest CTF fit accepted (-1 = no limit)"),
                       (self.df_min, "smallest defocus accepted, Å (0 = no limit)"),
                       (self.df_max, "largest defocus accepted, Å (0 = no limit)"),
                       (self.part_min, "fewest particles accepted (0 = no limit)")):
            w.setToolTip(tip)
            w.setSpecialValueText("no limit")  # shown at the minimum, which means no limit
        self.apply_thresholds = QPushButton("Apply thresholds")
        form = QFormLayout()
        form.addRow("CTF fit ≥", self.ctf_min)
        form.addRow("Defocus ≥ (Å)", self.df_min)
        form.addRow("Defocus ≤ (Å)", self.df_max)
        form.addRow("Particles ≥", self.part_min)
        form.addRow(self.apply_thresholds)
        self.buttons = {}
        row = QHBoxLayout()
        for key, text, fn in (("start", "Start", self.start), ("pause", "Pause", self.pause),
                              ("complete", "Mark completed", self.complete), ("compact", "Compact…", self.compact),
                              ("restore", "Restore", self.restore), ("kill", "Kill restore", self.kill_restore),
                              ("reset", "Reset failed", self.reset_failed),
                              ("export", "Export particles", self.export)):
            b = QPushButton(text)
            b.setObjectName(f"session_{key}")
            b.clicked.connect(lambda _checked=False, fn=fn: fn())  # not fn(checked): compact(confirm=False)
            row.addWidget(b)
            self.buttons[key] = b
        self.status_line = QLabel()
        self.status_line.setObjectName("sessionMessage")
        self.status_line.setWordWrap(True)
        top = QHBoxLayout()
        left = QVBoxLayout()
        left.addWidget(self.summary)
        left.addWidget(self.counts)
        left.addWidget(self.progress)
        top.addLayout(left, 3)
        top.addLayout(form, 1)
        lay = QVBoxLayout(self)
        lay.addLayout(top)
        lay.addLayout(row)
        lay.addWidget(self.table, 1)
        lay.addWidget(self.status_line)
        self.apply_thresholds.clicked.connect(lambda _checked=False: self.set_thresholds())
        live.changed.connect(self._on_changed)
        live.message.connect(self._message)
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self.refresh)
        self._timer.start()
        self.desc: dict = {}
        self._rows: list = []
        self.refresh(thresholds=True)
        self.resize(1000, 560)

    # -- showing -------------------------------------------------------------------------------
    def _on_changed(self, project_uid: str, session_uid: str) -> None:
        if (project_uid, session_uid) == (self.project_uid, self.session_uid):
            self.refresh()

    def _message(self, text: str) -> None:
        if text.startswith(f"{self.project_uid} {self.session_uid}") or "another cryodesk" in text:
            self.status_line.setText(text)

    def refresh(self, thresholds: bool = False) -> None:
        try:
            d = sessions.describe(self.project_uid, self.session_uid)
        except CryodeskError as exc:
            self.status_line.setText(str(exc))
            return
        self.desc = d
        rate = f" · {d['throughput_per_min']:g} exposures/min" if d["throughput_per_min"] else ""
        here = " · running in this window" if self.live.is_running(self.project_uid, self.session_uid) else ""
        self.summary.setText(f"<b>{d['project']} {d['uid']}</b> {d['title']} — <b>{d['status']}</b>{here}<br>"
                             f"{d['exposures_total']} exposures · {d['accepted']} accepted "
                             f"({d['particles_accepted']} particles) · {d['rejected']} rejected{rate} · "
                             f"{human_bytes(d['size_bytes'])}<br><small>{d['params']['movies']}</small>"
                             + self._lane_text(d))
        c = d["stage_counts"]
        self.counts.setText("  ".join(f"{k}: {c[k]}" for k in sessions.STAGES))
        self.progress.setMaximum(max(1, d["exposures_total"]))
        self.progress.setValue(c["ready"])
        self.progress.setFormat(f"{c['ready']} / {d['exposures_total']} ready")
        rows = [[e["uid"], e["stage"], "" if e["defocus_A"] is None else f"{e['defocus_A']:.0f}",
                 "" if e["ctf_fit"] is None else f"{e['ctf_fit']:.3f}",
                 "" if e["n_particles"] is None else str(e["n_particles"]), e["judgement"],
                 e["error"] or e["movie"]] for e in d["exposures"]]
        if rows != self._rows:  # a long session's table is only rewritten when something changed
            self._fill(rows)
        self._rows = rows
        self._update_controls(d, thresholds)

    @staticmethod
    def _lane_text(d: dict) -> str:
        import html

        r = d.get("lane_run")
        if not r:
            return f"<br><small>restores run on lane {html.escape(d['lane'])}</small>" if d["lane"] != "local" else ""
        return (f"<br>restore on lane <b>{html.escape(r['lane'])}</b>: <b>{html.escape(r['state'])}</b>"
                f" (cluster job {html.escape(str(r.get('cluster_job_id') or '-'))})"
                + (f"<br><small>{html.escape(r['message'])}</small>" if r.get("message") else ""))

    def _fill(self, rows: list[list[str]]) -> None:
        self.table.setRowCount(len(rows))
        for i, values in enumerate(rows):
            for j, v in enumerate(values):
                item = self.table.item(i, j)
                if item is None:
                    self.table.setItem(i, j, item := QTableWidgetItem())
                item.setText(v)
                if j == 6:
                    item.setToolTip(v)

    def _update_controls(self, d: dict, thresholds: bool) -> None:
        c = d["stage_counts"]
        if thresholds:
            t = d["params"]["thresholds"]
            self.ctf_min.setValue(-1.0 if t["ctf_fit_min"] is None else t["ctf_fit_min"])
            self.df_min.setValue(t["defocus_min_A"] or 0)
            self.df_max.setValue(t["defocus_max_A"] or 0)
            self.part_min.setValue(int(t["particles_min"] or 0))
        status = d["status"]
        enabled = {"start": status in ("paused", "completed"), "pause": status == "running",
                   "complete": status in ("paused", "running"), "compact": status == "completed",
                   "restore": status in ("compacted", "restoration_failed", "restoring")
                   and not sessions.lane_run.is_active_desc(d),
                   "kill": sessions.lane_run.is_active_desc(d),
                   "reset": c["failed"] > 0 and status not in ("compacted", "compacting"),
                   "export": c["ready"] > 0 and status in ("paused", "running", "completed")}
        for key, b in self.buttons.items():
            b.setEnabled(enabled[key])
        for w in (self.ctf_min, self.df_min, self.df_max, self.part_min, self.apply_thresholds):
            w.setEnabled(status not in ("compacted", "compacting", "restoring", "restoration_failed"))

    # -- actions ---------------------------------------------------------------------------------
    def selected_exposures(self) -> list[str]:
        rows = sorted({i.row() for i in self.table.selectedIndexes()})
        return [self.table.item(r, 0).text() for r in rows if self.table.item(r, 0) is not None]

    def judge_selected(self, status: str | None) -> None:
        """Accept / reject the selected exposures by hand (None: back to the thresholds)."""
        uids = self.selected_exposures()
        if uids:
            word = {"accept": "accepted", "reject": "rejected", None: "judged by the thresholds"}[status]
            self._do(lambda: sessions.set_manual(self.project_uid, self.session_uid, uids, status),
                     f"{', '.join(uids)}: {word}")

    def _table_menu(self, pos) -> None:
        from PySide6.QtWidgets import QMenu

        if not self.selected_exposures():
            return
        menu = QMenu(self)
        for text, status in (("Accept", "accept"), ("Reject", "reject"), ("Use the thresholds", None)):
            menu.addAction(text).triggered.connect(lambda _c=False, st=status: self.judge_selected(st))
        menu.exec(self.table.viewport().mapToGlobal(pos))

    def _do(self, fn, done: str | None = None):
        try:
            out = fn()
        except CryodeskError as exc:
            self.status_line.setText(str(exc))
            return None
        if done:
            self.status_line.setText(done)
        self.refresh()
        return out

    def start(self) -> None:
        if self._do(lambda: sessions.transition(self.project_uid, self.session_uid, "start")) is not None:
            self.live.run(self.project_uid, self.session_uid)
            self.refresh()

    def pause(self) -> None:
        self._do(lambda: sessions.transition(self.project_uid, self.session_uid, "pause"),
                 "Pausing: exposures in progress finish their current stage")

    def complete(self) -> None:
        self._do(lambda: sessions.transition(self.project_uid, self.session_uid, "complete"),
                 "Marked completed: it can be compacted once its runner has stopped")

    def set_thresholds(self) -> None:
        def value(x, none):
            return None if x == none else x

        self._do(lambda: sessions.set_thresholds(
            self.project_uid, self.session_uid, ctf_fit_min=value(self.ctf_min.value(), -1.0),
            defocus_min_A=value(self.df_min.value(), 0), defocus_max_A=value(self.df_max.value(), 0),
            particles_min=value(self.part_min.value(), 0)), "Thresholds applied")

    def compaction_text(self, plan) -> str:
        d = plan.to_dict()
        lines = [f"Compacting {plan.project} {plan.session} frees {human_bytes(plan.bytes)}:"]
        lines += [f"  {k}: {human_bytes(v)} in {d['files_by_kind'][k]} file(s)" for k, v in d["bytes_by_kind"].items()]
        lines.append("Kept: " + ", ".join(d["keeps"]) + ".")
        lines.append("The session cannot be modified until it is restored.")
        lines += [f"Warning: {w}" for w in plan.warnings]
        return "\n".join(lines)

    def compact(self, confirm: bool = True) -> None:
        plan = self._do(lambda: sessions.compaction_plan(self.project_uid, self.session_uid))
        if plan is None:
            return
        text = self.compaction_text(plan)
        if confirm:
            box = QMessageBox(QMessageBox.Icon.Warning, "Compact live session", text,
                              QMessageBox.StandardButton.Ok | QMessageBox.StandardButton.Cancel, self)
            box.setObjectName("compactConfirm")
            if box.exec() != QMessageBox.StandardButton.Ok:
                return
        self.status_line.setText(f"Compacting {self.session_uid}…")
        p, s = self.project_uid, self.session_uid
        self.live.engine.submit_task(f"compact {p} {s}", lambda progress, cancel: sessions.compact(p, s, progress),
                                     "io", on_finished=self._compacted)

    def _compacted(self, status: str, payload) -> None:
        if status == "completed":
            self.status_line.setText(f"Compacted: freed {human_bytes(payload['freed_bytes'])}")
        else:
            self.status_line.setText(f"Compaction {status}: {payload}")
        self.refresh()

    def restore(self) -> None:
        """Restore here, or on the session's SLURM lane: one cluster job, submitted off the GUI thread."""
        try:
            on_lane = sessions.lane_run.session_lane(self.desc.get("lane") or "local") is not None
        except CryodeskError as exc:
            self.status_line.setText(str(exc))
            return
        if on_lane:
            self._off_thread(sessions.lane_run.restore, "Submitting the restore to lane "
                             f"{self.desc['lane']!r}…", lambda s: (s.lane_run or {}).get("message", ""))
            return
        if self._do(lambda: sessions.start_restore(self.project_uid, self.session_uid)) is not None:
            self.live.run(self.project_uid, self.session_uid)
            self.status_line.setText("Restoring: motion, CTF and extraction run again from the saved picks")
            self.refresh()

    def kill_restore(self) -> None:
        """Kill the restore on its SLURM lane (the lane's cancel command, off the GUI thread)."""
        self._off_thread(sessions.lane_run.kill, "Killing the restore on its lane…",
                         lambda outcome: f"Restore kill {outcome}: restore again to continue it")

    def _off_thread(self, fn, busy: str, said) -> None:
        from ..engine import workers

        self.status_line.setText(busy)
        for key in ("restore", "kill"):
            self.buttons[key].setEnabled(False)

        def done(result) -> None:
            self.status_line.setText(said(result))
            self.refresh()

        def failed(exc) -> None:
            self.status_line.setText(str(exc))
            self.refresh()

        workers.submit(fn, self.project_uid, self.session_uid, on_done=done, on_error=failed, context=self)

    def reset_failed(self) -> None:
        n = self._do(lambda: sessions.reset_failed(self.project_uid, self.session_uid))
        if n is not None:
            self.status_line.setText(f"{n} failed exposure(s) reset")
            if sessions.get_session(self.project_uid, self.session_uid).status in sessions.ACTIVE:
                self.live.run(self.project_uid, self.session_uid)

    def export(self) -> None:
        from ..core.jobs import create_job
        from ..core.runner import run_job

        job = self._do(lambda: create_job(self.project_uid, "session_export", None, (),
                                          {"session": self.session_uid}, f"particles of {self.session_uid}"))
        if job is None:
            return
        p = self.project_uid

        def done(status, payload):
            if status == "completed" and payload == "completed":
                self.status_line.setText(f"{p} {job.uid}: exported the accepted particles of {self.session_uid} "
                                         "(restack them before compacting the session)")
            else:
                from ..core.jobs import get_job

                error = get_job(p, job.uid).error if status == "completed" else payload
                self.status_line.setText(f"{p} {job.uid}: export failed: {error}")

        self.live.engine.submit_task(f"export {p} {self.session_uid}",
                                     lambda progress, cancel: run_job(p, job.uid, progress, cancel).status, "io",
                                     on_finished=done)

    def closeEvent(self, event) -> None:  # noqa: N802
        self._timer.stop()
        try:
            self.live.changed.disconnect(self._on_changed)
            self.live.message.disconnect(self._message)
        except (RuntimeError, TypeError):
            pass
        super().closeEvent(event)


def open_session(win, project_uid: str, session_uid: str) -> QtSessionView:
    """Show the session's window (one per session), owned by the main window ``win``."""
    views = win.__dict__.setdefault("_session_views", {})
    view = views.get((project_uid, session_uid))
    if view is None or not view.isVisible():
        view = QtSessionView(project_uid, session_uid, win.live_sessions, win)
        views[(project_uid, session_uid)] = view
    view.show()
    view.raise_()
    return view
