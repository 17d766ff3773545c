"""Run / Queue / Re-run through the job engine, with progress in the running-jobs panel."""

from __future__ import annotations

from PySide6.QtCore import Qt

from cryodesk.core import jobs

from .test_actions import _select


def _status(win, uid):
    snap = win.view.scene().snap
    i = snap.index_of(uid)
    return None if i is None else snap.status_name(i)


def test_run_shows_progress_then_completes(demo, make_window, qtbot, artifacts_dir):
    slow = jobs.create_job("P1", "ui_slow", "W1", params={"steps": 30})
    win = make_window()
    assert win.jobs.run.toolTip().startswith("Queue")
    _select(win, qtbot, slow.uid)
    assert win.jobs.run.isEnabled()
    win.jobs.run.trigger()
    table = win.running.table
    qtbot.waitUntil(lambda: table.rowCount() == 1 and table.item(0, 1).text() == "running"
                    and table.cellWidget(0, 2).value() > 0, timeout=10000)
    assert table.item(0, 0).text().startswith("P1 " + slow.uid)
    win.grab().save(str(artifacts_dir / "ui_running_job.png"))
    qtbot.waitUntil(lambda: _status(win, slow.uid) == "completed", timeout=20000)
    # the row stays, read-only, as this session's history: finished, with its duration
    qtbot.waitUntil(lambda: table.item(0, 1).text() == "completed", timeout=5000)
    from cryodesk.ui.running_panel import C_DURATION

    assert table.rowCount() == 1 and table.item(0, C_DURATION).text().endswith(" s")
    assert table.editTriggers() == table.EditTrigger.NoEditTriggers


def test_rerun_cleared_job_regenerates_outputs(window, qtbot):
    win = window
    snap = win.view.scene().snap
    size = int(snap.size[snap.index_of("J6")])
    _select(win, qtbot, "J6")
    win.jobs.clear.trigger()
    qtbot.waitUntil(lambda: win.jobs.dialog is not None, timeout=10000)
    with qtbot.waitSignal(win.graph_updated, timeout=10000):
        qtbot.mouseClick(win.jobs.dialog.ok_button, Qt.MouseButton.LeftButton)
    assert _status(win, "J6") == "building"
    _select(win, qtbot, "J5", "J6")  # J5 was never cleared: explained, not queued
    win.jobs.rerun.trigger()
    assert win.jobs.dialog is not None and "not cleared" in win.jobs.dialog.table.item(0, 1).text()
    qtbot.mouseClick(win.jobs.dialog.close_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _status(win, "J6") == "completed", timeout=20000)
    snap = win.view.scene().snap
    # the same outputs again; the size (du -sb) includes job.json, whose status history grew
    assert abs(int(snap.size[snap.index_of("J6")]) - size) < 1024


def test_queue_refusal_names_the_reason(window, qtbot):
    win = window
    _select(win, qtbot, "J3")  # completed: queueing it again is disabled, and says why
    assert not win.jobs.queue.isEnabled() and "J3: it is completed; clear it before" in win.jobs.queue.toolTip()
    win.jobs.do_queue()  # forced past the menu: the engine refuses with the reason
    qtbot.waitUntil(lambda: win.jobs.dialog is not None, timeout=5000)
    assert win.jobs.dialog.table.item(0, 0).text() == "J3"
    qtbot.mouseClick(win.jobs.dialog.close_button, Qt.MouseButton.LeftButton)
