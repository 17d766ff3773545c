"""Application entry point: ``cryodesk gui`` → :func:`run_app`."""

from __future__ import annotations

import sys

from PySide6.QtWidgets import QApplication, QMessageBox

from ..core.errors import CryodeskError

ORG, APP = "cryodesk", "cryodesk"


def get_app(argv=None) -> QApplication:
    """The process' QApplication (created once; Fusion style follows the system palette)."""
    app = QApplication.instance()
    if app is None:
        app = QApplication(list(argv or sys.argv[:1]))
        app.setOrganizationName(ORG)
        app.setApplicationName(APP)
        app.setStyle("Fusion")
    return app


def run_app(db_url: str | None = None) -> int:
    """Open the database at ``db_url`` (or the default), show the main window, run the event loop.

    Returns the process exit code.
    """
    from .. import db as dbmod
    from .main_window import QtMainWindow

    app = get_app()
    try:
        dbmod.open_database(db_url)
    except CryodeskError as exc:
        QMessageBox.critical(None, "cryodesk", f"Cannot open the database:\n{exc}")
        return 1
    # The GUI thread keeps one connection open for its whole life; workers open their own.
    dbmod.db.connect(reuse_if_open=True)
    window = QtMainWindow()
    window.show()
    window.restore_last_project()
    if window.bridge.engine is not None:
        window.bridge.engine.start()  # recover jobs a crashed session left running
    try:
        return app.exec()
    finally:
        window.close_threads()
        dbmod.close_database()
