"""Menus, toolbar and shortcuts of the main window (desktop conventions: Ctrl+A, Delete, Esc, Ctrl+F, Ctrl+0)."""

from __future__ import annotations

import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QActionGroup, QKeySequence
from PySide6.QtWidgets import QComboBox

from .palette import COLOUR_MODES


def _act(win, text, slot, shortcut=None, tip="") -> QAction:
    act = QAction(text, win)
    if shortcut is not None:
        act.setShortcut(QKeySequence(shortcut))
    if tip:
        act.setStatusTip(tip)
    act.triggered.connect(slot)
    return act


def _view_local(win, *acts) -> None:
    """Shortcuts that act on the tree only while it has focus (Delete must not fire while editing text)."""
    for act in acts:
        act.setShortcutContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
        win.view.addAction(act)


def _open_lanes(win):
    from .lane_dialogs import open_lanes_dialog

    return open_lanes_dialog(win)


def build_menus(win) -> None:
    """Create ``win.actions`` (a dict by name) and the menu bar and toolbar using them."""
    scene = win.view.scene()
    a = {
        "refresh": _act(win, "&Refresh", win.reload, QKeySequence.StandardKey.Refresh),
        "quit": _act(win, "&Quit", win.close, QKeySequence.StandardKey.Quit,
                     tip="Quit; if jobs are running, asks whether to keep them running in the background"),
        "new_project": _act(win, "&New project…", lambda: win.open_new_project(), QKeySequence.StandardKey.New,
                            tip="Create a project in a new or empty directory"),
        "new_workspace": _act(win, "New &workspace…", lambda: win.open_new_workspace(), "Ctrl+Shift+N",
                              tip="Create a workspace in the current project"),
        "project_settings": _act(win, "&Project settings…", lambda: win.open_project_settings(),
                                 tip="Defaults for this project's jobs: intermediate results, SSD caching"),
        "cache_settings": _act(win, "SSD cache se&ttings…", lambda: win.open_cache_settings(),
                               tip="This workstation's SSD cache: path, quota, reserve, threads, lifetime"),
        "new_job": _act(win, "New &job…", lambda: win.open_builder(), "Ctrl+B",
                        tip="Build a job: choose its type, connect its inputs, set its parameters, queue it"),
        # fixed texts: the toolbar must not jump when the command to undo changes (its name is the tooltip)
        "undo": _act(win, "&Undo", win.undo, QKeySequence.StandardKey.Undo),
        "redo": _act(win, "&Redo", win.redo, QKeySequence.StandardKey.Redo),
        "select_all": _act(win, "Select &all", scene.selection.select_all, QKeySequence.StandardKey.SelectAll),
        "clear_selection": _act(win, "Clear selection", scene.selection.clear, "Esc"),
        "find": _act(win, "&Find job…", lambda: (win.find_box.setFocus(), win.find_box.selectAll()),
                     QKeySequence.StandardKey.Find),
        "zoom_in": _act(win, "Zoom &in", lambda: win.view.zoom_by(1.25), QKeySequence.StandardKey.ZoomIn),
        "zoom_out": _act(win, "Zoom &out", lambda: win.view.zoom_by(0.8), QKeySequence.StandardKey.ZoomOut),
        "fit": _act(win, "&Fit tree", win.view.fit, "Ctrl+0"),
        "cleanup": _act(win, "&Cleanup Data…", lambda: win.open_cleanup(), tip="Plan and run a data cleanup"),
        "lanes": _act(win, "&Lanes…", lambda: _open_lanes(win), tip="Where jobs run: lanes and their status"),
        "cache": _act(win, "&SSD cache…", lambda: win.open_cache_panel(),
                      tip="SSD particle cache: space used, entries by project, locks; clear it"),
    }
    _follow_undo_stack(win, a["undo"], a["redo"])
    _view_local(win, a["select_all"], a["clear_selection"], win.jobs.delete)
    win.actions = a
    mb = win.menuBar()
    m = mb.addMenu("&File")
    for key in ("new_project", "new_workspace", None, "project_settings", None):
        m.addSeparator() if key is None else m.addAction(a[key])
    m.addAction(a["refresh"])
    from .foreign_actions import install as install_foreign  # RELION / CryoSPARC folders (issue 16)

    install_foreign(win, m, before=a["new_workspace"])
    m.addSeparator()
    m.addAction(a["quit"])
    m = mb.addMenu("&Edit")
    for key in ("undo", "redo", None, "select_all", "clear_selection", "find"):
        m.addSeparator() if key is None else m.addAction(a[key])
    m = mb.addMenu("&View")
    for key in ("zoom_in", "zoom_out", "fit"):
        m.addAction(a[key])
    colour = m.addMenu("&Colour by")
    group = QActionGroup(win)
    win.colour_actions = {}
    for mode in COLOUR_MODES:
        act = colour.addAction(mode.capitalize())
        act.setCheckable(True)
        act.setChecked(mode == "status")
        act.triggered.connect(lambda _=False, md=mode: win.set_colour_mode(md))
        group.addAction(act)
        win.colour_actions[mode] = act
    m.addSeparator()
    for dock in win.docks.values():
        m.addAction(dock.toggleViewAction())
    job_menu = mb.addMenu("&Job")
    job_menu.addAction(a["new_job"])
    job_menu.addSeparator()
    win.jobs.populate_menu(job_menu)
    from .project_actions import install  # archive, move, delete…: the project's lifecycle (issue 15)

    install(win, mb.addMenu("&Project"))
    m = mb.addMenu("&Data")
    m.addAction(a["cleanup"])
    m.addAction(a["cache"])
    m.addAction(a["lanes"])
    m.addAction(a["cache_settings"])
    m.addAction(win.jobs.warm)
    tb = win.addToolBar("Main")
    tb.setObjectName("mainToolbar")
    # lean enough to fit at 1024 px with the find box (zoom: View menu, Ctrl+wheel, Ctrl+=/-)
    for act in (a["refresh"], a["undo"], a["redo"], None, a["new_job"], win.jobs.run, win.jobs.kill, None,
                win.jobs.mark_final, win.jobs.clear, win.jobs.delete, None, a["cleanup"], a["fit"]):
        tb.addSeparator() if act is None else tb.addAction(act)
    tb.addSeparator()
    combo = QComboBox()
    combo.setObjectName("colourMode")
    combo.setToolTip("Colour the job cards by status, size (heat map) or category")
    for mode in COLOUR_MODES:
        combo.addItem(mode.capitalize(), mode)
    combo.currentIndexChanged.connect(lambda k: win.colour_actions[COLOUR_MODES[k]].trigger())
    for k, mode in enumerate(COLOUR_MODES):
        win.colour_actions[mode].triggered.connect(lambda _=False, i=k: (combo.blockSignals(True),
                                                                          combo.setCurrentIndex(i),
                                                                          combo.blockSignals(False)))
    win.colour_combo = combo
    combo.setToolTip("Colour the job cards by status, size (heat map) or category")
    tb.addWidget(combo)
    tb.addSeparator()
    tb.addWidget(win.find_box)
    win.browser.cleanup_requested.connect(lambda p, w: win.open_cleanup(p, w))


def _follow_undo_stack(win, undo, redo) -> None:
    """Undo/Redo keep their text; what they would undo is their tooltip, and they are enabled when
    the stack can.  (QUndoStack's own actions rename themselves: the toolbar's buttons jumped.)"""
    stack = win.undo_stack

    def sync(*_args) -> None:
        if not (shiboken6.isValid(stack) and shiboken6.isValid(undo)):
            return  # the window is being destroyed: its stack clears itself
        undo.setEnabled(stack.canUndo())
        redo.setEnabled(stack.canRedo())
        undo.setToolTip(f"Undo {stack.undoText()}" if stack.canUndo() else "Nothing to undo")
        redo.setToolTip(f"Redo {stack.redoText()}" if stack.canRedo() else "Nothing to redo")
        undo.setStatusTip(undo.toolTip())
        redo.setStatusTip(redo.toolTip())

    stack.indexChanged.connect(sync)
    stack.cleanChanged.connect(sync)
    sync()
