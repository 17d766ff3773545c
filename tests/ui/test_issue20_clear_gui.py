"""Issue 20 item 5 in the app: clearing a job whose grandchild is running is refused, and the dialog says why.

Before, only a running *child* protected a job: ``Clear`` on J3 went ahead while
J6 (J3 -> J5 -> J6) was running, and J6 then failed with "No such file".
"""

from __future__ import annotations

from cryodesk.core import jobs

from .test_actions import _select


def test_clear_with_a_running_grandchild_is_refused_with_the_reason(window, qtbot, artifacts_dir):
    win = window
    jobs.set_status(jobs.get_job("P1", "J6"), "running")  # J3 -> J5 -> J6
    _select(win, qtbot, "J3")
    win.jobs.clear.trigger()
    qtbot.waitUntil(lambda: win.jobs.dialog is not None, timeout=10000)
    dialog = win.jobs.dialog
    assert dialog.objectName() == "refusalDialog"  # nothing left to clear: no confirmation is offered
    rows = {dialog.table.item(r, 0).text(): dialog.table.item(r, 1).text() for r in range(dialog.table.rowCount())}
    assert "J6 is running on its outputs or on what was made from them" in rows["J3"], rows
    dialog.grab().save(str(artifacts_dir / "ui_clear_refused_running_grandchild.png"))
    dialog.reject()
    assert jobs.get_job("P1", "J3").status == "completed"
