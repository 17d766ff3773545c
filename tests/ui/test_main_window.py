"""The main window: opening, browsing, keyboard conventions, zoom, remembered state, screenshots."""

from __future__ import annotations

from PySide6.QtCore import QPoint, QPointF, Qt

from cryodesk.ui.app import get_app


def test_empty_database_shows_empty_browser(ui_db, make_window, artifacts_dir):
    win = make_window(scope=None)
    assert win.browser.topLevelItemCount() == 0
    assert win.view.scene().snap is None
    win.grab().save(str(artifacts_dir / "ui_empty_window.png"))


def test_open_project_shows_tree_browser_and_sidebar(window, artifacts_dir):
    win = window
    scene = win.view.scene()
    assert len(scene.snap) == 9  # W1 holds J1..J9 (J10 was moved to W2)
    assert len(scene.cards) == 9  # zoomed to fit a small tree: every job is a card
    top = win.browser.topLevelItem(0)
    assert top.text(0).startswith("P1") and top.childCount() == 2
    assert "9" == top.child(0).text(1)
    assert win.sidebar.status.values and sum(win.sidebar.status.values) == int(scene.snap.size.sum())
    win.grab().save(str(artifacts_dir / "ui_main_window.png"))
    # the sidebar bars are drawn: some pixel of the status chart has the 'completed' green
    img = win.sidebar.status.grab().toImage()
    greens = sum(1 for x in range(0, img.width(), 3) for y in range(0, img.height(), 3)
                 if img.pixelColor(x, y).name() == "#34a853")
    assert greens > 20


def test_switching_workspace_marks_jobs_linked_from_elsewhere(window, qtbot):
    win = window
    with qtbot.waitSignal(win.graph_loaded, timeout=10000):
        win.browser.select_scope("P1", "W2")
    snap = win.view.scene().snap
    assert sorted(snap.uid(i) for i in range(len(snap))) == ["J1", "J10"]
    assert snap.shared[snap.index_of("J1")]


def test_keyboard_select_all_escape_and_find(window, qtbot):
    win = window
    sel = win.view.scene().selection
    win.view.setFocus()
    qtbot.keyClick(win.view, Qt.Key.Key_A, Qt.KeyboardModifier.ControlModifier)
    assert sel.count() == 9
    qtbot.keyClick(win.view, Qt.Key.Key_Escape)
    assert sel.count() == 0
    qtbot.keyClick(win, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    assert win.find_box.hasFocus()
    qtbot.keyClicks(win.find_box, "J7")
    qtbot.keyClick(win.find_box, Qt.Key.Key_Return)
    assert [win.view.scene().snap.uid(i) for i in sel.indices] == ["J7"]
    assert "J7" in win.inspector.header.text()


def test_ctrl_wheel_zooms_and_ctrl_0_fits(window, qtbot):
    win = window
    view = win.view
    fitted = view.zoom
    centre = view.viewport().rect().center()
    for _ in range(3):
        _wheel(view, centre, 120, Qt.KeyboardModifier.ControlModifier)
    assert view.zoom > fitted * 1.4
    qtbot.keyClick(view, Qt.Key.Key_0, Qt.KeyboardModifier.ControlModifier)
    assert abs(view.zoom - fitted) < 1e-6


def _wheel(view, pos: QPoint, delta: int, mods) -> None:
    from PySide6.QtGui import QWheelEvent

    ev = QWheelEvent(QPointF(pos), QPointF(view.viewport().mapToGlobal(pos)), QPoint(0, 0), QPoint(0, delta),
                     Qt.MouseButton.NoButton, mods, Qt.ScrollPhase.NoScrollPhase, False)
    get_app().sendEvent(view.viewport(), ev)


def test_window_state_and_last_scope_are_remembered(demo, make_window, qtbot, settings):
    win = make_window(scope=("P1", "W2"))
    win.close()
    assert settings.value("last/scope") == "P1/W2"
    assert settings.value("window/geometry") is not None
    again = make_window(scope=None)
    with qtbot.waitSignal(again.graph_loaded, timeout=10000):
        again.restore_last_project()
    assert (again.project_uid, again.workspace_uid) == ("P1", "W2")


def test_colour_modes_repaint(window, artifacts_dir):
    win = window
    for mode in ("size", "category", "status"):
        win.colour_actions[mode].trigger()
        assert win.view.scene().colour_mode == mode
    win.colour_combo.setCurrentIndex(1)  # the toolbar combo drives the same actions
    assert win.view.scene().colour_mode == "size" and win.colour_actions["size"].isChecked()
    win.view.grab().save(str(artifacts_dir / "ui_tree_colour_by_size.png"))


def test_dark_palette_repaints_cards_dark(window, qtbot, artifacts_dir):
    from PySide6.QtGui import QColor, QPalette

    from cryodesk.ui import palette

    app = get_app()
    old = app.palette()
    dark = QPalette(old)
    for role, colour in ((QPalette.ColorRole.Window, "#202124"), (QPalette.ColorRole.Base, "#17181a"),
                         (QPalette.ColorRole.Text, "#e8eaed"), (QPalette.ColorRole.WindowText, "#e8eaed"),
                         (QPalette.ColorRole.Button, "#303134"), (QPalette.ColorRole.ButtonText, "#e8eaed")):
        dark.setColor(role, QColor(colour))
    try:
        app.setPalette(dark)
        qtbot.wait(20)
        assert palette.is_dark()
        win = window
        win.grab().save(str(artifacts_dir / "ui_main_window_dark.png"))
        from .conftest import scene_point

        p = scene_point(win, win.view.scene().snap.index_of("J3"), 0.6, 0.9)
        assert win.view.viewport().grab().toImage().pixelColor(p).lightness() < 80  # a dark card body
    finally:
        app.setPalette(old)
