"""Settings in the GUI (project defaults, this workstation's SSD cache, a job's own value), a stable
toolbar whose redo says when it cannot apply, errors that stay and say their cause, ghost parents,
the window at 1024x700 and dark mode."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QColor, QPalette

from cryodesk.core import actions, jobs, settings_service
from cryodesk.ui.app import get_app

from .test_actions import _select, _updated


@pytest.fixture(autouse=True)
def _own_user_settings(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))  # never the real ~/.config
    monkeypatch.setenv("CRYODESK_WORKER", "testbox")


def _value(view, name):
    row = next(r for r in view["settings"] if r["name"] == name)
    return row["value"], row["level"]


def test_project_settings_dialog_sets_and_unsets_project_defaults(demo, make_window, qtbot, artifacts_dir):
    win = make_window()
    win.actions["project_settings"].trigger()
    dialog = win.dialog
    qtbot.waitUntil(lambda: dialog.loads == 1, timeout=10000)
    row = dialog.rows["delete_intermediate"]
    assert row.editor.currentData() == "inherit" and "inherit: on (default)" in row.editor.currentText()
    assert "now: on (from default)" in row.note.text()
    dialog.grab().save(str(artifacts_dir / "ui_project_settings.png"))
    qtbot.keyClick(row.editor, Qt.Key.Key_Down)
    qtbot.keyClick(row.editor, Qt.Key.Key_Down)  # inherit -> on -> off
    assert row.wanted() is False
    with qtbot.waitSignal(dialog.saved, timeout=10000):
        qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
    assert _value(settings_service.settings_view(project="P1"), "delete_intermediate") == (False, "project")
    qtbot.waitUntil(lambda: dialog.loads == 2, timeout=10000)
    row = dialog.rows["delete_intermediate"]
    assert "now: off (from project)" in row.note.text()
    row.set_value("inherit")
    with qtbot.waitSignal(dialog.saved, timeout=10000):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    assert _value(settings_service.settings_view(project="P1"), "delete_intermediate") == (True, "default")


def test_ssd_cache_settings_dialog_configures_this_workstation(demo, make_window, qtbot, tmp_path, monkeypatch,
                                                               artifacts_dir):
    for var in ("CRYODESK_SSD_PATH", "CRYODESK_SSD_QUOTA_MB", "CRYODESK_SSD_RESERVE_MB"):
        monkeypatch.delenv(var, raising=False)
    ssd = tmp_path / "scratch"
    ssd.mkdir()
    win = make_window()
    win.actions["cache_settings"].trigger()
    dialog = win.dialog
    qtbot.waitUntil(lambda: dialog.loads == 1, timeout=10000)
    assert "testbox" in dialog.intro.text()
    qtbot.keyClicks(dialog.rows["ssd_path"].editor, str(ssd))
    qtbot.keyClicks(dialog.rows["ssd_quota_mb"].editor, "5000")
    qtbot.keyClicks(dialog.rows["cache_num_threads"].editor, "4")
    qtbot.keyClicks(dialog.rows["cache_lifetime_days"].editor, "7.5")
    with qtbot.waitSignal(dialog.saved, timeout=10000):
        qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
    from cryodesk.cache import resolve_config

    cfg = resolve_config()
    assert str(cfg.ssd_path) == str(ssd) and cfg.quota_bytes == 5000 * 1_000_000 and cfg.threads == 4
    assert cfg.lifetime_days == 7.5 and cfg.enabled
    qtbot.waitUntil(lambda: dialog.loads == 2, timeout=10000)
    dialog.grab().save(str(artifacts_dir / "ui_cache_settings.png"))
    # a bad value is refused with the setting's name, nothing half-written
    dialog.rows["cache_num_threads"].editor.setText("0")
    qtbot.mouseClick(dialog.apply_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.error.isVisible(), timeout=10000)
    assert "Copy threads" in dialog.error.text() and "at least 1" in dialog.error.text()
    assert resolve_config().threads == 4
    # the environment wins for this process, and the dialog says so
    monkeypatch.setenv("CRYODESK_SSD_QUOTA_MB", "100")
    dialog.load()
    qtbot.waitUntil(lambda: dialog.loads == 3, timeout=10000)
    assert "$CRYODESK_SSD_QUOTA_MB overrides" in dialog.rows["ssd_quota_mb"].note.text()
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)


def test_a_jobs_own_setting_in_the_inspector_is_undoable(demo, make_window, qtbot, artifacts_dir):
    win = make_window()
    _select(win, qtbot, "J4")
    box = win.inspector.setting_boxes["delete_intermediate"]
    assert box.currentData() is None and box.currentText().startswith("inherit: on")
    qtbot.keyClick(box, Qt.Key.Key_End)  # off, for this job only
    assert win.inspector.setting_boxes["delete_intermediate"].currentText() == "off"
    assert settings_service.effective("delete_intermediate", project="P1", job="J4") == (False, "job")
    assert win.actions["undo"].text() == "&Undo" and "Set J4 delete_intermediate" in win.actions["undo"].toolTip()
    win.inspector.grab().save(str(artifacts_dir / "ui_inspector_job_settings.png"))
    win.actions["undo"].trigger()
    assert settings_service.effective("delete_intermediate", project="P1", job="J4")[1] == "default"


def test_toolbar_does_not_move_and_a_redo_that_cannot_apply_says_why(window, qtbot):
    win = window
    from PySide6.QtWidgets import QToolBar

    bar = win.findChild(QToolBar, "mainToolbar")

    def geometry():
        return [bar.widgetForAction(a).geometry() for a in bar.actions() if bar.widgetForAction(a) is not None]

    before = geometry()
    _select(win, qtbot, "J5")
    _updated(win, qtbot, win.jobs.mark_final.trigger)
    assert geometry() == before  # the undo button kept its text: nothing moved
    assert win.actions["undo"].toolTip() == "Undo Mark 1 job(s) final"
    _updated(win, qtbot, win.actions["undo"].trigger)
    # meanwhile J5 is cleared (by the CLI, another window...): the redo cannot mark it final any more
    actions.clear_jobs("P1", [jobs.get_job("P1", "J5")])
    win.actions["redo"].trigger()
    assert win.error_dialog is not None and "could not be redone" in win.error_dialog.what.text()
    assert "only completed jobs can be marked as final" in win.error_dialog.cause.text()
    assert "could not be redone" in win.messages.entries[-1][2]
    qtbot.mouseClick(win.error_dialog.close_button, Qt.MouseButton.LeftButton)


def test_an_error_about_a_cleared_job_says_so_and_stays(window, qtbot, monkeypatch, artifacts_dir):
    from cryodesk.base.errors import DataError
    from cryodesk.cache import service
    from cryodesk.core.explain import explain

    win = window
    actions.clear_jobs("P1", [jobs.get_job("P1", "J5")])
    qtbot.waitUntil(lambda: win.view.scene().snap.status_name(win.view.scene().snap.index_of("J5")) == "building",
                    timeout=10000)
    pdir = jobs.get_job("P1", "J5").project.directory

    def warm(project, uid, progress=None, cancel_event=None, **kw):  # what the cache says when J5 is gone
        raise DataError(f"cannot cache {pdir}/J5/extract/stack_000.mrc: No such file or directory")

    monkeypatch.setattr(service, "warm_job_output", warm)
    _select(win, qtbot, "J6")  # J6 reads J5's files
    win.jobs.warm.trigger()
    qtbot.waitUntil(lambda: win.error_dialog is not None and win.error_dialog.isVisible(), timeout=10000)
    cause = win.error_dialog.cause.text()
    assert "J6 reads files of J5, and J5 was cleared" in cause and "re-run J5" in cause
    win.error_dialog.grab().save(str(artifacts_dir / "ui_error_cleared_job.png"))
    qtbot.mouseClick(win.error_dialog.close_button, Qt.MouseButton.LeftButton)
    assert "J5 was cleared" in win.messages.entries[-1][2]  # it stays in the Messages panel
    assert win.docks["Messages"].isVisible()
    # cached directly on a cleared job: refused before anything runs, in words
    _select(win, qtbot, "J5")
    assert not win.jobs.warm.isEnabled() and "re-run J5 to regenerate them" in win.jobs.warm.toolTip()
    assert explain("P1", "something else failed") == "something else failed"


def test_double_clicking_a_ghost_opens_the_workspace_it_lives_in(demo, make_window, qtbot):
    actions.link("P1", [jobs.get_job("P1", "J5")], "W2")  # J5 reads J3 and J4 of W1
    win = make_window(scope=("P1", "W2"))
    scene = win.view.scene()
    ghosts = scene.snap.ghosts
    k = next(k for k in range(len(ghosts)) if ghosts.uid(k) == "J3")
    win.view.refresh_details()
    assert k in scene.ghost_cards and "lives in W1" in scene.ghost_cards[k].toolTip()
    from PySide6.QtCore import QPointF

    p = win.view.mapFromScene(QPointF(float(ghosts.x[k]) + 40, float(ghosts.y[k]) + 30))
    with qtbot.waitSignal(win.graph_loaded, timeout=10000):
        qtbot.mouseDClick(win.view.viewport(), Qt.MouseButton.LeftButton, pos=p)
    assert win.workspace_uid == "W1"
    snap = win.view.scene().snap
    assert [snap.uid(i) for i in win.view.scene().selection.indices] == ["J3"]


def test_at_1024x700_docks_shrink_and_scroll_instead_of_overlapping(demo, make_window, qtbot, artifacts_dir):
    win = make_window(scope=None, size=(1024, 700))
    qtbot.wait(400)  # the resize settles (docks)
    with qtbot.waitSignal(win.graph_loaded, timeout=10000):
        win.browser.select_scope("P1", "W1")  # opened as a user opens it
    qtbot.waitUntil(lambda: win._sidebar is not None, timeout=5000)  # made just after the tree shows
    qtbot.wait(100)
    docks = {n: d for n, d in win.docks.items() if d.isVisible() and not d.isFloating()}
    rects = {n: QRect(d.mapTo(win, d.rect().topLeft()), d.size()) for n, d in docks.items()}
    names = list(rects)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            tabbed = {a, b} <= {"Running jobs", "Messages"} or {a, b} <= {"Inspector", "SSD cache"}
            assert tabbed or not rects[a].intersects(rects[b]), (a, b, rects[a], rects[b])
    status = QRect(win.statusBar().mapTo(win, win.statusBar().rect().topLeft()), win.statusBar().size())
    assert not any(r.intersects(status) for r in rects.values())
    # the sidebar's charts scroll inside their dock rather than drawing over the panels below
    scroll = win.sidebar_scroll
    assert scroll.verticalScrollBar().maximum() > 0
    assert win.sidebar.status.mapTo(win, win.sidebar.status.rect().topLeft()).y() > 0
    assert win.view.height() >= 280 and win.view.width() >= 380
    assert win.view.zoom >= 0.8  # and the tree still opens readable
    win.grab().save(str(artifacts_dir / "ui_main_window_1024x700.png"))


def test_dark_mode_charts_and_notices(window, qtbot, artifacts_dir):
    from cryodesk.ui import palette

    app = get_app()
    old = app.palette()
    dark = QPalette(old)
    for role, colour in ((QPalette.ColorRole.Window, "#202124"), (QPalette.ColorRole.Base, "#17181a"),
                         (QPalette.ColorRole.Text, "#e8eaed"), (QPalette.ColorRole.WindowText, "#e8eaed")):
        dark.setColor(role, QColor(colour))
    try:
        app.setPalette(dark)
        qtbot.wait(50)
        chart = window.sidebar.disk
        img = chart.grab().toImage()
        assert img.pixelColor(3, 3).lightness() < 60  # the chart's background is dark too
        bg, fg = palette.notice_colours("warning")
        assert QColor(bg).lightness() < 80 and QColor(fg).lightness() > 150
        assert bg in window.sidebar.stale_bar.styleSheet()  # the out-of-date notice follows the mode
        from cryodesk.ui.cleanup_dialog import QtCleanupDialog
        dlg = QtCleanupDialog(window, window.project_uid, window.workspace_uid)
        assert bg in dlg.stale_bar.styleSheet()
        dlg.close()
        window.grab().save(str(artifacts_dir / "ui_main_window_dark_charts.png"))
    finally:
        app.setPalette(old)
    qtbot.wait(50)
    assert window.sidebar.disk.grab().toImage().pixelColor(3, 3).lightness() > 200
