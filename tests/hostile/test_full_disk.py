"""A project whose disk is full: cleanup is exactly what the user needs, so it must work.

Before anything is freed (files only move into the trash, on the same disk,
and are emptied after the plan), a deletion writes its journal, and each
item rewrites the job's ``job.json`` (``_remeasure``) inside its
transaction.  On a disk with no free block the journal cannot be written:
"cannot write the deletion journal ...: No space left on device; nothing
was deleted" (past it, every item would fail on its manifest and roll
back).  So cryodesk can never free space on a full disk, the one situation
Cleanup Data is for.  (A small space reserve kept in ``.cryodesk/``, given
up when a write hits ENOSPC, would do.)
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mounts import fill, small_tmpfs

from cryodesk.base.errors import CryodeskError
from cryodesk.core import actions, jobs, projects, runner
from cryodesk.db.models import Job


def test_delete_and_clear_free_space_on_a_full_disk(database, tmp_path):
    with small_tmpfs(tmp_path, "4m") as fs:
        p = projects.create_project("Full", fs / "proj")
        projects.create_workspace(p, "main")
        a = jobs.create_job(p, "h_source", "W1", params={"nbytes": 1_000_000})
        runner.run_job(p, a)
        b = jobs.create_job(p, "h_source", "W1", params={"nbytes": 1_000_000})
        runner.run_job(p, b)
        fill(fs)
        assert os.statvfs(fs).f_bavail == 0
        try:
            cleared = actions.clear_jobs(p, [Job.get_by_id(a.id)])
            deleted = actions.delete_jobs(p, [Job.get_by_id(b.id)])
        except CryodeskError as exc:
            pytest.fail(f"cannot free space on a full disk: {exc}")
        msgs = [o.message for o in cleared.outcomes + deleted.outcomes]
        assert cleared.ok and deleted.ok, msgs
        assert not (Path(p.directory) / a.directory / "data.bin").exists()
        assert not (Path(p.directory) / b.directory).exists()
        assert os.statvfs(fs).f_bavail > 0
