"""The leak check every test runs under (tests/conftest.py): it finds what a test leaves running."""

from __future__ import annotations

import os
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_a_running_worker_is_reported_with_where_it_was_started(database, qtbot, leak_watch):
    from cryodesk.engine import workers

    gate = threading.Event()
    workers.submit(gate.wait, 10)
    leaks = leak_watch.report()
    assert any("worker still running" in line and "test_leak_checks.py" in line for line in leaks), leaks
    assert any("busy thread" in line for line in leaks), leaks
    gate.set()
    assert workers.wait_all(5000)
    assert leak_watch.report() == []


def test_threads_timers_and_windows_are_reported(qtbot, leak_watch):
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QLabel

    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="left-behind")
    daemon = threading.Thread(target=stop.wait, daemon=True)  # daemons never block exit: not a leak
    timer = QTimer()
    label = QLabel("nobody closed me")
    label.setWindowTitle("a window nobody closed")
    try:
        thread.start()
        daemon.start()
        timer.start(1000)
        label.show()
        leaks = leak_watch.report()
        assert any("left-behind" in line for line in leaks), leaks
        assert any("QTimer still active" in line for line in leaks), leaks
        assert any("QLabel" in line and "a window nobody closed" in line for line in leaks), leaks
        assert len(leaks) == 3, leaks
    finally:  # a thread left running would keep the test process from exiting
        stop.set()
        thread.join()
        timer.stop()
        label.close()
    assert leak_watch.report() == []


def test_the_autouse_check_fails_a_test_that_leaks_a_worker(pytester, monkeypatch):
    """End to end, in a sub-session with this suite's conftest: a leaking test errors, a clean one passes."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    pytester.makeconftest((REPO / "tests" / "conftest.py").read_text())
    pytester.makepyfile(test_leaky='''
        import threading

        from PySide6.QtCore import QCoreApplication

        GATE = threading.Event()


        def test_leaks_a_worker(database):
            app = QCoreApplication.instance() or QCoreApplication([])
            from cryodesk.engine import workers

            workers.submit(GATE.wait, 2)  # still waiting when the test returns


        def test_cleans_up(database):
            from cryodesk.engine import workers

            GATE.set()
            workers.submit(lambda: 1)
            assert workers.wait_all(5000)
    ''')
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:pytestqt", "-q")
    result.assert_outcomes(passed=2, errors=1)
    result.stdout.fnmatch_lines(["*test_leaks_a_worker left things running:*",
                                 "*worker still running: <Worker *Event.wait started at *test_leaky.py:*"])
