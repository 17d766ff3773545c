"""Menus, toolbar and shortcuts of the main window (desktop conventions: Ctrl+A, Delete, Esc, Ctrl+F, Ctrl+0)."""

from __future__ import annotations

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


def build_menus(win) -> None:
    """Create ``win.actions`` (a dict by name) and the menu bar and toolbar using them."""
    scene = win.view.scene()
    a = {
        "refresh": _act(win, "&Refresh", win.reload, QKeySequence.StandardKey.Refresh),
        "quit": _act(win, "&Quit", win.close, QKeySequence.StandardKey.Quit),
        "undo": win.undo_stack.createUndoAction(win, "&Undo"),
        "redo": win.undo_stack.createRedoAction(win, "&Redo"),
        "select_all": _act(win, "Select &all", scene.selection.select_all, QKeySequence.StandardKey.SelectAll),
        "clear_selection": _act(win, "Clear selection", scene.selection.clear, "Esc"),
        "find": _act(win, "&Find job…", lambda: (win.find_box.setFocus(), win.find_box.selectAll()),
                     QKeySequence.StandardKey.Find),
        "zoom_in": _act(win, "Zoom &in", lambda: win.view.zoom_by(1.25), QKeySequence.StandardKey.ZoomIn),
        "zoom_out": _act(win, "Zoom &out", lambda: win.view.zoom_by(0.8), QKeySequence.StandardKey.ZoomOut),
        "fit": _act(win, "&Fit tree", win.view.fit, "Ctrl+0"),
        "cleanup": _act(win, "&Cleanup Data…", lambda: win.open_cleanup(), tip="Plan and run a data cleanup"),
        "cache": _act(win, "&SSD cache…", lambda: win.open_cache_panel(),
                      tip="SSD particle cache: space used, entries by project, locks; clear it"),
    }
    a["undo"].setShortcut(QKeySequence.StandardKey.Undo)
    a["redo"].setShortcut(QKeySequence.StandardKey.Redo)
    _view_local(win, a["select_all"], a["clear_selection"], win.jobs.delete)
    win.actions = a
    mb = win.menuBar()
    m = mb.addMenu("&File")
    m.addAction(a["refresh"])
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
    win.jobs.populate_menu(job_menu)
    from .project_actions import install  # archive, move, delete…: the project's lifecycle (issue 15)

    install(win, mb.addMenu("&Project"))
    m = mb.addMenu("&Data")
    m.addAction(a["cleanup"])
    m.addAction(a["cache"])
    m.addAction(win.jobs.warm)
    tb = win.addToolBar("Main")
    tb.setObjectName("mainToolbar")
    for act in (a["refresh"], a["undo"], a["redo"], None, a["zoom_in"], a["zoom_out"], a["fit"], None,
                win.jobs.mark_final, win.jobs.clear, win.jobs.delete, None, a["cleanup"], a["cache"]):
        tb.addSeparator() if act is None else tb.addAction(act)
    tb.addSeparator()
    combo = QComboBox()
    combo.setObjectName("colourMode")
    combo.setToolTip("Colour the job cards by status, size (heat map) or category")
    for mode in COLOUR_MODES:
        combo.addItem(f"Colour: {mode}", mode)
    combo.currentIndexChanged.connect(lambda k: win.colour_actions[COLOUR_MODES[k]].trigger())
    for k, mode in enumerate(COLOUR_MODES):
        win.colour_actions[mode].triggered.connect(lambda _=False, i=k: (combo.blockSignals(True),
                                                                          combo.setCurrentIndex(i),
                                                                          combo.blockSignals(False)))
    win.colour_combo = combo
    tb.addWidget(combo)
    tb.addSeparator()
    tb.addWidget(win.find_box)
    win.sidebar.cleanup_button.clicked.connect(lambda: win.open_cleanup())
    win.browser.cleanup_requested.connect(lambda p, w: win.open_cleanup(p, w))
