"""Selection gestures driven with real mouse events: click, Ctrl-click, rubber band, Shift-drag, context menu."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QContextMenuEvent
from PySide6.QtWidgets import QApplication

from .conftest import scene_point


def _uids(win):
    snap = win.view.scene().snap
    return sorted((snap.uid(i) for i in win.view.scene().selection.indices), key=lambda u: int(u[1:]))


def _idx(win, uid):
    return win.view.scene().snap.index_of(uid)


def _drag(qtbot, win, start: QPoint, end: QPoint, mods=Qt.KeyboardModifier.NoModifier, during=None):
    vp = win.view.viewport()
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, mods, start)
    mid = (start + end) / 2
    qtbot.mouseMove(vp, mid)
    qtbot.mouseMove(vp, end)
    if during is not None:
        during()
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, mods, end)


def test_click_and_ctrl_click(window, qtbot):
    win = window
    vp = win.view.viewport()
    qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, pos=scene_point(win, _idx(win, "J3")))
    assert _uids(win) == ["J3"]
    qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                     scene_point(win, _idx(win, "J5")))
    assert _uids(win) == ["J3", "J5"]
    qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                     scene_point(win, _idx(win, "J3")))
    assert _uids(win) == ["J5"]
    assert "J5" in win.inspector.header.text()


def test_rubber_band_drag_selects_region_and_shift_drag_adds(window, qtbot, artifacts_dir):
    win = window
    # from above-left of J3 to below-right of J4: a region holding exactly J3 and J4 (one column)
    j3, j4 = _idx(win, "J3"), _idx(win, "J4")
    start = scene_point(win, j3, -0.05, -0.1)
    end = scene_point(win, j4, 1.05, 1.1)
    def mid_drag():
        assert win.view.scene().rubber_band.isVisible()
        win.view.grab().save(str(artifacts_dir / "ui_rubber_band_dragging.png"))

    _drag(qtbot, win, start, end, during=mid_drag)
    assert _uids(win) == ["J3", "J4"]
    assert not win.view.scene().rubber_band.isVisible()
    assert "2 jobs selected" in win.inspector.header.text()
    win.view.grab().save(str(artifacts_dir / "ui_rubber_band_selection.png"))
    j6 = _idx(win, "J6")
    _drag(qtbot, win, scene_point(win, j6, -0.1, -0.2), scene_point(win, j6, 1.1, 1.2),
          Qt.KeyboardModifier.ShiftModifier)
    assert _uids(win) == ["J3", "J4", "J6"]
    # a plain drag replaces the selection; a click on the background clears it
    _drag(qtbot, win, scene_point(win, j6, -0.1, -0.2), scene_point(win, j6, 1.1, 1.2))
    assert _uids(win) == ["J6"]
    qtbot.mouseClick(win.view.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(5, 5))
    assert _uids(win) == []


def _context_action(win, qtbot, uid, text):
    """Right-click job ``uid`` and return the context menu's action named ``text``."""
    vp = win.view.viewport()
    pos = scene_point(win, _idx(win, uid))
    qtbot.mouseClick(vp, Qt.MouseButton.RightButton, pos=pos)
    # QTest bypasses the window system, which turns a right press into a context-menu event
    QApplication.sendEvent(vp, QContextMenuEvent(QContextMenuEvent.Reason.Mouse, pos, vp.mapToGlobal(pos)))
    qtbot.waitUntil(lambda: getattr(win, "context_menu", None) is not None and win.context_menu.isVisible())
    menu = win.context_menu
    act = next(a for a in menu.actions() if a.text().replace("&", "") == text)
    return menu, act


def test_select_chain_from_context_menu(window, qtbot, artifacts_dir):
    win = window
    vp = win.view.viewport()
    qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, pos=scene_point(win, _idx(win, "J2")))
    qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                     scene_point(win, _idx(win, "J6")))
    menu, act = _context_action(win, qtbot, "J6", "Select job chain")
    assert act.isEnabled()
    menu.grab().save(str(artifacts_dir / "ui_context_menu.png"))
    act.trigger()
    menu.close()
    assert _uids(win) == ["J2", "J3", "J4", "J5", "J6"]


def test_chain_between_unrelated_jobs_is_explained(window, qtbot):
    win = window
    vp = win.view.viewport()
    qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, pos=scene_point(win, _idx(win, "J3")))
    qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.ControlModifier,
                     scene_point(win, _idx(win, "J8")))
    win.jobs.select_chain.trigger()
    dialog = win.jobs.dialog
    assert dialog is not None and "neither is an ancestor" in dialog.table.item(0, 1).text()
    qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    assert win.jobs.dialog is None


def test_select_ancestors_and_descendants(window, qtbot):
    win = window
    menu, act = _context_action(win, qtbot, "J5", "Select ancestors")
    act.trigger()
    menu.close()
    assert _uids(win) == ["J1", "J2", "J3", "J4", "J5"]
    menu, act = _context_action(win, qtbot, "J7", "Select descendants")
    assert _uids(win) == ["J7"]  # right-click on an unselected job selects it
    act.trigger()
    menu.close()
    assert _uids(win) == ["J7", "J8", "J9"]
