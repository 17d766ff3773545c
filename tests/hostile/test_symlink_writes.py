"""cryodesk's own writes into a job directory must not go through a symlink planted there.

The runner opens ``job.log`` with ``logging.FileHandler`` (append mode, follows
symlinks) and ``lifecycle._log_line`` opens it with ``open(..., "a")``: a
``job.log`` symlink pointing outside the project makes cryodesk append to
the file it points to.  (Manifests and results go through AtomicFile, which
replaces a link instead of following it.)
"""

from __future__ import annotations

from pathlib import Path

from cryodesk.core import jobs, lifecycle, runner
from cryodesk.db.models import Job


def _outside(tmp_path: Path) -> Path:
    f = tmp_path / "someone_elses.txt"
    f.write_text("not the project's\n")
    return f


def test_run_does_not_append_to_a_symlinked_job_log(project, tmp_path):
    outside = _outside(tmp_path)
    j = jobs.create_job(project, "h_source", "W1", params={"nbytes": 10})
    (Path(project.directory) / j.directory / "job.log").symlink_to(outside)
    runner.run_job(project, j)
    assert outside.read_text() == "not the project's\n"


def test_kill_of_queued_job_does_not_append_to_a_symlinked_job_log(project, tmp_path):
    outside = _outside(tmp_path)
    j = jobs.create_job(project, "h_source", "W1", params={"nbytes": 10})
    (Path(project.directory) / j.directory / "job.log").symlink_to(outside)
    lifecycle.mark_queued([j])
    assert lifecycle.request_kill(project, j.uid) == "killed"
    assert Job.get_by_id(j.id).status == "killed"
    assert outside.read_text() == "not the project's\n"
