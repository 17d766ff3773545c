"""Batch actions through the real widgets: final flags and badges, refusals, confirmed deletion, undo, params."""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt
from PySide6.QtGui import QColor

from cryodesk.core.layout import CARD_W
from cryodesk.ui import palette
from cryodesk.ui.graph_items import BADGE

from .conftest import scene_point


def _select(win, qtbot, *uids):
    vp = win.view.viewport()
    snap = win.view.scene().snap
    for k, uid in enumerate(uids):
        mods = Qt.KeyboardModifier.ControlModifier if k else Qt.KeyboardModifier.NoModifier
        qtbot.mouseClick(vp, Qt.MouseButton.LeftButton, mods, scene_point(win, snap.index_of(uid)))


def _badge_colour(win, uid) -> QColor:
    """Colour of the badge corner of ``uid``'s card, read from a screenshot of the view."""
    scene = win.view.scene()
    i = scene.snap.index_of(uid)
    centre = QPointF(float(scene.snap.x[i]) + CARD_W - 4 - BADGE / 2, float(scene.snap.y[i]) + 4 + BADGE / 2 - 5)
    p = win.view.mapFromScene(centre)
    img = win.view.viewport().grab().toImage()
    return img.pixelColor(p.x(), p.y())


def _updated(win, qtbot, trigger):
    """Do ``trigger`` and wait until the tree shows its change (it comes back as a change event)."""
    with qtbot.waitSignal(win.graph_updated, timeout=10000):
        trigger()


def test_mark_final_shows_badges_and_undo_removes_them(window, qtbot, artifacts_dir):
    win = window
    win.view.set_zoom(1.0)
    win.view.center_on_job(win.view.scene().snap.index_of("J4"))
    _select(win, qtbot, "J5")
    _updated(win, qtbot, win.jobs.mark_final.trigger)
    snap = win.view.scene().snap
    assert snap.is_final[snap.index_of("J5")]
    ancestors = sorted(snap.uid(i) for i in (snap.is_ancestor & ~snap.is_final).nonzero()[0])
    assert ancestors == ["J1", "J2", "J3", "J4"]
    qtbot.wait(10)
    assert _badge_colour(win, "J5").name() == palette.FINAL_COLOUR
    assert _badge_colour(win, "J4").name() == palette.ANCESTOR_COLOUR
    assert _badge_colour(win, "J8").name() != palette.ANCESTOR_COLOUR
    assert "FINAL" in win.inspector.header.text()
    assert win.inspector.params_note.text().startswith("Read-only")
    win.view.grab().save(str(artifacts_dir / "ui_final_badges.png"))
    win.grab().save(str(artifacts_dir / "ui_main_window_final.png"))
    _updated(win, qtbot, win.actions["undo"].trigger)
    snap = win.view.scene().snap
    assert not snap.is_final.any() and not snap.is_ancestor.any()
    _updated(win, qtbot, win.actions["redo"].trigger)
    assert win.view.scene().snap.is_final.sum() == 1


def test_deleting_an_ancestor_of_final_is_disabled_then_skipped_with_reasons(window, qtbot, artifacts_dir):
    win = window
    _select(win, qtbot, "J5")
    _updated(win, qtbot, win.jobs.mark_final.trigger)
    _select(win, qtbot, "J3", "J5")
    # nothing selected may be deleted: the action is disabled and says why for each job
    assert not win.jobs.delete.isEnabled()
    tip = win.jobs.delete.toolTip()
    assert "J3: it is an ancestor of a final result" in tip and "J5: it is marked as a final result" in tip
    _select(win, qtbot, "J3", "J5", "J9")  # J9 may go: the others are listed as skipped, with the reason
    assert win.jobs.delete.isEnabled()
    win.view.setFocus()
    qtbot.keyClick(win.view, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: win.jobs.dialog is not None, timeout=10000)
    dialog = win.jobs.dialog
    assert dialog.objectName() == "confirmDialog"
    rows = {dialog.table.item(r, 0).text(): dialog.table.item(r, 1).text() for r in range(dialog.table.rowCount())}
    assert set(rows) == {"J3", "J5"}
    assert "ancestor of a final result" in rows["J3"]
    assert "marked as a final result" in rows["J5"]
    dialog.grab().save(str(artifacts_dir / "ui_refusal_dialog.png"))
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert win.view.scene().snap.index_of("J3") is not None


def test_delete_confirms_with_bytes_then_frees_them(window, qtbot, artifacts_dir):
    win = window
    before = int(win.view.scene().snap.size.sum())
    _select(win, qtbot, "J8")  # J8 has a descendant (J9): refused unless J9 comes along
    win.jobs.delete.trigger()
    qtbot.waitUntil(lambda: win.jobs.dialog is not None, timeout=10000)
    assert "descendants that are not being deleted" in win.jobs.dialog.table.item(0, 1).text()
    qtbot.mouseClick(win.jobs.dialog.close_button, Qt.MouseButton.LeftButton)
    _select(win, qtbot, "J8", "J9")
    snap = win.view.scene().snap
    freed = int(snap.size[[snap.index_of("J8"), snap.index_of("J9")]].sum())
    win.jobs.delete.trigger()
    qtbot.waitUntil(lambda: win.jobs.dialog is not None, timeout=10000)
    dialog = win.jobs.dialog
    assert dialog.objectName() == "confirmDialog"
    from cryodesk.core import actions, jobs

    planned = actions.plan_delete("P1", jobs.get_jobs("P1", ["J8", "J9"])).plan.bytes
    assert planned >= freed and f"{planned:,} bytes" in dialog.label.text()
    dialog.grab().save(str(artifacts_dir / "ui_confirm_delete.png"))
    with qtbot.waitSignal(win.graph_updated, timeout=10000):
        qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton)
    snap = win.view.scene().snap
    assert snap.index_of("J8") is None and snap.index_of("J9") is None
    assert int(snap.size.sum()) == before - freed
    # the tree can update (from the change log) before the delete task's end reaches the running panel
    qtbot.waitUntil(lambda: win.running.running_count() == 0, timeout=10000)


def test_clear_keeps_the_job_and_drops_its_size(window, qtbot):
    win = window
    _select(win, qtbot, "J6")
    win.jobs.clear.trigger()
    qtbot.waitUntil(lambda: win.jobs.dialog is not None, timeout=10000)
    with qtbot.waitSignal(win.graph_updated, timeout=10000):
        qtbot.mouseClick(win.jobs.dialog.ok_button, Qt.MouseButton.LeftButton)
    snap = win.view.scene().snap
    i = snap.index_of("J6")
    from pathlib import Path

    from cryodesk.base.fsio import du_size
    from cryodesk.core.projects import get_project

    # what stays is the directory's own entry and its job.json, as du -sb counts them
    assert snap.status_name(i) == "building" and snap.size[i] == du_size(Path(get_project("P1").directory) / "J6")


def test_move_link_unlink_with_undo(window, qtbot):
    win = window
    _select(win, qtbot, "J9")
    _updated(win, qtbot, lambda: win.jobs.do_link("W2"))
    assert win.view.scene().snap.shared[win.view.scene().snap.index_of("J9")]
    _updated(win, qtbot, win.actions["undo"].trigger)
    assert not win.view.scene().snap.shared[win.view.scene().snap.index_of("J9")]
    _select(win, qtbot, "J9")
    _updated(win, qtbot, lambda: win.jobs.do_move("W2"))
    assert win.view.scene().snap.index_of("J9") is None  # it left W1
    _updated(win, qtbot, win.actions["undo"].trigger)
    assert win.view.scene().snap.index_of("J9") is not None
    _select(win, qtbot, "J1")
    assert win.view.scene().snap.shared[0]
    _updated(win, qtbot, lambda: win.jobs.do_unlink("W2"))
    assert not win.view.scene().snap.shared[0]
    _updated(win, qtbot, win.actions["undo"].trigger)  # undoing an unlink links it again
    assert win.view.scene().snap.shared[0]


def test_edit_param_of_building_job_with_undo(window, qtbot):
    win = window
    _select(win, qtbot, "J6")
    win.jobs.clear.trigger()  # only building jobs take new parameters
    qtbot.waitUntil(lambda: win.jobs.dialog is not None, timeout=10000)
    with qtbot.waitSignal(win.graph_updated, timeout=10000):
        qtbot.mouseClick(win.jobs.dialog.ok_button, Qt.MouseButton.LeftButton)
    _select(win, qtbot, "J6")
    table = win.inspector.params
    row = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == "nbytes")
    assert table.item(row, 1).flags() & Qt.ItemFlag.ItemIsEditable
    _updated(win, qtbot, lambda: table.item(row, 1).setText("77"))
    from cryodesk.core import jobs

    assert jobs.get_job("P1", "J6").params["nbytes"] == 77
    _updated(win, qtbot, win.actions["undo"].trigger)
    assert jobs.get_job("P1", "J6").params["nbytes"] == 6000


def test_menu_items_are_enabled_per_state_with_the_reason_as_tooltip(window, qtbot, artifacts_dir):
    win = window
    _select(win, qtbot, "J2")  # completed, not final
    jobs_ = win.jobs
    assert jobs_.mark_final.isEnabled() and not jobs_.unmark_final.isEnabled()
    assert "it is not marked as final" in jobs_.unmark_final.toolTip()
    assert not jobs_.mark_complete.isEnabled()
    assert "only killed or failed jobs can be marked as complete" in jobs_.mark_complete.toolTip()
    assert not jobs_.run.isEnabled() and "clear it before running it again" in jobs_.run.toolTip()
    assert not jobs_.kill.isEnabled() and "only queued or running jobs can be killed" in jobs_.kill.toolTip()
    # the context menu (right click on the card) shows the same state
    from PySide6.QtGui import QContextMenuEvent
    from PySide6.QtWidgets import QApplication

    pos = scene_point(win, win.view.scene().snap.index_of("J2"))
    ev = QContextMenuEvent(QContextMenuEvent.Reason.Mouse, pos, win.view.viewport().mapToGlobal(pos))
    QApplication.sendEvent(win.view.viewport(), ev)
    menu = win.context_menu
    assert menu is not None and menu.toolTipsVisible()
    items = {a.text().replace("&", ""): a for a in menu.actions() if a.text()}
    assert items["Mark as final"].isEnabled() and not items["Run"].isEnabled()
    menu.grab().save(str(artifacts_dir / "ui_context_menu_states.png"))
    menu.close()
    _updated(win, qtbot, jobs_.mark_final.trigger)
    assert not jobs_.mark_final.isEnabled() and "already marked as final" in jobs_.mark_final.toolTip()
    assert jobs_.unmark_final.isEnabled()


def test_marking_a_building_job_final_is_disabled_and_nothing_lands_on_the_undo_stack(demo, make_window, qtbot):
    from cryodesk.core import jobs

    fresh = jobs.create_job("P1", "ui_step", "W1", [jobs.InputSpec("particles", "J9")])
    win = make_window()
    _select(win, qtbot, fresh.uid)
    assert "Double-click" in win.inspector.params_note.text()
    assert not win.jobs.mark_final.isEnabled()
    assert "only completed jobs can be marked as final (it is building)" in win.jobs.mark_final.toolTip()
    assert win.jobs.run.isEnabled() and win.jobs.queue.isEnabled()
    win.jobs.do_set_final(True)  # forced past the menu: the service refuses, with the same words
    qtbot.waitUntil(lambda: win.jobs.dialog is not None, timeout=5000)
    assert "only completed jobs can be marked as final" in win.jobs.dialog.table.item(0, 1).text()
    qtbot.mouseClick(win.jobs.dialog.close_button, Qt.MouseButton.LeftButton)
    assert win.undo_stack.count() == 0 and not win.actions["undo"].isEnabled()


def test_inspector_shows_outputs_log_and_parent_links(window, qtbot):
    win = window
    _select(win, qtbot, "J4")
    ins = win.inspector
    assert "completed" in ins.log.toPlainText()
    assert ins.outputs.rowCount() == 1 and ins.outputs.item(0, 4).text() == "final"
    assert "href='J2'" in ins.inputs.text()
    ins.job_link.emit("J2")  # what clicking the link does
    snap = win.view.scene().snap
    assert [snap.uid(i) for i in win.view.scene().selection.indices] == ["J2"]


def test_clone_from_the_menu_runs_off_the_gui_thread_and_shows_the_copy(window, qtbot):
    from cryodesk.core import jobs

    win = window
    before = len(jobs.list_jobs("P1"))
    _select(win, qtbot, "J2")
    with qtbot.waitSignal(win.jobs.changed, timeout=10000):
        win.jobs.clone.trigger()
    made = jobs.list_jobs("P1")
    assert len(made) == before + 1
    copy = jobs.describe_jobs("P1", [made[-1]])[0]
    assert copy["status"] == "building" and copy["type"] == jobs.get_job("P1", "J2").type
    assert copy["parents"] == jobs.describe_jobs("P1", [jobs.get_job("P1", "J2")])[0]["parents"]
