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

import pytest

from cryodesk.base.errors import UsageError
from cryodesk.core import actions, jobs, projects
from cryodesk.db.models import Job


def test_a_project_inside_another_projects_directory_is_refused(project):
    jobs.create_job(project, "h_source", "W1")
    with pytest.raises(UsageError, match="inside the directory of project P1"):
        projects.create_project("Inner", Path(project.directory) / "J2")
    with pytest.raises(UsageError, match="inside the directory of project P1"):
        projects.create_project("Inner", Path(project.directory) / "J1" / "inner")
    assert not (Path(project.directory) / "J2").exists()


def test_deleting_a_job_never_deletes_another_project(project, tmp_path):
    """The inner project was made by another database (or by hand): P1's next job refuses its directory."""
    other_dir = Path(project.directory) / "J2"  # P1 has only J1 so far: J2 is its next job directory
    jobs.create_job(project, "h_source", "W1")
    other_dir.mkdir()
    (other_dir / "project.json").write_text('{"uid": "P1", "title": "someone else\'s"}')
    with pytest.raises(UsageError, match="already exists and is not an empty directory"):
        jobs.create_job(project, "h_source", "W1")
    assert (other_dir / "project.json").exists()
    assert [j.uid for j in Job.select().where(Job.project == project)] == ["J1"]
    # once the user moved it away, J2 is made, and deleting it takes only what is P1's
    other_dir.rename(tmp_path / "moved")
    j2 = jobs.create_job(project, "h_source", "W1")
    assert j2.uid == "J2" and actions.delete_jobs(project, [Job.get_by_id(j2.id)]).ok
    assert (tmp_path / "moved" / "project.json").exists()
