"""Legal POSIX file names inside a job directory must not make the job impossible to clear.

``path_problem`` treats any path containing a backslash as malformed, but a
backslash is an ordinary character in a Linux file name (data copied from
Windows shares, ``a\\b.txt`` written by a script): the planner lists the
entry, the executor refuses the whole item, and the job can never be
cleared by cryodesk; the CLI says "refused: refused: path 'J1/a\\\\b.txt' is
malformed" (said twice, no hint what to do).
"""

from __future__ import annotations

from pathlib import Path

from cryodesk.core import actions, jobs, runner
from cryodesk.db.models import Job


def test_clear_of_job_with_backslash_in_a_file_name(project):
    j = jobs.create_job(project, "h_source", "W1", params={"nbytes": 10})
    runner.run_job(project, j)
    jdir = Path(project.directory) / j.directory
    (jdir / "a\\b.txt").write_text("from a windows share")
    result = actions.clear_jobs(project, [Job.get_by_id(j.id)])
    msgs = [o.message for o in result.outcomes]
    assert not any("refused: refused" in m for m in msgs), msgs
    assert result.ok, msgs
    assert sorted(p.name for p in jdir.iterdir()) == ["job.json"]

