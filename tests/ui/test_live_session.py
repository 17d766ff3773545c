"""The live-session view, driven with qtbot in the real main window: start, thresholds, complete, compact, restore."""

from __future__ import annotations

from pathlib import Path

import pytest
from livehelpers import PARAMS, TINY, deliver


@pytest.fixture(scope="module")
def movies(tmp_path_factory):
    from cryodesk.demo import simulate_dataset

    out = tmp_path_factory.mktemp("gui_live_movies")
    simulate_dataset(out, "small", seed=3, **dict(TINY, n_micrographs=3))
    return sorted((out / "movies").glob("*.mrc"))


@pytest.fixture
def live_project(ui_db, tmp_path, movies):
    from cryodesk.core import projects, sessions

    p = projects.create_project("Live", tmp_path / "proj")
    projects.create_workspace(p, "main")
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    deliver(movies, incoming)
    s = sessions.create(p, str(incoming / "*.mrc"), "grid 1", dict(PARAMS))
    return p, s


def _status(view):
    return view.desc["status"]


def test_session_view_runs_compacts_and_restores(qtbot, make_window, live_project, monkeypatch):
    from PySide6.QtCore import Qt
    from PySide6.QtWidgets import QMessageBox

    from cryodesk.ui.project_browser import SESSION_ROLE

    win = make_window(scope=None)
    top = win.browser.topLevelItem(0)
    item = next(top.child(k) for k in range(top.childCount()) if top.child(k).data(0, SESSION_ROLE))
    assert item.text(0) == "S1  grid 1  [paused]"
    win.browser.itemActivated.emit(item, 0)  # double-click / Enter on the session's row
    view = win._session_views[("P1", "S1")]
    qtbot.waitExposed(view)
    view._timer.setInterval(100)
    assert "paused" in view.summary.text() and not view.buttons["pause"].isEnabled()

    qtbot.mouseClick(view.buttons["start"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.table.rowCount() == 3 and view.desc["stage_counts"]["ready"] == 3, timeout=30000)
    assert [view.table.item(i, 1).text() for i in range(3)] == ["ready"] * 3
    assert all(float(view.table.item(i, 2).text()) > 1000 for i in range(3))  # defocus shown
    assert view.progress.text().startswith("3 / 3") or view.progress.value() == 3
    assert "running in this window" in view.summary.text()

    # thresholds change what is accepted while it runs
    view.part_min.setValue(10**6)
    qtbot.mouseClick(view.apply_thresholds, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: [view.table.item(i, 5).text() for i in range(3)] == ["rejected"] * 3, timeout=5000)
    view.table.selectRow(1)  # accepted by hand, whatever the thresholds say
    view.judge_selected("accept")
    assert [view.table.item(i, 5).text() for i in range(3)] == ["rejected", "accepted", "rejected"]
    view.judge_selected(None)
    view.part_min.setValue(0)
    qtbot.mouseClick(view.apply_thresholds, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: view.desc["accepted"] == 3, timeout=5000)

    qtbot.mouseClick(view.buttons["complete"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.live_sessions.runners and _status(view) == "completed", timeout=10000)
    assert view.buttons["compact"].isEnabled() and not view.buttons["restore"].isEnabled()

    shown = []

    def exec_(box):
        shown.append(box.text())
        return QMessageBox.StandardButton.Ok

    monkeypatch.setattr(QMessageBox, "exec", exec_)
    qtbot.mouseClick(view.buttons["compact"], Qt.MouseButton.LeftButton)
    assert shown, view.status_line.text()
    assert "micrographs" in shown[0] and "particle stacks" in shown[0] and "cannot be modified" in shown[0]
    qtbot.waitUntil(lambda: _status(view) == "compacted", timeout=10000)
    qtbot.waitUntil(lambda: view.status_line.text().startswith("Compacted: freed"), timeout=5000)
    assert not view.buttons["start"].isEnabled() and not view.apply_thresholds.isEnabled()
    assert view.buttons["restore"].isEnabled()
    assert [view.table.item(i, 1).text() for i in range(3)] == ["compacted"] * 3

    qtbot.mouseClick(view.buttons["restore"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _status(view) == "completed" and not win.live_sessions.runners, timeout=30000)
    assert [view.table.item(i, 1).text() for i in range(3)] == ["ready"] * 3
    assert all(Path(win.browser.rows[0]["directory"], e["outputs"]["micrograph"]["path"]).is_file()
               for e in view.desc["exposures"])
    qtbot.mouseClick(view.buttons["export"], Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "exported the accepted particles of S1" in view.status_line.text(), timeout=10000)
    view.close()


def test_a_running_session_resumes_when_the_app_starts(qtbot, make_window, live_project):
    from cryodesk.core import sessions

    p, s = live_project
    sessions.transition(p, s, "start")  # left running by an app that quit
    win = make_window(scope=None)
    assert win.live_sessions.is_running("P1", "S1")
    qtbot.waitUntil(lambda: sessions.stage_counts(s)["ready"] == 3, timeout=30000)
    sessions.transition(p, s, "pause")
    qtbot.waitUntil(lambda: not win.live_sessions.runners, timeout=10000)
