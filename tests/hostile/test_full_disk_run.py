"""A job that runs out of disk space must end *failed* (or not start), never stay *running*.

``run_job`` catches the body's ``OSError`` and calls ``_finish(..., "failed")``,
whose database transaction also rewrites ``job.json``: on the full disk that
write fails too, the transaction rolls back, and the ``OSError`` escapes
``run_job``.  The job stays *running* in the database while nothing runs it:
its parents cannot be cleared ("J2 is running on its outputs"), it cannot be
re-run or deleted, until some later process start marks it interrupted.

Issue 20 (item 6): on a disk so full that not even the run's record
(``.cryodesk/pending``) fits, the job does not start — a clear error naming
what could not be written, nothing changed; with room for the record but
not for the job's output it ends *failed*, with "No space left on device
while writing J2/..." and a manifest that agrees with the database.
"""

from __future__ import annotations

import pytest
from mounts import fill, small_tmpfs
from statecheck import disagreements

from cryodesk.base.errors import DataError
from cryodesk.core import jobs, projects, recovery, runner
from cryodesk.db.models import Job


def test_job_failing_on_a_full_disk_ends_failed(database, tmp_path):
    with small_tmpfs(tmp_path, "4m") as fs:
        p = projects.create_project("Full", fs / "proj")
        projects.create_workspace(p, "main")
        a = jobs.create_job(p, "h_source", "W1", params={"nbytes": 1000})
        runner.run_job(p, a)
        b = jobs.create_job(p, "h_source", "W1", params={"nbytes": 8_000_000})  # more than the disk holds
        fill(fs)
        with pytest.raises(DataError, match="No space left on device"):
            runner.run_job(p, b)
        assert Job.get_by_id(b.id).status == "building"
        assert disagreements(p) == []


def test_job_running_out_of_space_ends_failed_saying_which_file(database, tmp_path):
    with small_tmpfs(tmp_path, "4m") as fs:
        p = projects.create_project("Full", fs / "proj")
        projects.create_workspace(p, "main")
        b = jobs.create_job(p, "h_source", "W1", params={"nbytes": 8_000_000})  # more than the disk holds
        runner.run_job(p, b)
        b = Job.get_by_id(b.id)
        assert b.status == "failed"
        assert b.error.startswith("No space left on device while writing "), b.error
        assert "OSError" not in b.error and "Errno" not in b.error
        (fs / "proj" / b.directory / "data.bin").unlink(missing_ok=True)  # space again
        assert recovery.recover_project(p).manifests == [b.uid]  # what the next command does first
        assert disagreements(p) == []
