"""``project attach`` of a directory whose manifests are damaged: a clear error naming the file.

``_checked_job_doc`` validates some fields, but timestamps, workspace
entries and counters reach ``datetime.fromisoformat`` / ``w["uid"]`` /
``<=`` unchecked: the user gets ``TypeError`` / ``ValueError`` /
``KeyError`` tracebacks from ``cryodesk project attach``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cryodesk.base.errors import CryodeskError
from cryodesk.core import attach, jobs, projects, runner
from cryodesk.db.models import Project


def _edit(path: Path, fn) -> None:
    d = json.loads(path.read_text())
    fn(d)
    path.write_text(json.dumps(d))


CASES = {
    "job created_at is a number": ("J1/job.json", lambda d: d.update(created_at=5)),
    "job created_at is not a date": ("J1/job.json", lambda d: d.update(completed_at="yesterday")),
    "workspace without uid": ("project.json", lambda d: d.update(workspaces=[{"title": "x"}])),
    "workspaces is a string": ("project.json", lambda d: d.update(workspaces="W1")),
    "next_job_number is text": ("project.json", lambda d: d.update(next_job_number="abc")),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_attach_of_damaged_manifest_is_a_clear_error(project, tmp_path, case):
    j = jobs.create_job(project, "h_source", "W1", params={"nbytes": 10})
    runner.run_job(project, j)
    pdir = Path(project.directory)
    Project.delete_by_id(project.id)  # the directory stays: attach it again, as from another database
    rel, fn = CASES[case]
    _edit(pdir / rel, fn)
    with pytest.raises(CryodeskError) as err:
        attach.attach_project(pdir)
    assert rel.split("/")[-1] in str(err.value)
    assert projects.list_projects() == []  # nothing half-attached
