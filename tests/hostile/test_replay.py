"""Replaying a journal item whose database change committed must not undo it.

The process dies right after an item's transaction committed and before the
journal is finished; the next start replays the journal.  For a
cleanup item planned for *killed* / *failed* jobs the recheck then asks
"is it still killed?": it is *building* now (it was cleared), so the item
is refused and its files are put back into the job directory, while the
database keeps saying the job was cleared: database and disk disagree.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cryodesk.base import hooks
from cryodesk.core import deletion, jobs, runner
from cryodesk.core.cleanup import CleanupOptions, execute_cleanup, plan_cleanup
from cryodesk.db.models import Job, OutputFile


@pytest.mark.parametrize("status", ["killed", "failed"])
def test_clear_killed_replayed_after_lost_done_mark_stays_cleared(project, monkeypatch, status):
    j = jobs.create_job(project, "h_source", "W1", params={"nbytes": 500})
    runner.run_job(project, j)
    jobs.set_status(Job.get_by_id(j.id), status, error="test")
    jdir = Path(project.directory) / j.directory
    assert (jdir / "data.bin").exists()

    plan = plan_cleanup(project, CleanupOptions(**{status: "clear"}))
    assert [e.uid for e in plan.entries] == [j.uid]

    def die(**info):  # the process dies right after the item's transaction committed
        raise SystemExit("killed after the commit")

    hooks.register("deletion.committed", die)
    try:
        with pytest.raises(SystemExit):
            execute_cleanup(project, plan)
    finally:
        hooks.clear("deletion.committed")

    # the database change was committed: the job is cleared
    job = Job.get_by_id(j.id)
    assert job.status == "building"
    assert not OutputFile.select().where(OutputFile.job == job).exists()

    results = deletion.recover(project)  # the next start
    job = Job.get_by_id(j.id)
    assert job.status == "building"
    assert not OutputFile.select().where(OutputFile.job == job).exists()
    # ... so its files must be gone too, not put back beside a job that says it has none
    assert not (jdir / "data.bin").exists(), [(r.job, r.action, r.ok, r.message) for r in results]
    assert all(r.ok for r in results), [(r.job, r.action, r.ok, r.message) for r in results]
