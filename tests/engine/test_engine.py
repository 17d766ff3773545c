"""The engine on real QThreadPools: run, fail, cancel, dependency order, refusals."""

from __future__ import annotations

from pathlib import Path

import enginetypes

from cryodesk.base.fsio import du_size
from cryodesk.core import actions, jobs
from cryodesk.db.models import Job, OutputFile

WAIT = 10000  # ms: generous, the machine is shared


def _job(project, type_name, *parents, **params):
    specs = [jobs.InputSpec("particles", p.uid) for p in parents]
    return jobs.create_job(project, type_name, "W1", specs, params)


def _fresh(job):
    return Job.get_by_id(job.id)


def _run(qtbot, engine, project, js, timeout=WAIT):
    finished = []
    engine.job_finished.connect(lambda p, j, s: finished.append((j, s)))
    with qtbot.waitSignal(engine.idle, timeout=timeout):
        plan = engine.queue(project, js)
    return plan, finished


def test_run_completes_and_records_outputs_size_and_log(qtbot, engine, project):
    j1 = _job(project, "t_source", nbytes=1234)
    j2 = _job(project, "t_iter", iterations=3)
    started, progress = [], []
    engine.job_started.connect(lambda p, j: started.append(j))
    engine.job_progress.connect(lambda p, j, f, m: progress.append((j, f, m)))
    plan, finished = _run(qtbot, engine, project, [j1, j2])
    assert plan.refused == [] and sorted(started) == ["J1", "J2"]
    assert sorted(finished) == [("J1", "completed"), ("J2", "completed")]
    assert ("J2", 1.0, "iteration 2") in progress
    pdir = Path(project.directory)
    j1 = _fresh(j1)
    assert j1.status == "completed" and j1.error is None and j1.completed_at is not None
    # the directory as du -sb counts it, kept exact across the rewrite of job.json with that very number
    assert 1234 < j1.size_bytes == du_size(pdir / "J1")
    assert [(f.group, f.path, f.size_bytes) for f in OutputFile.select().where(OutputFile.job == j1)] == [
        ("particles", "J1/data.bin", 1234)]
    log = (pdir / "J1" / "job.log").read_text()
    assert "started" in log and "completed" in log
    # the final version is kept (earlier ones may go if the project deletes intermediate results)
    assert max(f.version for f in OutputFile.select().where(OutputFile.job == j2)) == 2
    assert _fresh(j1).owner_engine is None and _fresh(j1).heartbeat_at is None  # the owner is released
    assert engine.is_idle


def test_failure_records_the_error_and_the_log(qtbot, engine, project):
    bad = _job(project, "e_fail", mode="data")
    bug = _job(project, "e_fail", mode="bug")
    _, finished = _run(qtbot, engine, project, [bad, bug])
    assert sorted(finished) == [("J1", "failed"), ("J2", "failed")]
    assert _fresh(bad).error == "the input stack is corrupt"
    # a bug is a sentence for the user (issue 20, item 12), its detail in the log
    assert _fresh(bug).error == "e_fail stopped on an unexpected internal error; details in J2/job.log"
    assert "ValueError: boom" in (Path(project.directory) / "J2" / "job.log").read_text()
    log = (Path(project.directory) / "J2" / "job.log").read_text()
    assert "about to fail" in log and "Traceback" in log


def _cancel_at_iteration(qtbot, engine, project, type_name):
    job = _job(project, type_name, iterations=50, delay=0.05)
    with qtbot.waitSignal(engine.job_progress, timeout=WAIT,
                          check_params_cb=lambda p, j, f, m: m == "iteration 2"):
        engine.queue(project, [job])
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT) as blocker:
        assert engine.cancel(project, "J1")
    assert blocker.args == [project.uid, "J1", "killed"]
    return _fresh(job)


def test_cancel_keeps_finished_iterations_when_the_type_says_so(qtbot, engine, project):
    job = _cancel_at_iteration(qtbot, engine, project, "e_iter")
    assert job.status == "killed" and job.error == "cancelled by the user"
    kept = [f.path for f in OutputFile.select().where(OutputFile.job == job)]
    assert kept[:3] == ["J1/iter_000.bin", "J1/iter_001.bin", "J1/iter_002.bin"]
    assert all((Path(project.directory) / p).exists() for p in kept)
    assert 300 <= job.size_bytes == du_size(Path(project.directory) / "J1")


def test_cancel_discards_partial_output_otherwise(qtbot, engine, project):
    job = _cancel_at_iteration(qtbot, engine, project, "e_iter_discard")
    assert job.status == "killed"
    assert OutputFile.select().where(OutputFile.job == job).count() == 0
    assert sorted(p.name for p in (Path(project.directory) / "J1").iterdir()) == ["job.json", "job.log"]


def test_jobs_given_together_run_in_dependency_order(qtbot, engine, project):
    j1 = _job(project, "t_source")
    j2 = _job(project, "t_step", j1)
    j3 = _job(project, "t_step", j2)
    j4 = _job(project, "t_step", j1, j3)
    order = []
    engine.job_started.connect(lambda p, j: order.append(("start", j)))
    engine.job_finished.connect(lambda p, j, s: order.append(("end", j)))
    plan, finished = _run(qtbot, engine, project, [j4, j3, j2, j1])  # given in reverse
    assert [j.uid for j in plan.jobs] == ["J1", "J2", "J3", "J4"]
    assert all(s == "completed" for _, s in finished)
    for parent, child in (("J1", "J2"), ("J2", "J3"), ("J3", "J4"), ("J1", "J4")):
        assert order.index(("end", parent)) < order.index(("start", child))


def test_a_failed_parent_fails_its_queued_descendants(qtbot, engine, project):
    j1 = _job(project, "e_fail")
    j2 = _job(project, "t_step", j1)
    j3 = _job(project, "t_step", j2)
    _, finished = _run(qtbot, engine, project, [j1, j2, j3])
    assert sorted(finished) == [("J1", "failed"), ("J2", "failed"), ("J3", "failed")]
    assert _fresh(j2).error == "not run: its input J1 failed; fix and re-run J1 first"
    assert _fresh(j3).error == "not run: its input J2 failed; fix and re-run J2 first"
    assert "not run" in (Path(project.directory) / "J2" / "job.log").read_text()


def test_cancelling_a_queued_parent_kills_its_children(qtbot, engine, project, gates):
    j1 = _job(project, "e_gate", gate="a")
    j2 = _job(project, "e_gate", j1, gate="b")
    j3 = _job(project, "t_step", j2)
    with qtbot.waitSignal(engine.job_started, timeout=WAIT):
        engine.queue(project, [j1, j2, j3])
    assert engine.jobs()["queued"] == [(project.uid, "J2"), (project.uid, "J3")]
    # the reason follows the parent's state at the next poll
    qtbot.waitUntil(lambda: engine.waiting_reason(project.uid, "J2") == "waiting for J1 (running)", timeout=WAIT)
    with qtbot.waitSignal(engine.job_finished, timeout=WAIT, check_params_cb=lambda p, j, s: j == "J3"):
        assert engine.cancel(project, "J2")
    assert _fresh(j2).status == "killed" and _fresh(j3).status == "killed"
    assert _fresh(j3).error == "not run: its input J2 was killed; re-run J2 first"
    with qtbot.waitSignal(engine.idle, timeout=WAIT):
        gates["a"].set()
    assert _fresh(j1).status == "completed"


def test_child_of_a_cleared_parent_is_refused_naming_the_parent(qtbot, engine, project):
    j1 = _job(project, "t_source")
    j2 = _job(project, "t_step", j1)
    _run(qtbot, engine, project, [j1])
    before = _fresh(j1).size_bytes
    assert actions.clear_jobs(project, [j1]).ok
    assert before - _fresh(j1).size_bytes >= 1000  # the size is recorded on clear too
    plan = engine.queue(project, [j2])
    assert plan.jobs == []
    assert plan.refused == [("J2", "J2: input 'particles' needs J1, which is building; run (or re-run) J1 first")]
    assert _fresh(j2).status == "building"
    # re-running the parent with it works, in order
    plan, finished = _run(qtbot, engine, project, [j2, j1])
    assert sorted(finished) == [("J1", "completed"), ("J2", "completed")]


def test_refusals_at_queue_time(qtbot, engine, project):
    j1 = _job(project, "t_source")
    _run(qtbot, engine, project, [j1])
    j2 = jobs.create_job(project, "t_step", "W1")  # required input not connected
    j3 = _job(project, "e_fail")
    j4 = _job(project, "t_step", j3)
    jobs.set_status(j3, "failed", error="earlier")
    j5 = _job(project, "t_source")
    jobs.set_status(j5, "running")
    j6 = _job(project, "t_step", j1)  # named with its completed parent: the child still runs
    with qtbot.waitSignal(engine.idle, timeout=WAIT):
        plan = engine.queue(project, [j1, j2, j4, j5, j6])
    assert [j.uid for j in plan.jobs] == ["J6"] and _fresh(j6).status == "completed"
    assert dict(plan.refused) == {
        "J1": "J1: it is completed; clear it before running it again",
        "J5": "J5: it is already running",
        "J2": "J2: required input 'particles' is not connected",
        "J4": "J4: input 'particles' needs J3, which is failed; run (or re-run) J3 first",
    }


def test_io_jobs_do_not_wait_for_cpu_jobs(qtbot, project, gates):
    from cryodesk.engine import Engine

    engine = Engine(cpu_threads=1, poll_interval_ms=100)
    try:
        cpu_a = _job(project, "e_gate", gate="cpu")
        cpu_b = _job(project, "e_gate", gate="cpu")
        io = _job(project, "e_gate_io", gate="io")
        gates["io"].set()
        with qtbot.waitSignal(engine.job_finished, timeout=WAIT, check_params_cb=lambda p, j, s: j == "J3"):
            engine.queue(project, [cpu_a, cpu_b, io])
        assert _fresh(io).status == "completed"
        assert {_fresh(cpu_a).status, _fresh(cpu_b).status} == {"running", "queued"}  # one cpu thread
        with qtbot.waitSignal(engine.idle, timeout=WAIT):
            gates["cpu"].set()
        starts = {j: t for j, what, t in enginetypes.EVENTS if what == "start"}
        ends = {j: t for j, what, t in enginetypes.EVENTS if what == "end"}
        first, second = sorted(["J1", "J2"], key=starts.get)
        assert ends[first] <= starts[second]  # never two cpu jobs at once with one thread
    finally:
        assert engine.shutdown(10000)


def test_a_child_waits_for_a_parent_run_by_another_engine(qtbot, engine, project, gates):
    from cryodesk.engine import Engine

    other = Engine(poll_interval_ms=100)  # stands for another process: only the database is shared
    try:
        j1 = _job(project, "e_gate", gate="other")
        j2 = _job(project, "t_step", j1)
        with qtbot.waitSignal(other.job_started, timeout=WAIT):
            other.queue(project, [j1])
        with qtbot.waitSignal(engine.job_waiting, timeout=WAIT) as blocker:
            assert [j.uid for j in engine.queue(project, [j2]).jobs] == ["J2"]
        assert blocker.args[2].startswith("waiting for J1")
        with qtbot.waitSignal(engine.job_finished, timeout=WAIT) as blocker:
            gates["other"].set()
        assert blocker.args == [project.uid, "J2", "completed"]
    finally:
        assert other.shutdown(10000)


def test_a_job_refused_when_it_starts_ends_failed_not_queued(project):
    import threading

    from cryodesk.core import lifecycle
    from cryodesk.engine.bodies import job_body

    j1 = _job(project, "t_source")
    j2 = _job(project, "t_step", j1)
    jobs.set_status(j1, "completed")  # completed, but its files are gone (say, removed by hand)
    lifecycle.mark_queued([j2])
    started = []
    status, error = job_body(project.uid, "J2")(lambda f, m: None, threading.Event(), lambda: started.append(1))
    assert status == "failed" and started == [1]
    assert error == "not run: J1 has no files in output 'particles' (was it cleared?); re-run J1 first"
    assert _fresh(j2).status == "failed" and _fresh(j2).error == error
