"""Issue 20 item 4: clear against mark-final, set-param against mark-final, on SQLite and PostgreSQL.

Before the write guard, ``job clear`` and ``job final`` racing ended with a job
final *and* cleared, and ``set_params`` changed the parameters of a job that had
just become an ancestor of final.  Here each race is made certain rather than
likely: one side stops inside its locked transaction (a test hook,
:mod:`cryodesk.base.hooks`), the other side starts meanwhile in another thread
(its own connection), and must wait for the first and then judge the state the
first committed.  Both orders are tried.  (tests/core/test_races.py runs the
same races many times between two processes.)
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from throwaway import PG_URL, empty_database

from cryodesk import db as dbmod
from cryodesk.base import hooks
from cryodesk.base.errors import Refused
from cryodesk.core import actions, finals, jobs, projects, runner
from cryodesk.db.models import Job, OutputFile

HOLD_S = 0.1


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.skipif(not PG_URL,
                                                                               reason="set CRYODESK_TEST_PG_URL"))])
def race_project(request, tmp_path):
    empty_database(PG_URL if request.param == "pg" else str(tmp_path / "race.sqlite"))
    try:
        with dbmod.db.connection_context():
            p = projects.create_project("Race", tmp_path / "proj")
            projects.create_workspace(p, "main")
            yield p
    finally:
        hooks.clear()
        dbmod.close_database()


class Other(threading.Thread):
    """The other side: ``fn()`` in a thread of its own (its own database connection)."""

    def __init__(self, fn):
        super().__init__(daemon=True)
        self.fn, self.result, self.error, self.started_at, self.done_at = fn, None, None, None, None

    def run(self):
        with dbmod.db.connection_context():
            self.started_at = time.monotonic()
            try:
                self.result = self.fn()
            except Exception as exc:  # noqa: BLE001 - a refusal is an outcome of the race
                self.error = exc
            self.done_at = time.monotonic()


def _hold(name: str, started: list, when=lambda **info: True):
    """At hook ``name`` (inside the first side's transaction): start the other side, keep the locks a while."""
    state = {"released_at": None}

    def fn(**info):
        if not when(**info) or not started:
            return
        other = started.pop()
        other.start()
        time.sleep(HOLD_S)  # the other side now runs into the locks this transaction holds
        state["released_at"] = time.monotonic()

    hooks.register(name, fn)
    return state


def _completed_source(p):
    j = jobs.create_job(p, "h_source", "W1", params={"nbytes": 30})
    runner.run_job(p, j)
    return Job.get_by_id(j.id)


def _cleared(job: Job) -> bool:
    job = Job.get_by_id(job.id)
    return job.status != "completed" or not OutputFile.select().where(OutputFile.job == job).exists()


def test_races_end_in_a_serial_order(race_project):
    """The four races on one project (one database set-up per backend)."""
    for race in (_clear_then_final, _final_then_clear, _set_params_then_final, _final_then_set_params):
        hooks.clear()
        race(race_project)


def _clear_then_final(p):
    j = _completed_source(p)
    other = Other(lambda: finals.set_final(p, [j]))
    state = _hold("deletion.rechecked", [other], when=lambda refused, **i: refused is None)
    result = actions.clear_jobs(p, [j])
    other.join(30)
    assert other.started_at < state["released_at"], "the race did not happen"
    assert result.ok and _cleared(j)
    final = other.result
    assert final is not None and not final.ok, "mark-final succeeded on a job that was being cleared"
    assert not Job.get_by_id(j.id).is_final


def _final_then_clear(p):
    j = _completed_source(p)
    plan = actions.plan_clear(p, [j])  # shown to the user before the job was marked final elsewhere
    other = Other(lambda: actions.run_plan(p, plan))
    state = _hold("finals.checked", [other])
    assert finals.set_final(p, [j]).ok
    other.join(30)
    assert other.started_at < state["released_at"], "the race did not happen"
    assert other.error is None and not other.result.ok
    assert "final result" in other.result.outcomes[0].message
    job = Job.get_by_id(j.id)
    assert job.is_final and not _cleared(job)
    assert (Path(p.directory) / j.uid / "data.bin").exists()


def _ancestor_building(p):
    """J1 (source, cleared: building) -> J2 (step, completed): J2 may be marked final, J1's params set."""
    src = _completed_source(p)
    child = jobs.create_job(p, "h_step", "W1", [jobs.InputSpec("particles", src.uid)])
    runner.run_job(p, child)
    assert actions.clear_jobs(p, [src]).ok
    return Job.get_by_id(src.id), Job.get_by_id(child.id)


def _set_params_then_final(p):
    src, child = _ancestor_building(p)
    other = Other(lambda: finals.set_final(p, [child]))
    state = _hold("jobs.set_params.checked", [other])
    jobs.set_params(p, src, {"nbytes": 77})
    other.join(30)
    assert other.started_at < state["released_at"], "the race did not happen"
    assert other.result is not None and other.result.ok
    # a serial order: the parameters changed, then the child became final (it waited)
    assert other.done_at > state["released_at"]
    src = Job.get_by_id(src.id)
    assert src.is_ancestor_of_final and src.params["nbytes"] == 77


def _final_then_set_params(p):
    src, child = _ancestor_building(p)
    other = Other(lambda: jobs.set_params(p, src, {"nbytes": 77}))
    state = _hold("finals.checked", [other])
    assert finals.set_final(p, [child]).ok
    other.join(30)
    assert other.started_at < state["released_at"], "the race did not happen"
    assert isinstance(other.error, Refused) and "ancestor of a final" in str(other.error), other.error
    src = Job.get_by_id(src.id)
    assert src.is_ancestor_of_final and src.params["nbytes"] == 30
