"""Replaying a journal item that was committed but not marked done must be idempotent.

``_run_item`` commits the item's database change, then appends its index to
``journal/<plan>.done``; when that append fails (disk full: the code says
"the next start replays the item (idempotent) instead of undoing it") or
the process dies in between, the next start replays the item.  For a
cleanup item planned for *killed* / *failed* jobs the recheck then asks
"is it still killed?": it is *building* now (it was cleared), so the item
is refused and its files are put back into the job directory, while the
database keeps saying the job was cleared: database and disk disagree.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from cryodesk.base.errors import DataError
from cryodesk.core import deletion, jobs, runner
from cryodesk.core.cleanup import CleanupOptions, execute_cleanup, plan_cleanup
from cryodesk.core.deletion import journal as jn
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

    real = jn.mark_done

    def full_disk(journal, index):
        raise DataError(f"cannot record progress in {journal.with_suffix('.done')}: No space left on device; "
                        "the rest of the plan is finished (or undone) on the next start")

    monkeypatch.setattr(jn, "mark_done", full_disk)
    with pytest.raises(DataError):
        execute_cleanup(project, plan)
    monkeypatch.setattr(jn, "mark_done", real)

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
