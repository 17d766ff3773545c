"""A journal is input (plan.py: "it may be stale or crafted"): a malformed one is refused, never a crash.

``DeletionPlan.from_dict`` checks that ``versions`` is a mapping, but not
the shape of ``versions["require"]``; ``Action.check`` then calls
``require.get(...)`` / ``job.status not in status_in`` and raises
``AttributeError`` / ``TypeError``, which ``_run_item`` does not catch.
Every write command (recovery runs first) dies with a traceback, and the
journal is never set aside: the project cannot be written to until someone
deletes the file by hand.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cryodesk.core import actions, deletion, jobs, runner
from cryodesk.db.models import Job


@pytest.mark.parametrize("versions", [{"require": "x"}, {"require": {"status_in": 5}}])
def test_malformed_item_conditions_are_refused_not_a_crash(project, versions):
    a = jobs.create_job(project, "h_source", "W1", params={"nbytes": 10})
    runner.run_job(project, a)
    b = jobs.create_job(project, "h_source", "W1", params={"nbytes": 10})
    runner.run_job(project, b)
    jdir = Path(project.directory) / ".cryodesk" / "journal"
    jdir.mkdir(parents=True)
    (jdir / "abcdefabcdef.json").write_text(json.dumps({
        "id": "abcdefabcdef", "project": project.uid,
        "items": [{"job": a.uid, "action": "clear", "paths": [f"{a.uid}/data.bin"], "versions": versions}]}))
    results = deletion.recover(project)
    assert results and not results[0].ok
    assert (Path(project.directory) / a.directory / "data.bin").exists()
    assert not deletion.pending(project)
    # and the project can be written to again
    assert actions.clear_jobs(project, [Job.get_by_id(b.id)]).ok
