"""Issue 20, silent wrong state: the database and the manifests never disagree after a crash (items 3, 7).

Item 3: ``job final`` killed at its manifest rename (before or after it), or
after the database commit, left the two disagreeing — and ``project attach``
into a new database then rebuilt the job as non-final, so ``cleanup
--non-final delete`` planned to delete a final result.  Every manifest write
is now recorded first (``.cryodesk/pending``, :mod:`cryodesk.core.pending`);
the next command repairs the manifests from the database, and attach keeps a
job final that a left record shows final.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from statecheck import attached_elsewhere, disagreements, run_concurrently, run_killed

from cryodesk.core import finals, jobs, pending, projects, recovery, registry, runner
from cryodesk.core.registry import JobType, OutputGroup
from cryodesk.db.models import Job


def _setup(database, tmp_path):
    p = projects.create_project("State", tmp_path / "proj")
    projects.create_workspace(p, "main")
    a = jobs.create_job(p, "h_source", "W1", params={"nbytes": 100})
    runner.run_job(p, a)
    return p, a


def _manifest(p, job) -> dict:
    return json.loads((Path(p.directory) / job.directory / "job.json").read_text())


@pytest.mark.parametrize("kill_at", [2, 9, 16, 23, 31, 34])
def test_final_killed_anywhere_db_and_manifest_agree_after_recovery(database, tmp_path, kill_at):
    p, a = _setup(database, tmp_path)
    how, _ = run_killed(database.database, ["job", "final", p.uid, a.uid], kill_at)
    recovery.recover_project(p, min_age_s=0)  # what the next writing command does first
    assert disagreements(p) == [], how


def test_final_killed_anywhere_then_attached_into_a_new_database_keeps_the_flag(database, tmp_path):
    """The old database is lost after the kill: attach rebuilds from the manifests; a final that the old
    database committed (or that an interrupted command was writing) must stay final there."""
    p, a = _setup(database, tmp_path)
    _, calls = run_killed(database.database, ["job", "final", p.uid, a.uid], 0)
    finals.set_final(p, [Job.get_by_id(a.id)], False)
    assert calls > 5
    seen = set()
    for k in [*range(2, calls + 1, max(1, calls // 4)), calls - 1, calls + 1]:  # (the last: it completes)
        run_killed(database.database, ["job", "final", p.uid, a.uid], k)
        committed = bool(Job.get_by_id(a.id).is_final)
        recorded = a.uid in pending.uncertain_finals(Path(p.directory))  # a 'final' the kill cut short
        there = attached_elsewhere(p.directory, str(tmp_path / f"new{k}.sqlite"), [a.uid])
        if committed or recorded:
            assert there["final"][a.uid], f"kill at call {k}: attach lost the final flag the database had"
            assert a.uid not in there["planned"]
        seen.add((committed, recorded))
        assert there["disagree"] == [], k
        recovery.recover_project(p, min_age_s=0)
        finals.set_final(p, [Job.get_by_id(a.id)], False)
        assert disagreements(p) == []
    assert (False, True) in seen and (True, False) in seen, seen  # both cases were met


# -- item 7: job run racing job delete ---------------------------------------------------------

def _vanish(ctx):
    """The job's row is deleted by another process while the body runs (as a racing delete would)."""
    import sqlite3

    from cryodesk import db as dbmod

    (ctx.job_dir / "data.bin").write_bytes(b"x" * 10)
    ctx.add_output("particles", ctx.job_dir / "data.bin", kind="blob")
    other = sqlite3.connect(dbmod.db.obj.database, timeout=30)
    jid = other.execute("SELECT j.id FROM job j JOIN project p ON j.project_id = p.id WHERE j.number = ?",
                        (int(ctx.uid[1:]),)).fetchone()[0]
    other.execute("PRAGMA foreign_keys = ON")
    other.execute("DELETE FROM job WHERE id = ?", (jid,))
    other.commit()
    other.close()


registry.register(JobType("h_vanish", "Test vanishing", "utilities", params=(),
                          outputs=(OutputGroup("particles", "particle"),), run=_vanish))


def test_delete_of_a_running_job_is_refused(project):
    from cryodesk.core import actions, lifecycle

    j = jobs.create_job(project, "h_source", "W1")
    lifecycle.mark_queued([j])
    jobs.set_status(Job.get_by_id(j.id), "running")
    result = actions.delete_jobs(project, [Job.get_by_id(j.id)])
    assert not result.ok and "running" in result.outcomes[0].message
    assert Job.get_or_none(Job.id == j.id) is not None


def test_job_run_whose_job_vanished_says_so_and_fails(database, project):
    j = jobs.create_job(project, "h_vanish", "W1")
    [(code, text)] = run_concurrently(database.database, [[["job", "run", "P1", j.uid]]])
    assert code != 0, text
    assert "J1: it was deleted while it ran" in text, text
    assert "Traceback" not in text and "engine error" not in text, text


def test_the_next_guarded_write_repairs_too(database, tmp_path):
    """The app never runs the CLI's recovery: its next write to the project repairs what a dead process left."""
    p, a = _setup(database, tmp_path)
    other = jobs.create_job(p, "h_source", "W1")
    _, calls = run_killed(database.database, ["job", "final", p.uid, a.uid], 0)
    finals.set_final(p, [Job.get_by_id(a.id)], False)
    left = 0
    for k in range(calls // 3, calls + 1, 2):  # (records live in the middle: before the commit)
        run_killed(database.database, ["job", "final", p.uid, a.uid], k)
        if list((Path(p.directory) / ".cryodesk" / "pending").glob("*.json")):
            left += 1
            jobs.set_params(p, other, {"nbytes": k})  # an unrelated write, as the app would make
            assert disagreements(p) == [], k
            assert not list((Path(p.directory) / ".cryodesk" / "pending").glob("*.json"))
        finals.set_final(p, [Job.get_by_id(a.id)], False)
        if left:
            break
    assert left, "no kill point left a record"
