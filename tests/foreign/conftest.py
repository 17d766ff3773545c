"""Fixtures for other programs' projects (issue 16)."""

from __future__ import annotations

import pytest

from cryodesk.core.deletion import trash

from .relion_fixtures import build_project


@pytest.fixture(autouse=True)
def _sync_trash(monkeypatch):
    monkeypatch.setattr(trash, "SYNC", True)  # empty in this process: bytes on disk are final at once


@pytest.fixture
def relion40(database, tmp_path):
    return build_project(tmp_path / "relion40", "4.0")


@pytest.fixture
def window(tmp_path, qtbot):
    """The main window showing P1 W1, a RELION 4.0 project of :data:`relion_fixtures.JOBS` (GUI tests)."""
    from PySide6.QtCore import QSettings

    from cryodesk import db as dbmod
    from cryodesk.core.foreign.service import open_project
    from cryodesk.ui.main_window import QtMainWindow

    dbmod.open_database(str(tmp_path / "gui.sqlite"))
    dbmod.db.connect(reuse_if_open=True)
    open_project(build_project(tmp_path / "rel", "4.0"))
    win = QtMainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    with qtbot.waitSignal(win.graph_loaded, timeout=10000):
        win.browser.select_scope("P1", "W1")
    yield win
    win.close()
    win.deleteLater()
    dbmod.close_database()
