"""A project directory inside another project's (future) job directory is deleted with that job.

``create_project`` accepts any new or empty directory, also one inside
another project — ``P1/J13`` before P1 has a J13, or ``P1/J12/inner``.
``create_job`` then makes ``J13`` with ``mkdir(exist_ok=True)``: it adopts
the other project's directory as its own, and ``job delete P1 J13`` (or a
clear, or a cleanup) moves project P2 — its ``project.json`` and all its
jobs — into P1's trash.
"""

from __future__ import annotations

from pathlib import Path

from cryodesk.core import actions, jobs, projects
from cryodesk.db.models import Job


def test_deleting_a_job_never_deletes_another_project(project, tmp_path):
    other_dir = Path(project.directory) / "J2"  # P1 has only J1 so far: J2 is its next job directory
    jobs.create_job(project, "h_source", "W1")
    other = projects.create_project("Inner", other_dir)  # accepted today
    projects.create_workspace(other, "main")
    inner_job = jobs.create_job(other, "h_source", "W1")
    assert (other_dir / "project.json").exists() and (other_dir / inner_job.directory / "job.json").exists()

    try:
        j2 = jobs.create_job(project, "h_source", "W1")  # P1's J2: the other project's directory
    except Exception:
        j2 = None  # refusing is fine too
    if j2 is not None:
        actions.delete_jobs(project, [Job.get_by_id(j2.id)])
    assert (other_dir / "project.json").exists(), "project P2 was deleted with P1's J2"
    assert (other_dir / inner_job.directory / "job.json").exists()
