"""Quitting with jobs running: the question, "don't quit", "kill them", and "keep running" for real across
processes (the app keeps its running job, a detached worker takes the queued one, the next start shows both)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from cryodesk.core import jobs, projects

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests" / "engine")]
import enginetypes  # noqa: E402,F401  (the engine tests' job types: e_iter runs slowly)


def _chain(tmp_path, parent_iterations: int, delay: float = 0.1):
    """P1 with J1 (slow, iterative) and J2 reading J1's classes."""
    p = projects.create_project("Background", tmp_path / "proj")
    projects.create_workspace(p, "main")
    parent = jobs.create_job(p, "e_iter", "W1", params={"iterations": parent_iterations, "delay": delay})
    child = jobs.create_job(p, "e_iter", "W1", [jobs.InputSpec("particles", parent.uid, "classes")],
                            params={"iterations": 2, "delay": 0.05})
    return p, parent, child


def _status(uid: str) -> str:
    return jobs.get_job("P1", uid).status


def test_quitting_with_a_running_job_asks_and_dont_quit_keeps_everything(ui_db, tmp_path, make_window, qtbot,
                                                                          artifacts_dir):
    _chain(tmp_path, parent_iterations=200)
    win = make_window()
    win.bridge.queue("P1", ["J1", "J2"])
    qtbot.waitUntil(lambda: win.running.status_of("P1", "J1") == "running", timeout=10000)
    win.actions["quit"].trigger()  # Ctrl+Q
    dialog = win.session.dialog
    assert dialog is not None and dialog.isVisible() and win.isVisible()
    assert dialog.table.rowCount() == 2 and "1 job(s) running, 1 queued" in dialog.label.text()
    assert dialog.background_button.isDefault()  # Enter never kills work
    dialog.grab().save(str(artifacts_dir / "ui_quit_dialog.png"))
    qtbot.mouseClick(dialog.stay_button, Qt.MouseButton.LeftButton)
    assert win.isVisible() and win.session.mode is None
    assert _status("J1") == "running" and _status("J2") == "queued"
    # Kill them and quit: the jobs end killed, saying so, and the window closes
    win.close()
    qtbot.mouseClick(win.session.dialog.kill_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not win.isVisible(), timeout=15000)
    assert _status("J1") == "killed" and _status("J2") == "killed"
    assert "cancelled" in jobs.get_job("P1", "J1").error


def test_keep_running_in_the_background_across_two_processes(ui_db, tmp_path, make_window, qtbot, artifacts_dir):
    """Process A (the app) quits with "keep running": its running job completes in A, which then exits;
    the queued job goes to a detached worker; this process, the next start, shows both and their ends."""
    _chain(tmp_path, parent_iterations=50, delay=0.15)  # ~7.5 s
    site = tmp_path / "site"
    site.mkdir()
    # the detached worker A spawns must know the test job types too
    (site / "sitecustomize.py").write_text(
        f"import sys\nsys.path[:0] = [{str(REPO / 'tests' / 'engine')!r}, {str(REPO / 'tests')!r}]\n"
        "import enginetypes  # noqa\n")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), str(REPO)]), QT_QPA_PLATFORM="offscreen",
               XDG_STATE_HOME=str(tmp_path / "state"), XDG_CONFIG_HOME=str(tmp_path / "config"))
    a = subprocess.Popen([sys.executable, str(REPO / "tests" / "ui" / "keep_running_app.py"), ui_db.database,
                          str(tmp_path / "a.ini"), "J1", "J2"], env=env, cwd=REPO, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        line = ""
        deadline = time.monotonic() + 60
        while not line.startswith("BACKGROUND") and time.monotonic() < deadline:
            line = a.stdout.readline()
            if not line and a.poll() is not None:
                pytest.fail(f"process A ended early ({a.returncode}): {a.stderr.read()}")
        info = json.loads(line.split(" ", 1)[1])
        assert info["handed"] == ["P1 J2"] and info["worker_pid"] and not info["visible"]
        assert a.poll() is None  # A lives on, hidden, while J1 runs
        # the next start of the app: both jobs show, run by other live processes
        win = make_window()
        panel = win.running
        qtbot.waitUntil(lambda: panel.status_of("P1", "J1") == "running", timeout=15000)
        where = panel.table.item(panel.row_of("P1", "J1"), 5).text()
        assert f"process {info['pid']}" in where
        assert panel.status_of("P1", "J2") in ("queued", "waiting")
        snap = win.view.scene().snap
        assert snap.status_name(snap.index_of("J1")) == "running"
        win.grab().save(str(artifacts_dir / "ui_next_start_shows_background_jobs.png"))
        # J1 completes in A, J2 in the worker; the window follows by change events alone
        qtbot.waitUntil(lambda: panel.status_of("P1", "J1") == "completed"
                        and panel.status_of("P1", "J2") == "completed", timeout=90000)
        qtbot.waitUntil(lambda: win.view.scene().snap.status_name(win.view.scene().snap.index_of("J2"))
                        == "completed", timeout=15000)
        assert _status("J1") == "completed" and _status("J2") == "completed"
        out, err = a.communicate(timeout=60)
        assert a.returncode == 0, err
        assert "EXIT 0" in out
        assert "queued jobs handed to a worker: P1 J2" in err
    finally:
        if a.poll() is None:
            a.kill()
            a.wait()
    _wait_gone(info["worker_pid"])
    log = Path(info["log"]).read_text()
    assert "P1 J2: completed" in log


def _wait_gone(pid: int, timeout: float = 30.0) -> None:
    """Wait for a process that is not our child to end (a zombie counts as ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            return
        if state in ("Z", "X"):
            return
        time.sleep(0.1)
    pytest.fail(f"worker {pid} still running")
