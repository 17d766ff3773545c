"""Issue 12, item 2: *Clear intermediate results* from the Job menu, for the selected jobs or (nothing
selected) the whole workspace or project shown, as the guide's Actions-menu button."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMenu

from cryodesk.core import jobs
from cryodesk.core.cleanup import plan_clear_intermediate
from cryodesk.db.models import OutputFile

from .test_actions import _select, _updated


def _versions(uid: str) -> list[int]:
    job = jobs.get_job("P1", uid)
    return sorted({f.version for f in OutputFile.select().where(OutputFile.job == job)})


def test_clear_intermediate_of_the_selected_job(big_demo, make_window, qtbot, artifacts_dir):
    win = make_window(scope=("P1", "W3"))
    assert _versions("J11") == [0, 1, 2]
    job_menu = next(m for m in win.menuBar().findChildren(QMenu) if m.title() == "&Job")
    assert win.jobs.clear_intermediate in job_menu.actions()
    _select(win, qtbot, "J11")
    planned = plan_clear_intermediate("P1", ["J11"])
    win.jobs.clear_intermediate.trigger()
    qtbot.waitUntil(lambda: win.jobs.dialog is not None, timeout=10000)
    dialog = win.jobs.dialog
    assert dialog.objectName() == "confirmDialog" and f"{planned.bytes:,} bytes" in dialog.label.text()
    dialog.grab().save(str(artifacts_dir / "ui_clear_intermediate.png"))
    _updated(win, qtbot, lambda: qtbot.mouseClick(dialog.ok_button, Qt.MouseButton.LeftButton))
    qtbot.waitUntil(lambda: win.jobs.pending is None, timeout=10000)
    assert _versions("J11") == [2]


def test_nothing_selected_means_the_scope_and_says_when_there_is_nothing(big_demo, make_window, qtbot):
    win = make_window(scope=("P1", "W1"))
    assert win.view.scene().selection.count() == 0 and win.jobs.clear_intermediate.isEnabled()
    win.jobs.clear_intermediate.trigger()
    qtbot.waitUntil(lambda: win.jobs.dialog is not None, timeout=10000)
    dialog = win.jobs.dialog
    assert dialog.objectName() == "refusalDialog"  # W1 holds no intermediate results
    assert "no intermediate results" in dialog.table.item(0, 1).text()
    qtbot.mouseClick(dialog.close_button, Qt.MouseButton.LeftButton)
    assert _versions("J11") == [0, 1, 2]
