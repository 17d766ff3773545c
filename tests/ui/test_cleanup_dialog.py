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
    assert f"{est['percent_of_scope']:.1f}%" in dialog.tabs.estimate_label.text()
    tallest = max(values.values())
    for k, name in enumerate(ESTIMATE_BARS):  # each bar big enough to see is drawn in its colour
        if values[name] > 0.1 * tallest:
            assert _colour_pixels(dialog.tabs.chart, ESTIMATE_COLOURS[k]) > 30, name
    dialog.grab().save(str(artifacts_dir / "ui_cleanup_estimate.png"))
    # table tabs show the planner's figures
    pre = direct.tabs["preprocessing"]["motion_correction"]
    row = [dialog.tabs.pre.item(0, c).text() for c in range(7)]
    assert row[1] == str(pre["jobs"]) and row[2] == f"{pre['percent_jobs']:.1f}" and row[4] == f"{pre['percent_bytes']:.1f}"
    assert dialog.tabs.inter.rowCount() == 1 and dialog.tabs.inter.item(0, 0).text() == "J11"
    kf = direct.tabs["killed_failed"]
    failed_row = [r for r in range(dialog.tabs.killed.rowCount()) if dialog.tabs.killed.item(r, 0).text().startswith("failed")]
    assert dialog.tabs.killed.item(failed_row[0], 1).text() == str(kf["failed"]["jobs"])
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


def test_guide_options_and_figures_match_the_cli(big_demo, make_window, qtbot, capsys):
    """Issue 12: restack is its own option (off), the estimate compares with the scope (the project
    beside it) and never passes 100%, the status tab lists every status; the CLI prints the same."""
    import json

    from cryodesk.cli.main import build_parser
    from cryodesk.core.units import human_bytes
    from cryodesk.db import JOB_STATUSES

    win = make_window(scope=("P1", "W3"))
    win.actions["cleanup"].trigger()
    dialog = win.cleanup_dialog
    qtbot.waitUntil(lambda: dialog.plan is not None, timeout=10000)
    assert not dialog.restack_box.isChecked() and "restack" in dialog.restack_box.text().lower()
    _changed(dialog, qtbot, lambda: dialog.mode_boxes["killed"].setCurrentIndex(2))
    _changed(dialog, qtbot, lambda: qtbot.mouseClick(dialog.restack_box, Qt.MouseButton.LeftButton))
    assert dialog.options().restack and dialog.options().killed == "delete"
    est = dialog.plan.tabs["estimate"]
    assert est["scope"] == "P1 W3" and est["scope_bytes"] == dialog.plan.header["jobs_bytes"]
    assert 0 < est["percent_of_scope"] <= 100 and est["project_bytes"] > est["scope_bytes"]
    text = dialog.tabs.estimate_label.text()
    assert f"{est['percent_of_scope']:.1f}%" in text and human_bytes(est["scope_bytes"]) in text
    assert f"{est['percent_of_project']:.1f}%" in text and human_bytes(est["project_bytes"]) in text
    assert dialog.tabs.values["untouched"] == est["bytes_after"] == est["scope_bytes"] - est["bytes_freed"] > 0
    # the status tab: one row per status, with the planner's counts
    statuses = dialog.plan.tabs["killed_failed"]["statuses"]
    table = dialog.tabs.killed
    assert table.rowCount() == len(JOB_STATUSES)
    shown = {table.item(r, 0).text().split(" ")[0]: table.item(r, 1).text() for r in range(table.rowCount())}
    assert shown == {s: str(statuses[s]["jobs"]) for s in JOB_STATUSES}
    assert shown["completed"] == "1" and shown["failed"] == "1" and shown["killed"] == "1"
    # the CLI: the same plan, the same figures
    args = build_parser().parse_args(["cleanup", "P1", "--workspace", "W3", "--killed", "delete", "--restack",
                                      "--dry-run"])
    assert args.func(args) == 0
    cli = json.loads(capsys.readouterr().out)
    assert cli["tabs"]["estimate"] == est and cli["tabs"]["killed_failed"] == dialog.plan.tabs["killed_failed"]
    dialog.reject()
