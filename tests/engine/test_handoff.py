"""Handing queued jobs over when the app goes to the background; who runs what (lifecycle.active_jobs)."""

from __future__ import annotations

import os

from cryodesk.core import jobs, lifecycle


def _chain(project):
    parent = jobs.create_job(project, "e_gate", "W1", params={"gate": "p"})
    child = jobs.create_job(project, "e_gate", "W1", [jobs.InputSpec("particles", parent.uid)],
                            params={"gate": "c"})
    return parent, child


def test_hand_off_releases_only_the_queued_jobs_the_engine_still_owns(engine, project, gates, qtbot):
    parent, child = _chain(project)
    engine.queue(project, [parent.uid, child.uid])
    qtbot.waitUntil(lambda: jobs.get_job(project, parent.uid).status == "running", timeout=5000)
    where = {a.uid: a for a in lifecycle.active_jobs()}
    assert where[parent.uid].where == "here" and where[child.uid].where == "here"
    handed = []
    engine.job_handed_off.connect(lambda p, j: handed.append(j))
    taken = engine.hand_off_queued()
    assert [j.uid for j in taken] == [child.uid] and handed == [child.uid]
    assert engine.jobs() == {"running": [(project.uid, parent.uid)], "queued": []}
    fresh = jobs.get_job(project, child.uid)
    assert fresh.status == "queued" and fresh.owner_engine is None  # a worker may claim it now
    assert [j.uid for j in lifecycle.claimable(project)] == [child.uid]
    assert {a.uid: a.where for a in lifecycle.active_jobs()}[child.uid] == "no process"
    # a second engine (a worker) claims it; it waits for the parent still running in the first
    from cryodesk.engine import Engine

    worker = Engine(poll_interval_ms=100)
    try:
        assert [j.uid for j in worker.adopt_queued(project)] == [child.uid]
        gates["p"].set()
        qtbot.waitUntil(lambda: jobs.get_job(project, parent.uid).status == "completed", timeout=5000)
        qtbot.waitUntil(lambda: jobs.get_job(project, child.uid).status == "running", timeout=5000)
        gates["c"].set()
        qtbot.waitUntil(lambda: jobs.get_job(project, child.uid).status == "completed", timeout=5000)
    finally:
        assert worker.shutdown(10000)
    assert lifecycle.hand_off([child.id], engine.owner) == []  # finished: nothing to hand off


def test_active_jobs_names_other_processes_and_dead_ones(project):
    job = jobs.create_job(project, "e_gate", "W1")
    other = {**lifecycle.new_owner(), "pid": 1, "start": None, "engine": "someone"}  # pid 1: alive, not us
    lifecycle.mark_queued([job], other)
    (row,) = lifecycle.active_jobs(project)
    assert row.where.startswith("process 1 on ") and row.owner_pid == 1 and not row.kill_requested
    assert lifecycle.request_kill(project, job) == "killed"  # queued: killed at once, wherever it is
    assert lifecycle.active_jobs(project) == []
    info = lifecycle.finished_since(project.uid, [job.uid, "J999"])
    assert list(info) == [job.uid] and info[job.uid]["status"] == "killed"
    assert os.getpid() != 1
