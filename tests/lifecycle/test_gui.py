"""The project actions in the app: the Project menu and the browser's context menu, confirmed, off the GUI thread."""

from __future__ import annotations

from pathlib import Path

import pytest

from cryodesk.db.models import Project

from .helpers import build

pytest.importorskip("pytestqt")


@pytest.fixture
def window(tmp_path, qtbot):
    from PySide6.QtCore import QSettings

    from cryodesk import db as dbmod
    from cryodesk.ui.main_window import QtMainWindow

    dbmod.open_database(str(tmp_path / "gui.sqlite"))
    dbmod.db.connect(reuse_if_open=True)
    build("GUI", tmp_path / "gui", tmp_path / "raw")
    win = QtMainWindow(QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat))
    win.resize(1200, 800)
    win.show()
    qtbot.waitExposed(win)
    with qtbot.waitSignal(win.graph_loaded, timeout=10000):
        win.browser.select_scope("P1", "W1")
    yield win
    win.close()
    dbmod.close_database()


def _accept(pa, qtbot):
    qtbot.waitUntil(lambda: pa.dialog is not None and pa.dialog.isVisible(), timeout=10000)
    dialog = pa.dialog
    dialog.accept()
    return dialog


def _settle(pa, qtbot):
    qtbot.waitUntil(lambda: pa.pending is None, timeout=20000)
    from cryodesk.engine import workers

    assert workers.wait_all(10000)


def test_archive_move_unarchive_from_the_project_menu(window, qtbot, tmp_path, artifacts_dir):
    pa = window.project_actions
    menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Project")
    assert [a.text() for a in menu.actions() if a.text()] == [
        "Attac&h project directory…", "&Archive project…", "&Unarchive project…", "&Move project…", "De&tach project…", "&Delete project…",
        "Reduce database &size…"]
    pa.update_enabled(None)
    assert pa.archive.isEnabled() and not pa.unarchive.isEnabled()
    pa.archive.trigger()
    dialog = _accept(pa, qtbot)
    assert "read-only" in dialog.label.text()
    _settle(pa, qtbot)
    qtbot.waitUntil(lambda: "[archived]" in window.browser.topLevelItem(0).text(0), timeout=10000)
    window.browser.grab().save(str(artifacts_dir / "lifecycle_browser_archived.png"))
    pa.update_enabled(None)
    assert pa.unarchive.isEnabled() and not pa.archive.isEnabled() and not pa.delete.isEnabled()
    # move it (an archived project may move: that is what archiving is for)
    (tmp_path / "storage").mkdir()
    pa.ask_directory = lambda title, start: str(tmp_path / "storage")
    pa.move.trigger()
    dialog = _accept(pa, qtbot)
    assert "a rename" in dialog.label.text() and "symlinks moved as links" in dialog.label.text()
    _settle(pa, qtbot)
    assert Project.get_by_id(1).directory == str(tmp_path / "storage" / "gui")
    pa.unarchive.trigger()
    _settle(pa, qtbot)
    assert Project.get_by_id(1).archived_at is None
    qtbot.waitUntil(lambda: "[archived]" not in window.browser.topLevelItem(0).text(0), timeout=10000)


def test_delete_from_the_context_menu_asks_about_finals_then_deletes(window, qtbot, tmp_path):
    pa = window.project_actions
    pdir = Path(Project.get_by_id(1).directory)
    pa.update_enabled("P1")  # as the browser's context menu on P1 does
    pa.delete.trigger()
    qtbot.waitUntil(lambda: pa.dialog is not None, timeout=10000)
    assert "final results (J3)" in pa.dialog.label.text()
    from PySide6.QtWidgets import QCheckBox

    pa.dialog.findChild(QCheckBox, "includeFinals").setChecked(True)
    first = pa.dialog
    first.accept()
    qtbot.waitUntil(lambda: pa.dialog is not None and pa.dialog is not first, timeout=10000)
    assert "Final results deleted with it: J3" in pa.dialog.label.text()
    pa.dialog.accept()
    _settle(pa, qtbot)
    assert Project.select().count() == 0 and not pdir.exists()
    qtbot.waitUntil(lambda: window.browser.topLevelItemCount() == 0, timeout=10000)
    # reduce the database's size: previewed, then done
    pa.compact.trigger()
    dialog = _accept(pa, qtbot)
    assert "VACUUM" in dialog.label.text()
    _settle(pa, qtbot)


def test_attach_of_another_databases_directory_asks_before_taking_it_over(window, qtbot, tmp_path):
    from cryodesk import db as dbmod
    from cryodesk.core import ownership

    pa = window.project_actions
    gui_db = dbmod.db.obj
    other = dbmod.open_database(str(tmp_path / "other.sqlite"))  # another database makes a project
    with other.connection_context():
        p, _ = build("Theirs", tmp_path / "theirs", tmp_path / "raw")
        theirs = p.directory
    dbmod.db.initialize(gui_db)
    pa.ask_directory = lambda title, start: theirs
    pa.attach.trigger()
    qtbot.waitUntil(lambda: pa.dialog is not None, timeout=10000)
    assert "owned by another database" in pa.dialog.label.text() and Project.select().count() == 1
    pa.dialog.accept()
    _settle(pa, qtbot)
    assert Project.select().count() == 2 and ownership.is_ours(ownership.read_lock(theirs))
    qtbot.waitUntil(lambda: window.browser.topLevelItemCount() == 2, timeout=10000)
