"""Crash recovery, ownership, cross-process kill requests, workers adopting queued jobs, tasks."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cryodesk.base.errors import DataError, JobCancelled, Refused
from cryodesk.core import jobs, lifecycle
from cryodesk.db.models import Job
from cryodesk.engine import Engine

WAIT = 10000


def _dead_owner() -> dict:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    owner = lifecycle.new_owner()
    owner.update(pid=proc.pid, start=None, engine="gone")
    return owner


def _with_status(project, status, owner=None, type_name="t_source"):
    job = jobs.create_job(project, type_name, "W1")
    if owner:
        lifecycle.mark_queued([job], owner)
    jobs.set_status(job, status)
    return Job.get_by_id(job.id)


def _fresh(job):
    return Job.get_by_id(job.id)


def test_recovery_marks_jobs_of_dead_processes_killed(qtbot, project):
    dead = _dead_owner()
    live = lifecycle.new_owner()
    lifecycle.engine_alive(live)
    try:
        running_dead = _with_status(project, "running", dead)
        queued_dead = _with_status(project, "queued", dead)
        launched_nobody = _with_status(project, "launched")  # a crash before ownership was recorded
        running_live = _with_status(project, "running", live)
        queued_nobody = _with_status(project, "queued")  # `job queue`: waits for a worker
        other_host = _with_status(project, "running", {**dead, "host": "elsewhere"})
        project_dir = Path(project.directory) / "J1"
        (project_dir / "partial.bin").write_bytes(b"x" * 5000)
        engine = Engine()
        recovered = engine.start()
        assert sorted(j.uid for j in recovered) == ["J1", "J2", "J3"]
        assert _fresh(running_dead).status == "killed"
        assert _fresh(running_dead).error == "interrupted: cryodesk exited while it ran"
        assert _fresh(running_dead).size_bytes >= 5000  # partial files are counted (cleanup can free them)
        assert _fresh(queued_dead).error == "interrupted: cryodesk exited while it was queued"
        assert _fresh(launched_nobody).status == "killed"
        assert [_fresh(j).status for j in (running_live, queued_nobody, other_host)] == ["running", "queued", "running"]
        assert "interrupted" in (project_dir / "job.log").read_text()
        engine.shutdown()
    finally:
        lifecycle.engine_alive(live, False)


def test_a_stopped_engine_in_this_process_counts_as_dead(qtbot, project):
    owner = lifecycle.new_owner()
    lifecycle.engine_alive(owner)
    job = _with_status(project, "running", owner)
    assert lifecycle.recover_interrupted() == []
    lifecycle.engine_alive(owner, False)
    assert [j.uid for j in lifecycle.recover_interrupted()] == [job.uid]


def test_claim_is_exclusive(project):
    job = jobs.create_job(project, "t_source", "W1")
    lifecycle.mark_queued([job])
    a, b = lifecycle.new_owner(), lifecycle.new_owner()
    lifecycle.engine_alive(a)
    try:
        assert [j.uid for j in lifecycle.claimable(project)] == ["J1"]
        assert lifecycle.claim(job, a)
        assert not lifecycle.claim(job, b)
        assert lifecycle.claimable(project) == []
    finally:
        lifecycle.engine_alive(a, False)


def test_kill_request_stops_a_running_job_across_processes(qtbot, engine, project, gates):
    job = jobs.create_job(project, "e_gate", "W1", params={"gate": "never"})
    with qtbot.waitSignal(engine.job_started, timeout=WAIT):
        engine.queue(project, [job])
    qtbot.waitUntil(lambda: _fresh(job).status == "running", timeout=WAIT)
    # what `cryodesk job kill` does from another process: only the database is shared
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT) as blocker:
        assert lifecycle.request_kill(project.uid, "J1") == "requested"
    assert blocker.args[2] == "killed"
    assert _fresh(job).error == "cancelled by the user"
    assert _fresh(job).kill_requested_at is None and _fresh(job).owner_engine is None


def test_engine_kill_cancels_its_own_jobs_and_requests_others(qtbot, engine, project, gates):
    mine = jobs.create_job(project, "e_gate", "W1", params={"gate": "never"})
    elsewhere = _with_status(project, "running", lifecycle.new_owner())
    lifecycle.engine_alive(owner_of_elsewhere := lifecycle.owner_of(elsewhere))
    try:
        with qtbot.waitSignal(engine.job_started, timeout=WAIT):
            engine.queue(project, [mine])
        with qtbot.waitSignal(engine.job_finished, timeout=WAIT):
            assert engine.kill(project, "J1") == "cancelled"
        assert engine.kill(project, "J2") == "requested"
        assert lifecycle.kill_requested([elsewhere.id]) == {elsewhere.id}
    finally:
        lifecycle.engine_alive(owner_of_elsewhere, False)


def test_kill_of_queued_and_finished_jobs(qtbot, engine, project):
    queued = jobs.create_job(project, "t_source", "W1")
    lifecycle.mark_queued([queued])
    assert lifecycle.request_kill(project, queued) == "killed"
    assert _fresh(queued).error == "killed by the user before it ran"
    with pytest.raises(Refused, match="only queued or running jobs can be killed"):
        lifecycle.request_kill(project, queued)
    orphan = _with_status(project, "running", _dead_owner())
    assert lifecycle.request_kill(project, orphan) == "killed"  # nobody is left to honour a request
    assert _fresh(orphan).error == "interrupted: cryodesk exited while it ran"


def test_a_queued_job_killed_elsewhere_leaves_the_engine(qtbot, engine, project, gates):
    parent = jobs.create_job(project, "e_gate", "W1", params={"gate": "p"})
    child = jobs.create_job(project, "t_step", "W1", [jobs.InputSpec("particles", "J1")])
    with qtbot.waitSignal(engine.job_started, timeout=WAIT):
        engine.queue(project, [parent, child])
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT) as blocker:
        assert lifecycle.request_kill(project, child) == "killed"
    assert blocker.args == [project.uid, "J2", "killed"]
    with qtbot.waitSignal(engine.idle, timeout=WAIT):
        gates["p"].set()


def test_engine_adopts_jobs_queued_without_owner(qtbot, engine, project):
    j1 = jobs.create_job(project, "t_source", "W1")
    j2 = jobs.create_job(project, "t_step", "W1", [jobs.InputSpec("particles", "J1")])
    plan = lifecycle.plan_queue(project, [j2, j1])
    lifecycle.mark_queued(plan.jobs)
    with qtbot.waitSignal(engine.idle, timeout=WAIT):
        assert [j.uid for j in engine.adopt_queued(project)] == ["J1", "J2"]
    assert [_fresh(j).status for j in (j1, j2)] == ["completed", "completed"]


def test_tasks_report_progress_result_failure_and_cancel(qtbot, engine):
    def count(progress, cancel):
        for i in range(5):
            progress((i + 1) / 5, f"step {i}")
            time.sleep(0.06)  # > the progress throttle, so every step is reported
        return 42

    seen = []
    with qtbot.waitSignal(engine.task_finished, timeout=WAIT) as blocker:
        tid = engine.submit_task("count", count, on_progress=lambda f, m: seen.append(m))
    assert blocker.args == [tid, "completed", 42] and seen[-1] == "step 4"

    def bad(progress, cancel):
        raise DataError("disk full")

    with qtbot.waitSignal(engine.task_finished, timeout=WAIT) as blocker:
        tid = engine.submit_task("bad", bad, pool="cpu")
    assert blocker.args == [tid, "failed", "disk full"]

    started = threading.Event()

    def endless(progress, cancel):
        started.set()
        while not cancel.wait(0.01):
            pass
        raise JobCancelled("stopped")

    done = []
    with qtbot.waitSignal(engine.idle, timeout=WAIT):
        tid = engine.submit_task("endless", endless, on_finished=lambda s, p: done.append(s))
        assert started.wait(5)
        assert engine.cancel_task(tid)
    assert done == ["cancelled"]
    with pytest.raises(ValueError):
        engine.submit_task("x", count, pool="gpu")


def test_tasks_may_use_the_database(qtbot, engine, project):
    with qtbot.waitSignal(engine.task_finished, timeout=WAIT) as blocker:
        engine.submit_task("count jobs", lambda progress, cancel: Job.select().count())
    assert blocker.args[1:] == ["completed", 0]
