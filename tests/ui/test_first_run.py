"""First start on an empty database: the app builds the demo project and shows it."""

from __future__ import annotations

from pathlib import Path

from cryodesk.core.projects import list_projects
from cryodesk.ui import app as app_mod


def test_first_run_creates_and_shows_the_demo_project(ui_db, make_window, qtbot, tmp_path, monkeypatch,
                                                       artifacts_dir):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))  # not there: beside the database (issue 12, 14)
    from cryodesk import db as dbmod

    db_file = Path(dbmod.db.obj.database)
    monkeypatch.setenv("CRYODESK_DB", str(db_file))  # as the app was started: this database
    win = make_window(scope=None)
    assert not app_mod._has_projects()
    with qtbot.waitSignal(win.graph_loaded, timeout=60000):
        app_mod._create_demo(win)
        assert str(db_file.parent / f"{db_file.stem}-demo") in win.statusBar().currentMessage()  # says where
    assert [p.title for p in list_projects()] == ["Demo: simulated apoferritin-like"]
    assert list_projects()[0].directory == str(db_file.parent / f"{db_file.stem}-demo" / "project")
    assert str(tmp_path / "xdg") not in list_projects()[0].directory
    top = win.browser.topLevelItem(0)
    assert top.text(0).startswith("P1") and top.childCount() == 2
    assert len(win.view.scene().snap) == 8  # W1, the main line: J1..J8
    win.view.fit()
    qtbot.wait(50)
    win.grab().save(str(artifacts_dir / "ui_demo_project.png"))
    # the whole project: both workspaces' branches, the killed and failed jobs
    with qtbot.waitSignal(win.graph_loaded, timeout=10000):
        win.browser.select_scope("P1", "")
    assert len(win.view.scene().snap) == 13
    win.select_uid("J8")
    win.view.fit()
    qtbot.wait(50)
    win.grab().save(str(artifacts_dir / "ui_demo_project_all.png"))
    # a second start finds the project: nothing is built again
    assert app_mod._has_projects()
