"""Lanes in the window: Run on lane… with a SLURM lane (a scripted scheduler), the inspector, the Lanes dialog."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt

from cryodesk.core import jobs, lanes

from .test_actions import _select


def _scheduler(root: Path) -> dict:
    """submit / status / cancel scripts keeping "id|STATE" lines in ``root/states`` (ids from 100)."""
    root.mkdir()
    states = root / "states"
    states.write_text("")
    (root / "submit.sh").write_text(
        'n=$(($(wc -l < "$0.count" 2>/dev/null || echo 0) + 100)); echo x >> "$0.count"\n'
        f'echo "$n|PENDING" >> {states}; echo "$n"\n')
    (root / "cancel.sh").write_text(f'sed -i "s/^$1|.*/$1|CANCELLED/" {states}\n')
    return {"submit": f"sh {root}/submit.sh {{{{ script_path_abs }}}}", "status": f"cat {states}",
            "cancel": f"sh {root}/cancel.sh {{{{ cluster_job_id }}}}", "cryodesk_cmd": "cryodesk",
            "vars": {"queue": "short"},
            "script": lanes.DEFAULT_SCRIPT.replace("{{ run_cmd }}", "# queue {{ queue }}\n{{ run_cmd }}")}


def _status(win, uid):
    snap = win.view.scene().snap
    return snap.status_name(snap.index_of(uid))


def test_run_on_lane_submits_and_the_window_follows_the_cluster(demo, make_window, qtbot, tmp_path, artifacts_dir):
    lanes.add_lane("hpc", "slurm", **_scheduler(tmp_path / "sched"))
    job = jobs.create_job("P1", "ui_source", "W1")
    win = make_window()
    win.bridge.lanes._timer.setInterval(100)
    _select(win, qtbot, job.uid)
    assert win.jobs.run_on_lane.isEnabled()
    win.jobs.run_on_lane.trigger()
    dialog = win.jobs.dialog
    assert [dialog.lane.itemText(i) for i in range(dialog.lane.count())] == ["This app (local)", "hpc (slurm)"]
    assert not dialog.vars.isEnabled()  # local: no script
    dialog.lane.setCurrentIndex(1)
    assert dialog.vars.isEnabled() and "Submitted to the cluster" in dialog.about.text()
    dialog.vars.setText("queue=long")
    qtbot.mouseClick(dialog.run_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: _status(win, job.uid) == "launched", timeout=10000)
    _select(win, qtbot, job.uid)
    ins = win.inspector
    qtbot.waitUntil(lambda: "cluster job 100" in ins.lane_info.text(), timeout=5000)
    assert ins.lane_info.isVisible() and "hpc (slurm)" in ins.lane_info.text()
    script = ins.lane_script.toPlainText()
    assert "# queue long" in script and f"worker run-job P1 {job.uid}" in script
    win.grab().save(str(artifacts_dir / "ui_lane_inspector.png"))
    # the cluster loses the job: the window's tracker marks it failed, saying why
    (tmp_path / "sched" / "states").write_text("")
    qtbot.waitUntil(lambda: _status(win, job.uid) == "failed", timeout=10000)
    assert "no exit record" in jobs.get_job("P1", job.uid).error


def test_a_bad_script_variable_keeps_the_dialog_open(demo, make_window, qtbot, tmp_path):
    lanes.add_lane("hpc", "slurm", **_scheduler(tmp_path / "sched"))
    job = jobs.create_job("P1", "ui_source", "W1")
    win = make_window()
    win.jobs.do_run_on_lane([job.uid])
    dialog = win.jobs.dialog
    dialog.lane.setCurrentIndex(1)
    dialog.vars.setText("oops")
    dialog._accept()
    assert dialog.isVisible() and "NAME=VALUE" in dialog.error.text()
    assert jobs.get_job("P1", job.uid).status == "building"


def test_lanes_dialog_shows_each_lane_and_its_status(demo, make_window, qtbot, tmp_path):
    lanes.add_lane("hpc", "slurm", **_scheduler(tmp_path / "sched"))
    lanes.add_lane("down", "slurm", status="false")
    lanes.add_lane("ws2", "worker", host="ws2.lab")
    win = make_window()
    win.actions["lanes"].trigger()
    dialog = win.lanes_dialog
    table = dialog.table
    qtbot.waitUntil(lambda: table.rowCount() == 3 and "checking" not in table.item(0, 3).text(), timeout=10000)
    rows = {table.item(r, 0).text(): table.item(r, 3).text() for r in range(3)}
    assert rows["hpc"].startswith("ok: scheduler answered")
    assert rows["down"].startswith("UNREACHABLE") and "status command failed" in rows["down"]
    assert "worker run --lane ws2" in rows["ws2"]
    dialog.close()


def test_kill_in_the_window_cancels_the_cluster_job(demo, make_window, qtbot, tmp_path):
    lanes.add_lane("hpc", "slurm", **_scheduler(tmp_path / "sched"))
    job = jobs.create_job("P1", "ui_source", "W1")
    lanes.send("P1", [job.uid], "hpc")
    win = make_window()
    assert _status(win, job.uid) == "launched"
    table = win.running.table
    qtbot.waitUntil(lambda: table.rowCount() == 1 and "lane hpc, cluster job 100" in
                    " ".join(table.item(0, c).text() for c in range(table.columnCount()) if table.item(0, c)),
                    timeout=10000)
    _select(win, qtbot, job.uid)
    assert win.jobs.kill.isEnabled()
    win.jobs.kill.trigger()
    qtbot.waitUntil(lambda: _status(win, job.uid) == "killed", timeout=10000)
    assert "100|CANCELLED" in (tmp_path / "sched" / "states").read_text()
    assert "before it ran" in jobs.get_job("P1", job.uid).error


def test_kill_of_a_cluster_job_never_blocks_the_window(demo, make_window, qtbot, tmp_path):
    """The lane's cancel command (scancel, perhaps through ssh) runs off the GUI thread: here it takes 2 s,
    and meanwhile a QTimer of the window keeps firing."""
    import time

    from PySide6.QtCore import QTimer

    options = _scheduler(tmp_path / "sched")
    options["cancel"] = f"sh -c 'sleep 2; sh {tmp_path}/sched/cancel.sh \"$0\"' {{{{ cluster_job_id }}}}"
    lanes.add_lane("hpc", "slurm", **options)
    job = jobs.create_job("P1", "ui_source", "W1")
    lanes.send("P1", [job.uid], "hpc")
    win = make_window()
    ticks = []
    timer = QTimer(win)
    timer.setInterval(50)
    timer.timeout.connect(lambda: ticks.append(time.monotonic()))
    timer.start()
    started = time.monotonic()
    out = win.session.kill([("P1", job.uid)])
    assert time.monotonic() - started < 1.0 and out == {job.uid: "cancelling"}
    states = tmp_path / "sched" / "states"
    qtbot.waitUntil(lambda: "100|CANCELLED" in states.read_text(), timeout=15000)
    assert time.monotonic() - started >= 2.0  # the cancel command did take its 2 s ...
    during = [t for t in ticks if started < t < started + 2.0]
    assert len(during) >= 15, len(during)  # ... while the window went on (40 ticks if nothing else ran)
    qtbot.waitUntil(lambda: _status(win, job.uid) == "killed", timeout=10000)


def test_session_view_restores_on_a_slurm_lane_and_kills_it(demo, make_window, qtbot, tmp_path, artifacts_dir):
    from cryodesk.core import sessions
    from cryodesk.ui.session_view import open_session

    lanes.add_lane("hpc", "slurm", **_scheduler(tmp_path / "sched"))
    (tmp_path / "in").mkdir()
    s = sessions.create("P1", str(tmp_path / "in" / "*.mrc"), "grid", lane="hpc")
    sessions.set_status(s.project, s, "compacted")
    win = make_window()
    view = open_session(win, "P1", s.uid)
    view._timer.setInterval(100)
    assert "restores run on lane hpc" in view.summary.text() and not view.buttons["kill"].isEnabled()
    view.buttons["restore"].click()
    qtbot.waitUntil(lambda: "restore on lane <b>hpc</b>: <b>launched</b> (cluster job 100)" in view.summary.text(),
                    timeout=10000)
    assert "submitted to lane 'hpc' as cluster job 100" in view.status_line.text()
    assert not view.buttons["restore"].isEnabled() and view.buttons["kill"].isEnabled()
    assert not win.live_sessions.runners  # not run here: the cluster runs it
    view.grab().save(str(artifacts_dir / "ui_session_restore_on_lane.png"))
    assert "worker run-session P1 S1 --restore" in (Path(s.project.directory) / "S1/lane/submit.sh").read_text()
    view.buttons["kill"].click()
    qtbot.waitUntil(lambda: "<b>killed</b>" in view.summary.text(), timeout=10000)
    assert "100|CANCELLED" in (tmp_path / "sched" / "states").read_text()
    assert sessions.get_session("P1", s.uid).status == "restoring" and view.buttons["restore"].isEnabled()
    view.close()
