"""Application entry point: ``cryodesk gui`` → :func:`run_app`."""

from __future__ import annotations

import os
import sys

from PySide6.QtWidgets import QApplication, QMessageBox

from ..base.errors import CryodeskError

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


def run_app(db_url: str | None = None, size: tuple[int, int] | None = None, theme: str = "system") -> int:
    """Open the database at ``db_url`` (or the default), show the main window, run the event loop.

    ``size`` is the window's (width, height) (default: as last time); ``theme`` ``"light"`` or
    ``"dark"`` overrides the desktop's colours.  Returns the process exit code.
    """
    from .. import db as dbmod
    from .main_window import QtMainWindow

    _crash_reports()
    app = get_app()
    if theme != "system":
        from .palette import themed_palette

        app.setPalette(themed_palette(theme))
    try:
        dbmod.open_database(db_url)
    except CryodeskError as exc:
        QMessageBox.critical(None, "cryodesk", f"Cannot open the database:\n{exc}")
        return 1
    # The GUI thread keeps one connection open for its whole life; workers open their own.
    dbmod.db.connect(reuse_if_open=True)
    window = QtMainWindow()
    window.session.went_background.connect(lambda info: _background(app, info))
    window.session.background_finished.connect(app.quit)
    if size is not None:
        window.resize(*size)
    window.show()
    if not _has_projects():
        _create_demo(window)  # first run: a realistic project to look at, built off the GUI thread
    window.restore_last_project()
    window.load_job_types()  # the tree first; the job types (numba kernels) on a worker meanwhile
    window.bridge.engine.start()  # recover jobs a crashed session left running
    try:
        return app.exec()
    finally:
        window.close_threads()
        dbmod.close_database()


def _crash_reports() -> None:
    """A fatal signal (a crash in Qt or a kernel) prints every thread's Python stack to stderr
    (the terminal, or the session's log when started from a desktop menu)."""
    import faulthandler

    try:
        faulthandler.enable(all_threads=True)
    except (AttributeError, OSError, ValueError, RuntimeError):  # no usable stderr: no report rather than no app
        pass


def _background(app, info: dict) -> None:
    """The window hid to let its running jobs finish: survive the terminal closing, exit when they are done."""
    import signal

    app.setQuitOnLastWindowClosed(False)
    if hasattr(signal, "SIGHUP"):
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    handed = ", ".join(info.get("handed") or []) or "none"
    print(f"cryodesk: running jobs continue in process {os.getpid()}; queued jobs handed to a worker: {handed}"
          + (f" (process {info['worker_pid']}, log {info['log']})" if info.get("worker_pid") else ""),
          file=sys.stderr, flush=True)


def _has_projects() -> bool:
    from ..core.projects import list_projects

    return bool(list_projects())


def _create_demo(window) -> None:
    """Build the demo project in a worker; the browser shows it when it is ready."""
    from ..demo.project import create_demo_project, default_demo_dir
    from ..engine import workers

    target = default_demo_dir()
    if (target / "project").exists():
        return  # made before (then detached): do not overwrite it
    window.statusBar().showMessage(f"First start: creating a demo project on simulated data in {target}…")

    def done(project):
        window.statusBar().showMessage(f"Demo project {project.uid} is ready in {project.directory}", 10000)
        window.refresh_browser()
        window.restore_last_project()

    def failed(exc):
        window.statusBar().showMessage(f"Could not create the demo project: {exc}")

    window._demo_worker = workers.submit(create_demo_project, target, on_done=done, on_error=failed,
                                          context=window)
