"""Cleanup Data dialog: options drive a live preview whose figures match the planner; running it frees space."""

from __future__ import annotations

from PySide6.QtCore import Qt

from cryodesk.core.cleanup import CleanupOptions, plan_cleanup
from cryodesk.ui.cleanup_tabs import ESTIMATE_BARS, ESTIMATE_COLOURS, estimate_values


def _open(win, qtbot):
    with qtbot.waitSignal(win.graph_loaded, timeout=10000):
        win.browser.select_scope("P1", "")
    win.actions["cleanup"].trigger()
    dialog = win.cleanup_dialog
    qtbot.waitUntil(lambda: dialog.plan is not None, timeout=10000)
    return dialog


def _changed(dialog, qtbot, action):
    with qtbot.waitSignal(dialog.preview_ready, timeout=10000):
        action()


def _colour_pixels(widget, colour: str) -> int:
    img = widget.grab().toImage()
    return sum(1 for x in range(0, img.width(), 2) for y in range(0, img.height(), 2)
               if img.pixelColor(x, y).name() == colour)


def test_preview_follows_options_and_matches_planner(big_demo, make_window, qtbot, artifacts_dir):
    win = make_window()
    dialog = _open(win, qtbot)
    assert not dialog.plan.entries and not dialog.run_button.isEnabled()
    assert "Sessions: 0" in dialog.header.text()
    _changed(dialog, qtbot, lambda: qtbot.mouseClick(dialog.pre_boxes["motion_correction"], Qt.MouseButton.LeftButton))
    _changed(dialog, qtbot, lambda: qtbot.mouseClick(dialog.intermediate_box, Qt.MouseButton.LeftButton))
    _changed(dialog, qtbot, lambda: dialog.mode_boxes["failed"].setCurrentIndex(2))
    _changed(dialog, qtbot, lambda: dialog.mode_boxes["killed"].setCurrentIndex(1))
    opts = CleanupOptions(preprocessing=("motion_correction",), intermediate=True, failed="delete", killed="clear")
    assert dialog.options() == opts
    direct = plan_cleanup("P1", opts)
    assert [(e.uid, e.action, e.bytes) for e in dialog.plan.entries] == [(e.uid, e.action, e.bytes)
                                                                         for e in direct.entries]
    actions = {e.uid: e.action for e in direct.entries}
    assert actions["J2"] == "clear" and actions["J11"] == "clear_intermediate" and actions["J12"] == "delete"
    # estimate bars: one per figure, heights proportional to the planner's bytes
    values = estimate_values(direct)
    assert dialog.tabs.values == values
    heights = list(dialog.tabs.bars.opts["height"])
    ratio = heights[ESTIMATE_BARS.index("untouched")] / values["untouched"]
    for k, name in enumerate(ESTIMATE_BARS):
        assert abs(heights[k] - values[name] * ratio) < 1e-9 * max(1, values[name])
    est = direct.tabs["estimate"]
    assert f"{est['percent_of_project']:.1f}%" in dialog.tabs.estimate_label.text()
    assert _colour_pixels(dialog.tabs.chart, ESTIMATE_COLOURS[0]) > 30  # the 'cleared' bar is drawn
    assert _colour_pixels(dialog.tabs.chart, ESTIMATE_COLOURS[2]) > 30  # the 'deleted' bar is drawn
    dialog.grab().save(str(artifacts_dir / "ui_cleanup_estimate.png"))
    # table tabs show the planner's figures
    pre = direct.tabs["preprocessing"]["motion_correction"]
    row = [dialog.tabs.pre.item(0, c).text() for c in range(7)]
    assert row[1] == str(pre["jobs"]) and row[2] == f"{pre['percent_jobs']:.1f}" and row[4] == f"{pre['percent_bytes']:.1f}"
    assert dialog.tabs.inter.rowCount() == 1 and dialog.tabs.inter.item(0, 0).text() == "J11"
    kf = direct.tabs["killed_failed"]
    assert dialog.tabs.killed.item(1, 1).text() == str(kf["failed"]["jobs"])
    for k, name in enumerate(("preprocessing", "intermediate", "nonfinal", "killedfailed", "jobs"), start=1):
        dialog.tabs.setCurrentIndex(k)
        dialog.grab().save(str(artifacts_dir / f"ui_cleanup_tab_{name}.png"))
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)


def test_running_a_cleanup_frees_the_planned_bytes(big_demo, make_window, qtbot):
    win = make_window()
    dialog = _open(win, qtbot)
    before = int(win.view.scene().snap.size.sum())
    _changed(dialog, qtbot, lambda: qtbot.mouseClick(dialog.intermediate_box, Qt.MouseButton.LeftButton))
    _changed(dialog, qtbot, lambda: dialog.mode_boxes["failed"].setCurrentIndex(2))
    planned = dialog.plan.bytes
    assert planned > 0 and dialog.run_button.isEnabled()
    with qtbot.waitSignal(dialog.cleanup_finished, timeout=20000) as blocker:
        qtbot.mouseClick(dialog.run_button, Qt.MouseButton.LeftButton)
    result = blocker.args[0]
    assert result.ok and result.bytes_freed == planned
    qtbot.waitUntil(lambda: int(win.view.scene().snap.size.sum()) < before, timeout=10000)
    snap = win.view.scene().snap
    assert snap.index_of("J12") is None  # the failed job was deleted
    assert win.running.running_count() == 0


def test_cleanup_from_sidebar_for_a_workspace_and_stale_refresh(big_demo, make_window, qtbot):
    win = make_window(scope=("P1", "W3"))
    qtbot.mouseClick(win.sidebar.cleanup_button, Qt.MouseButton.LeftButton)
    dialog = win.cleanup_dialog
    qtbot.waitUntil(lambda: dialog.plan is not None, timeout=10000)
    assert dialog.plan.workspace == "W3" and dialog.plan.header["jobs"] == 3
    if dialog.stale_bar.isVisible():
        with qtbot.waitSignal(dialog.preview_ready, timeout=20000):
            qtbot.mouseClick(dialog.refresh_button, Qt.MouseButton.LeftButton)
        assert not dialog.stale_bar.isVisible()
    dialog.reject()
