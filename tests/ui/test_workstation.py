"""Working in the window without a terminal: new project / workspace, the job builder (types, inputs by
choice or by dragging a card, parameters with validation), next-step shortcuts, Kill everywhere, the
running panel's history and logs."""

from __future__ import annotations

from PySide6.QtCore import QMimeData, QPoint, QPointF, Qt
from PySide6.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PySide6.QtWidgets import QApplication

from cryodesk.core import jobs, projects

from .conftest import scene_point
from .test_actions import _select


def _click_item(qtbot, tree, item) -> None:
    tree.scrollToItem(item)
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=tree.visualItemRect(item).center())


def _drop(widget, mime) -> bool:
    """What the window system sends when something is dropped on ``widget``: enter, move, drop."""
    pos = QPointF(widget.rect().center())
    args = (Qt.DropAction.CopyAction, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    enter = QDragEnterEvent(pos.toPoint(), *args)
    QApplication.sendEvent(widget, enter)
    if not enter.isAccepted():
        return False
    QApplication.sendEvent(widget, QDragMoveEvent(pos.toPoint(), *args))
    drop = QDropEvent(pos, *args)
    QApplication.sendEvent(widget, drop)
    return drop.isAccepted()


def _choose(qtbot, combo, text_part: str) -> None:
    """Pick the combo entry containing ``text_part`` with the keyboard, as a user would."""
    k = next(i for i in range(combo.count()) if text_part in combo.itemText(i))
    combo.setFocus()
    while combo.currentIndex() != k:
        qtbot.keyClick(combo, Qt.Key.Key_Down if combo.currentIndex() < k else Qt.Key.Key_Up)


def test_new_project_then_new_workspace_from_the_file_menu(ui_db, make_window, qtbot, tmp_path, artifacts_dir):
    win = make_window(scope=None)
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win, timeout=5000)  # shortcuts need it
    win.view.setFocus()
    qtbot.keyClick(win.view, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier)  # File > New project…
    dialog = win.dialog
    assert dialog.objectName() == "newProjectDialog" and not dialog.create_button.isEnabled()
    assert "title" in dialog.create_button.toolTip()
    qtbot.keyClicks(dialog.title, "Apoferritin grid 3")
    assert dialog.directory.text().endswith("Apoferritin_grid_3")  # suggested from the title
    dialog.directory.clear()
    qtbot.keyClicks(dialog.directory, str(tmp_path / "apo"))
    assert dialog.create_button.isEnabled()
    dialog.grab().save(str(artifacts_dir / "ui_new_project.png"))
    with qtbot.waitSignal(dialog.created, timeout=10000):
        qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: win.project_uid == "P1" and win.workspace_uid == "W1", timeout=10000)
    assert [p.title for p in projects.list_projects()] == ["Apoferritin grid 3"]
    assert (tmp_path / "apo" / "project.json").exists()
    assert win.browser.topLevelItem(0).child(0).text(0).startswith("W1  Main")
    # a second project in a directory that is not empty: refused, the dialog stays and says why
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "x").write_text("x")
    win.actions["new_project"].trigger()
    dialog = win.dialog
    qtbot.keyClicks(dialog.title, "Other")
    dialog.directory.setText(str(tmp_path / "busy"))
    qtbot.mouseClick(dialog.create_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.error.isVisible(), timeout=10000)
    assert "is not empty" in dialog.error.text() and dialog.isVisible()
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
    # File > New workspace… in the current project
    win.activateWindow()
    qtbot.waitUntil(lambda: QApplication.activeWindow() is win, timeout=5000)
    win.view.setFocus()
    qtbot.keyClick(win.view, Qt.Key.Key_N, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    dialog = win.dialog
    assert dialog.objectName() == "newWorkspaceDialog" and dialog.project.currentData() == "P1"
    qtbot.keyClicks(dialog.title, "Refinement")
    with qtbot.waitSignal(dialog.created, timeout=10000):
        qtbot.keyClick(dialog.title, Qt.Key.Key_Return)
    qtbot.waitUntil(lambda: win.workspace_uid == "W2", timeout=10000)
    assert [w.title for w in projects.list_workspaces("P1")] == ["Main", "Refinement"]


def test_builder_types_by_category_validation_inputs_and_queue(demo, make_window, qtbot, artifacts_dir):
    win = make_window()
    win.view.setFocus()
    qtbot.keyClick(win.view, Qt.Key.Key_B, Qt.KeyboardModifier.ControlModifier)  # Job > New job…
    b = win.builder
    assert b.isVisible() and not b.queue_button.isEnabled() and "Choose a job type" in b.problem.text()
    tops = [b.types.topLevelItem(i).text(0) for i in range(b.types.topLevelItemCount())]
    assert tops[0] == "Import" and "Utilities" in tops  # categories in pipeline order
    _click_item(qtbot, b.types, b.type_items()["ui_step"])
    assert b.type_name == "ui_step"
    desc = b.form_area.widget().findChild(type(b.problem), "builderDescription")
    assert "Test step" in desc.text()
    qtbot.waitUntil(lambda: b.choices_loaded, timeout=10000)
    assert "Connect particles" in b.problem.text() and not b.queue_button.isEnabled()
    slot = b.slots["particles"]
    _choose(qtbot, slot.combo, "J9 ")
    nbytes = b.editors["nbytes"]
    assert nbytes.placeholderText() == "default: 500"
    qtbot.keyClicks(nbytes, "12x")
    assert not b.queue_button.isEnabled() and "expects int" in b.errors["nbytes"].text()
    qtbot.keyClick(nbytes, Qt.Key.Key_Backspace)
    assert b.queue_button.isEnabled() and not b.errors["nbytes"].isVisible()
    qtbot.keyClicks(b.title_edit, "made in the builder")
    b.grab().save(str(artifacts_dir / "ui_job_builder.png"))
    assert b.lane.currentData() == "app"
    with qtbot.waitSignal(b.created, timeout=10000):
        qtbot.mouseClick(b.queue_button, Qt.MouseButton.LeftButton)
    made = jobs.list_jobs("P1")[-1]
    assert made.uid == "J11" and made.type == "ui_step" and made.params["nbytes"] == 12
    assert made.title == "made in the builder"
    assert jobs.describe_jobs("P1", [made])[0]["parents"] == ["J9"]
    qtbot.waitUntil(lambda: win.running.status_of("P1", "J11") == "completed", timeout=20000)
    qtbot.waitUntil(lambda: win.view.scene().snap.index_of("J11") is not None
                    and win.view.scene().selection.count() == 1, timeout=10000)
    snap = win.view.scene().snap
    assert snap.uid(int(win.view.scene().selection.indices[0])) == "J11"  # the new job is selected


def test_dragging_a_card_onto_a_builder_input_connects_it(demo, make_window, qtbot, monkeypatch):
    from PySide6.QtGui import QDrag

    win = make_window()
    b = win.open_builder("ui_step")
    qtbot.waitUntil(lambda: b.choices_loaded, timeout=10000)
    dragged = []
    monkeypatch.setattr(QDrag, "exec", lambda self, *a: dragged.append(self.mimeData()) or Qt.DropAction.CopyAction)
    vp = win.view.viewport()
    i = win.view.scene().snap.index_of("J7")
    start = scene_point(win, i)
    qtbot.mousePress(vp, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(vp, start + QPoint(5, 5))
    qtbot.mouseMove(vp, start + QPoint(40, 30))
    qtbot.mouseRelease(vp, Qt.MouseButton.LeftButton, pos=start + QPoint(40, 30))
    assert len(dragged) == 1
    mime = dragged[0]
    assert bytes(mime.data("application/x-cryodesk-job")) == b"P1 J7"
    slot = b.slots["particles"]
    assert _drop(slot, mime)
    assert slot.current().parent == "J7" and slot.current().output == "particles"
    # a card of another project is not taken
    other = QMimeData()
    other.setData("application/x-cryodesk-job", b"P9 J1")
    assert not _drop(slot, other)
    assert slot.current().parent == "J7"
    b.close()


def test_next_step_shortcut_opens_the_builder_with_the_output_connected(demo, make_window, qtbot):
    win = make_window()
    _select(win, qtbot, "J9")
    labels = [a.text().replace("&", "") for a in win.jobs.next_menu.actions() if a.text()]
    assert labels[:3] == ["Restack particles…", "Downsample / consolidate…", "Export…"]
    assert win.jobs.warm in win.jobs.next_menu.actions()  # Cache on SSD
    restack = win.jobs.next_steps[0]
    assert restack.isEnabled()
    restack.trigger()
    b = win.builder
    assert b.type_name == "restack_particles"
    qtbot.waitUntil(lambda: b.choices_loaded and b.slots["particles"].current() is not None, timeout=10000)
    assert b.slots["particles"].current().parent == "J9"
    assert b.create_button.isEnabled()
    with qtbot.waitSignal(b.created, timeout=10000):
        qtbot.mouseClick(b.create_button, Qt.MouseButton.LeftButton)
    made = jobs.list_jobs("P1")[-1]
    assert made.type == "restack_particles" and made.status == "building"
    # on a job still building, the next steps say why they are not offered
    qtbot.waitUntil(lambda: win.view.scene().snap.index_of(made.uid) is not None, timeout=10000)
    _select(win, qtbot, made.uid)
    assert not restack.isEnabled() and "has no outputs now" in restack.toolTip()


def test_kill_from_the_card_menu_and_the_running_panel(demo, make_window, qtbot, artifacts_dir):
    a = jobs.create_job("P1", "ui_slow", "W1", params={"steps": 400})
    b = jobs.create_job("P1", "ui_slow", "W1", params={"steps": 400})
    win = make_window()
    win.bridge.queue("P1", [a.uid, b.uid])
    qtbot.waitUntil(lambda: win.running.status_of("P1", a.uid) == "running"
                    and win.running.status_of("P1", b.uid) in ("running", "queued"), timeout=10000)
    qtbot.waitUntil(lambda: win.view.scene().snap.status_name(win.view.scene().snap.index_of(a.uid)) == "running",
                    timeout=10000)
    _select(win, qtbot, a.uid)
    assert win.jobs.kill.isEnabled() and not win.jobs.clear.isEnabled()
    assert "kill it or wait" in win.jobs.clear.toolTip()
    win.jobs.kill.trigger()  # the card's menu and the Job menu hold this action
    qtbot.waitUntil(lambda: jobs.get_job("P1", a.uid).status == "killed", timeout=10000)
    qtbot.waitUntil(lambda: win.running.status_of("P1", a.uid) == "killed", timeout=10000)
    # the running panel: select the other row, Kill
    panel = win.running
    panel.table.selectRow(panel.row_of("P1", b.uid))
    assert panel.kill_button.isEnabled()
    qtbot.mouseClick(panel.kill_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: jobs.get_job("P1", b.uid).status == "killed", timeout=10000)
    qtbot.waitUntil(lambda: panel.status_of("P1", b.uid) == "killed", timeout=10000)
    win.grab().save(str(artifacts_dir / "ui_killed_jobs.png"))


def test_running_panel_keeps_the_session_history_read_only_with_logs(demo, make_window, qtbot, artifacts_dir):
    from cryodesk.ui.running_panel import C_DURATION, C_LOG, C_STATUS

    quick = jobs.create_job("P1", "ui_slow", "W1", params={"steps": 1})  # ~0.05 s
    fail = jobs.create_job("P1", "ui_fail", "W1")
    win = make_window(size=(1400, 1000))
    win.resizeDocks([win.docks["Running jobs"]], [320], Qt.Orientation.Vertical)  # resizable to many rows
    win.bridge.queue("P1", [quick.uid, fail.uid])
    panel = win.running
    qtbot.waitUntil(lambda: panel.status_of("P1", quick.uid) == "completed"
                    and panel.status_of("P1", fail.uid) == "failed", timeout=20000)
    assert panel.table.rowCount() == 2 and "0 running · 0 queued or waiting · 2 finished" in panel.summary.text()
    r = panel.row_of("P1", quick.uid)
    assert panel.table.item(r, C_DURATION).text().endswith(" s")
    assert panel.table.height() > 5 * panel.table.verticalHeader().defaultSectionSize()
    # read-only: a double-click selects the job in the tree, never edits a cell
    rect = panel.table.visualItemRect(panel.table.item(r, C_STATUS))
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.mouseDClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert panel.table.state() != panel.table.State.EditingState
    snap = win.view.scene().snap
    assert [snap.uid(i) for i in win.view.scene().selection.indices] == [quick.uid]
    # the log link shows job.log
    rect = panel.table.visualItemRect(panel.table.item(panel.row_of("P1", fail.uid), C_LOG))
    qtbot.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    log = win.session.log_dialog
    qtbot.waitUntil(lambda: log.loaded > 0, timeout=5000)
    assert "the test type always fails" in log.text.toPlainText()
    win.grab().save(str(artifacts_dir / "ui_running_history.png"))
    log.close()
    qtbot.mouseClick(panel.clear_button, Qt.MouseButton.LeftButton)
    assert panel.table.rowCount() == 0
