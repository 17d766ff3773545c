"""Process A of the keep-running test (tests/ui/test_background.py): the real main window with a job
running and one queued behind it, quit and answered "Keep running in the background" with a click.

Usage: python keep_running_app.py DB SETTINGS_INI PARENT_UID CHILD_UID
Prints ``BACKGROUND {json}`` when the window has gone to the background, ``EXIT <code>`` at the end.
The job types are the engine tests' (``enginetypes``, loaded by the sitecustomize the test puts on
PYTHONPATH, so the detached worker this process spawns knows them too).
"""

from __future__ import annotations

import json
import os
import sys

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def main() -> int:
    db_path, settings_path, parent_uid, child_uid = sys.argv[1:5]
    import enginetypes  # noqa: F401  (also loaded by sitecustomize; explicit here)
    from PySide6.QtCore import QSettings, Qt, QTimer
    from PySide6.QtTest import QTest

    from cryodesk import db as dbmod
    from cryodesk.ui.app import _background, get_app
    from cryodesk.ui.main_window import QtMainWindow

    app = get_app()
    dbmod.open_database(db_path)
    dbmod.db.connect(reuse_if_open=True)
    win = QtMainWindow(QSettings(settings_path, QSettings.Format.IniFormat))

    def went(info):
        _background(app, info)
        print("BACKGROUND " + json.dumps({"pid": os.getpid(), "handed": info["handed"],
                                          "worker_pid": info["worker_pid"], "log": str(info["log"]),
                                          "visible": win.isVisible()}), flush=True)

    win.session.went_background.connect(went)
    win.session.background_finished.connect(app.quit)
    win.show()
    win.bridge.engine.start()
    poll = QTimer()

    def quit_when_running():
        if win.running.status_of("P1", parent_uid) == "running":
            poll.stop()
            win.close()  # Ctrl+Q does this: the quit question opens (window-modal)
            QTimer.singleShot(200, lambda: QTest.mouseClick(win.session.dialog.background_button,
                                                            Qt.MouseButton.LeftButton))

    def start():
        win.bridge.queue("P1", [parent_uid, child_uid])
        poll.timeout.connect(quit_when_running)
        poll.start(50)

    QTimer.singleShot(300, start)
    code = app.exec()
    win.close_threads()
    dbmod.close_database()
    print(f"EXIT {code}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
