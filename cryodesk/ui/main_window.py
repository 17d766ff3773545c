"""The main window: browser | job tree | inspector, running jobs below, menus, toolbar, status bar."""

from __future__ import annotations

from PySide6.QtCore import QEvent, QSettings, QTimer, Signal
from PySide6.QtGui import QUndoStack
from PySide6.QtWidgets import QLabel, QLineEdit, QMainWindow, QMenu

from ..core import layout, projects
from ..core.graph_check import snapshot_warning
from ..core.units import human_bytes
from ..engine import workers
from .cache_panel import QtCachePanel
from .change_watcher import QtChangeWatcher
from .commands import SetJobSettingCommand, SetParamCommand
from .engine_bridge import EngineBridge
from .graph_view import QtJobGraphView
from .job_actions import JobActions
from .live_updates import LiveScope
from .main_docks import build_docks, size_docks
from .main_menus import build_menus
from .messages import QtErrorDialog
from .session import SessionControl
from .session_view import LiveSessions, open_session
from .window_dialogs import WindowDialogs

#: the version of the saved dock layout (restoreState ignores a state of another version)
STATE_VERSION = 2


class QtMainWindow(WindowDialogs, QMainWindow):
    """The cryodesk main window.

    ``graph_loaded`` fires each time a job tree is (re)loaded; ``graph_updated``
    after every change to what the tree shows: a load, or jobs patched in place
    by a change event (:mod:`cryodesk.ui.live_updates`).  ``loads`` counts loads.
    """

    graph_loaded = Signal()
    graph_updated = Signal()

    def __init__(self, settings: QSettings | None = None, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("cryodesk")
        self.setObjectName("cryodeskMainWindow")
        self.settings = settings if settings is not None else QSettings()
        self.project_uid: str | None = None
        self.workspace_uid: str | None = None
        self.undo_stack = QUndoStack(self)
        self._loader = None
        self.load_serial = 0
        self.loads = 0
        self.context_menu: QMenu | None = None
        self.cleanup_dialog = None
        self.dialog = None  # the dialog opened last from a menu (tests drive it)
        self.builder = None

        self.view = QtJobGraphView(self)
        self.setCentralWidget(self.view)
        self._resize_timer = QTimer(self)
        self._resize_timer.setSingleShot(True)
        self._resize_timer.setInterval(250)
        self._resize_timer.timeout.connect(self._resized)
        build_docks(self)

        # What the window shows follows the database's change log, whoever changed it
        # (this window included): no edit reloads the tree by itself.
        self.watcher = QtChangeWatcher(parent=self)
        self.live = LiveScope(self)
        self.watcher.changed.connect(self.live.apply)
        self.watcher.failed.connect(lambda m: self.statusBar().showMessage(f"Cannot follow changes: {m}", 8000))
        self.bridge = EngineBridge(self.running, self)
        self.bridge.activity.connect(self.watcher.poke)
        self.live_sessions = LiveSessions(self.bridge.engine, self)  # live sessions run on this engine (issue 14)
        self.session = SessionControl(self)
        self.error_dialog: QtErrorDialog | None = None
        self.jobs = JobActions(self)
        self.find_box = QLineEdit()
        self.find_box.setPlaceholderText("Find job  Ctrl+F")
        self.find_box.setToolTip("Find a job by uid (J12) or by a word of its title; Enter selects it")
        self.find_box.setObjectName("findBox")
        self.find_box.setMaximumWidth(230)
        self.find_box.setMinimumWidth(150)
        self.find_box.returnPressed.connect(lambda: self.find(self.find_box.text()))
        self.status_scope = QLabel("")
        self.status_sel = QLabel("")
        self.status_zoom = QLabel("")
        for w in (self.status_scope, self.status_sel):
            self.statusBar().addWidget(w)
        self.statusBar().addPermanentWidget(self.status_zoom)
        build_menus(self)

        scene = self.view.scene()
        scene.selection.changed.connect(self._on_selection)
        self.view.context_menu.connect(self._context_menu)
        self.view.ghost_activated.connect(self.open_ghost)
        self.view.zoom_changed.connect(lambda z: self.status_zoom.setText(f"zoom {z * 100:.0f}%"))
        self.browser.scope_selected.connect(self.open_scope)
        self.browser.session_activated.connect(lambda p, s: open_session(self, p, s))
        self.inspector.param_edited.connect(self._edit_param)
        self.inspector.setting_edited.connect(self._edit_setting)
        self.inspector.job_link.connect(self.select_uid)
        self.jobs.changed.connect(self.watcher.poke)
        self.jobs.message.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self.jobs.error.connect(lambda what, cause: self.report(what, cause, dialog=True))
        self.jobs.next_step.connect(lambda type_name, _uid, choice: self.open_builder(type_name, [choice]))
        self.jobs.warmed.connect(lambda _stats: self.cache_panel.isVisible() and self.cache_panel.refresh())
        self.cache_panel.message.connect(lambda m: self.statusBar().showMessage(m, 8000))
        self.jobs.update_enabled()
        self.refresh_browser()
        self.watcher.start()
        self.session.refresh_running()  # jobs an earlier session left running in the background show now
        self.live_sessions.resume()  # live sessions left running or restoring continue where they were
        geometry = self.settings.value("window/geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
            # a state saved by an older layout (other docks) is ignored, not half-applied
            self.restoreState(self.settings.value("window/state"), STATE_VERSION)
        else:
            self.resize(1400, 860)
            size_docks(self, 1400, 860)

    # -- scope -------------------------------------------------------------
    def workspaces(self) -> list[tuple[str, str]]:
        for row in self.browser.rows:
            if row["uid"] == self.project_uid:
                return [(w["uid"], w["title"]) for w in row["workspaces"]]
        return []

    def refresh_browser(self) -> None:
        """Re-read the project list now (explicit refreshes; change events refresh it on a worker)."""
        self.set_browser_rows(projects.project_summaries())

    def set_browser_rows(self, rows: list[dict]) -> None:
        """Show new project summaries in the browser and the sidebar."""
        self.browser.set_rows(rows)
        self._update_sidebar()

    _sidebar = None

    @property
    def sidebar(self):
        """The data sidebar (size charts), made on first use."""
        if self._sidebar is None:
            from .sidebar import QtDataSidebar

            self._sidebar = QtDataSidebar()
            self.sidebar_scroll.setWidget(self._sidebar)
            self._sidebar.cleanup_button.clicked.connect(lambda: self.open_cleanup())
            self._fill_sidebar()
        return self._sidebar

    def _update_sidebar(self) -> None:
        if self.view.scene().snap is None:
            return
        if self._sidebar is None:
            # the first tree paints before the charts are made (and their module imported)
            QTimer.singleShot(0, self, lambda: self.sidebar)
            return
        self._fill_sidebar()

    def _fill_sidebar(self) -> None:
        snap = self.view.scene().snap
        if snap is None:
            return
        for row in self.browser.rows:
            if row["uid"] == snap.project_uid:
                self.sidebar.set_data(row, layout.breakdown(snap), snap.workspace_uid or "")

    def restore_last_project(self) -> None:
        """Re-open the scope shown when the app was last closed (if it still exists)."""
        last = self.settings.value("last/scope")
        if last and self.browser.select_scope(*str(last).split("/", 1) if "/" in str(last) else (str(last), "")):
            return
        if self.browser.rows:
            first = self.browser.rows[0]
            ws = first["workspaces"][0]["uid"] if first["workspaces"] else ""
            self.browser.select_scope(first["uid"], ws)

    def open_scope(self, project_uid: str, workspace_uid: str = "", keep_view: bool = False) -> None:
        """Load the job tree of a project (all jobs) or one workspace, off the GUI thread."""
        new_scope = (project_uid, workspace_uid or None) != (self.project_uid, self.workspace_uid)
        self.project_uid, self.workspace_uid = project_uid, workspace_uid or None
        self.settings.setValue("last/scope", f"{project_uid}/{workspace_uid}" if workspace_uid else project_uid)
        self.load_serial += 1
        serial = self.load_serial
        self.status_scope.setText(f"{project_uid}{'/' + workspace_uid if workspace_uid else ''}: loading…")
        opening = project_uid != self._opened_project
        self._opened_project = project_uid
        vp = self.view.viewport().size()
        self._loader = workers.submit(_load_scope, project_uid, workspace_uid or None, opening,
                                      (max(200, vp.width()), max(150, vp.height())), context=self,
                                      on_done=lambda snap: self._show_graph(serial, snap, new_scope and not keep_view),
                                      on_error=lambda exc: self._load_failed(serial, exc))

    _opened_project: str | None = None
    _select_after_load: str | None = None

    def open_ghost(self, k: int) -> None:
        """Open the workspace a ghost card's job lives in, with that job selected."""
        snap = self.view.scene().snap
        ghosts = snap.ghosts
        ws = ghosts.first_workspace(k)
        if not ws:
            self.statusBar().showMessage(f"{ghosts.uid(k)} is in no workspace", 8000)
            return
        self._select_after_load = ghosts.uid(k)
        if not self.browser.select_scope(snap.project_uid, ws):
            self.open_scope(snap.project_uid, ws)

    @property
    def loading(self) -> bool:
        """A load of the scope is running (change events wait for it)."""
        return self._loader is not None

    def _show_graph(self, serial: int, snap, fit: bool) -> None:
        if serial != self.load_serial:  # a newer load superseded this one
            return
        self._loader = None
        self.loads += 1
        self.view.scene().set_snapshot(snap, keep_selection=not fit)
        if fit:
            self.view.open_fit()
        if self._select_after_load is not None:
            uid, self._select_after_load = self._select_after_load, None
            if snap.index_of(uid) is not None:
                self.select_uid(uid)
        self._show_totals(snap)
        cyclic = snapshot_warning(snap)  # a damaged database: said, never looped on (issue 20)
        if cyclic:
            self.statusBar().showMessage(cyclic)
        self.session.refresh_running()
        self._update_sidebar()
        self.live.loaded()
        self.graph_loaded.emit()
        self.graph_updated.emit()

    def _load_failed(self, serial: int, exc) -> None:
        if serial != self.load_serial:
            return
        self._loader = None
        self.report(f"Cannot load {self.project_uid}{'/' + self.workspace_uid if self.workspace_uid else ''}",
                    str(exc))
        self.live.loaded()

    def _show_totals(self, snap) -> None:
        scope = f"{snap.project_uid}{'/' + snap.workspace_uid if snap.workspace_uid else ''}"
        self.status_scope.setText(f"{scope}: {len(snap)} jobs, {human_bytes(int(snap.size.sum()))}")

    def jobs_patched(self, indices) -> None:
        """Jobs ``indices`` of the shown snapshot were patched in place: update what shows them."""
        snap = self.view.scene().snap
        self._show_totals(snap)
        self._update_sidebar()
        sel = self.view.scene().selection.indices
        if len(sel) and len(set(sel.tolist()) & set(indices.tolist())):
            self._on_selection()  # the inspector shows what changed
        self.graph_updated.emit()

    def reload_scope(self) -> None:
        """Load the shown scope again, keeping view and selection (its jobs or edges changed)."""
        if self.project_uid is not None:
            self.open_scope(self.project_uid, self.workspace_uid or "", keep_view=True)

    def reload(self) -> None:
        """Refresh (F5): re-read the browser and the tree (selection kept)."""
        self.refresh_browser()
        self.reload_scope()

    # -- selection ----------------------------------------------------------
    def _on_selection(self) -> None:
        scene = self.view.scene()
        snap, idx = scene.snap, scene.selection.indices
        self.jobs.update_enabled()
        if snap is None or len(idx) == 0:
            self.inspector.show_nothing()
            self.status_sel.setText("")
            return
        self.status_sel.setText(f"{len(idx)} selected ({human_bytes(int(snap.size[idx].sum()))})")
        if len(idx) == 1:
            self.inspector.show_job(self.project_uid, snap.uid(int(idx[0])))
        else:
            self.inspector.show_selection(snap, idx)

    def select_uid(self, uid: str) -> None:
        snap = self.view.scene().snap
        i = None if snap is None else snap.index_of(uid)
        if i is None:
            self.statusBar().showMessage(f"{uid} is not in this view", 5000)
            return
        self.view.scene().selection.set([i])
        self.view.center_on_job(i)

    def find(self, text: str) -> int:
        """Select jobs whose uid is ``text`` or whose title contains it; returns how many matched."""
        snap = self.view.scene().snap
        text = text.strip()
        if snap is None or not text:
            return 0
        i = snap.index_of(text)
        hits = [i] if i is not None else [k for k, t in enumerate(snap.titles) if text.lower() in t.lower()]
        if not hits:
            self.statusBar().showMessage(f"No job matches {text!r}", 5000)
            return 0
        self.view.scene().selection.set(hits)
        self.view.center_on_job(hits[0])
        self.view.setFocus()
        return len(hits)

    def _context_menu(self, global_pos, index) -> None:
        if self.context_menu is not None:
            self.context_menu.deleteLater()
        menu = QMenu(self)
        self.jobs.populate_menu(menu)
        self.context_menu = menu  # kept so tests can reach it
        menu.popup(global_pos)

    def _edit_param(self, uid: str, key: str, old, new_text: str) -> None:
        cmd = SetParamCommand(self.project_uid, uid, key, old, new_text, on_change=self.watcher.poke)
        self.undo_stack.push(cmd)
        if cmd.error is not None:
            self.statusBar().showMessage(str(cmd.error), 8000)
            self.inspector.show_job(self.project_uid, uid)

    def _edit_setting(self, uid: str, name: str, old, new) -> None:
        cmd = SetJobSettingCommand(self.project_uid, uid, name, old, new, on_change=self.watcher.poke)
        self.undo_stack.push(cmd)
        if cmd.error is not None:
            self.report(f"{uid}: {name} was not changed", str(cmd.error))
        self.inspector.show_job(self.project_uid, uid)

    # -- cleanup -------------------------------------------------------------------
    def open_cleanup(self, project_uid: str | None = None, workspace_uid: str | None = None):
        """Open the Cleanup Data dialog for a project or workspace (default: the current scope)."""
        project_uid = project_uid or self.project_uid
        if project_uid is None:
            return None
        from .cleanup_dialog import QtCleanupDialog
        from .foreign_cleanup import open_cleanup, project_kind

        if self.cleanup_dialog is not None:
            self.cleanup_dialog.deleteLater()
        kind = project_kind(self, project_uid)  # RELION's rules, or CryoSPARC's figures read only (issue 16)
        dialog = (open_cleanup(self, project_uid, kind) if kind != "cryodesk" else
                  QtCleanupDialog(self, project_uid, workspace_uid if workspace_uid is not None else self.workspace_uid))
        self.cleanup_dialog = dialog
        dialog.open()
        return dialog

    def open_cache_panel(self) -> QtCachePanel:
        """Show the SSD cache panel (Data ▸ SSD cache…) with fresh figures."""
        dock = self.docks["SSD cache"]
        was_visible = dock.isVisible()
        dock.show()
        dock.raise_()
        if was_visible:  # showing it refreshes; an already visible panel is refreshed here
            self.cache_panel.refresh()
        return self.cache_panel

    # -- job types (loaded after the window shows) ----------------------------------------------
    job_types_ready = False

    def load_job_types(self) -> None:
        """Import the built-in job types on a worker (about a second: numba kernels); the tree is
        already on screen, and its cards get their categories when they arrive."""
        import sys

        if "cryodesk.jobs" in sys.modules and sys.modules["cryodesk.jobs"].all_loaded():  # (else: on demand)
            self._job_types_loaded(None)
            return
        from ..engine import ensure_job_types

        self._types_worker = workers.submit(ensure_job_types, context=self, on_done=self._job_types_loaded,
                                            on_error=lambda exc: self.report("Cannot load the job types", str(exc)))

    def _job_types_loaded(self, _result) -> None:
        self.job_types_ready = True
        snap = self.view.scene().snap
        if snap is not None:
            changed = layout.recategorise(snap)
            if len(changed):
                self.view.scene().refresh_jobs(changed)
        self._on_selection()  # menus and the inspector judge the job types now known

    def set_colour_mode(self, mode: str) -> None:
        self.view.scene().set_colour_mode(mode)

    # -- lifecycle --------------------------------------------------------------
    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        if not getattr(self, "_closed", False):  # (a resize while closing re-wraps nothing)
            self._resize_timer.start()

    def _resized(self) -> None:
        """After a resize: docks give the tree room, and a workspace-sized tree re-wraps to the new view."""
        w, h = self.width(), self.height()
        central = self.centralWidget().size()
        if central.height() < 0.45 * h or central.width() < 0.4 * w:
            size_docks(self, w, h)
        scene = self.view.scene()
        snap = scene.snap
        if snap is None or self.loading or self.view.user_moved or snap.layout_kind != "routed" or len(snap) > 300:
            return
        vp = self.view.viewport().size()
        placed = layout.place_snapshot(snap, (vp.width(), vp.height()))  # cached; a few ms at this size
        if placed.bands == snap.bands and (placed.x[:len(snap)] == snap.x).all():
            return
        snap.apply_placement(placed)
        scene.set_snapshot(snap, keep_selection=True)
        self.view.open_fit()

    def changeEvent(self, event) -> None:  # noqa: N802
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            self.view.scene().repaint_items()  # cards pick light/dark colours at paint time
        super().changeEvent(event)

    def run_task(self, name: str, fn, task, on_done) -> None:
        """Run ``fn(progress, cancel)`` as a background task shown in the running-jobs panel."""
        self.bridge.run_task(name, fn, task, on_done, on_error=lambda msg: self.report(f"{name} did not finish", msg,
                                                                                       dialog=True))

    def report(self, what: str, cause: str = "", dialog: bool = False) -> None:
        """An error the user must not miss: kept in the Messages panel; ``dialog`` also asks for attention."""
        self.messages.error(f"{what}: {cause}" if cause else what)
        self.statusBar().showMessage(f"{what}: {cause}" if cause else what, 8000)
        if dialog:
            if self.error_dialog is not None:
                self.error_dialog.deleteLater()
            self.error_dialog = QtErrorDialog("cryodesk", what, cause, self)
            self.error_dialog.open()

    def save_state(self) -> None:
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(STATE_VERSION))

    def close_threads(self) -> None:
        """Stop following changes, stop the engine, wait for every worker (on close)."""
        self._closed = True
        self._resize_timer.stop()
        self.watcher.stop()
        self.running.stop()
        self.live_sessions.stop_all()
        self.bridge.shutdown()

    def closeEvent(self, event) -> None:  # noqa: N802
        # jobs of this window's engine never die silently with it: ask first (session.py)
        if not self.session.may_close():
            event.ignore()
            return
        self.save_state()
        self.close_threads()
        super().closeEvent(event)


def _load_scope(project_uid: str, workspace_uid: str | None, opening: bool, view=None):
    """Worker body: on first opening a project, finish any deletion a crash left
    half-done and measure it if it never was; then load its job graph."""
    if opening:
        from ..core.cleanup import on_project_open

        on_project_open(project_uid)
    return layout.load_graph(project_uid, workspace_uid, view)
