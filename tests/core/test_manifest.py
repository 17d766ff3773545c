"""A project directory is self-contained: a fresh database can re-attach it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cryodesk import db as dbmod
from cryodesk.base.errors import UsageError
from cryodesk.core import actions, attach, finals, jobs, projects, runner

from .helpers import build_dag


def snapshot(project):
    settings = {j.uid: j.settings for j in jobs.list_jobs(project)}
    return [{**{k: d[k] for k in ("uid", "type", "status", "params", "is_final", "is_ancestor_of_final",
                                  "workspaces", "parents", "children", "inputs", "outputs", "size_bytes")},
             "settings": settings[d["uid"]]}
            for d in jobs.describe_jobs(project, jobs.list_jobs(project))]


def test_reattach_to_fresh_database_gives_the_same_project(project, tmp_path):
    js = build_dag(project, [[], [0], [1], [0]])
    for j in js[:3]:
        runner.run_job(project, j)
    w2 = projects.create_workspace(project, "branch")
    actions.link(project, js[1:3], w2)
    finals.set_final(project, [js[2]])
    jobs.set_params(project, js[3], {"nbytes": "42"})
    from cryodesk.core import settings_service

    settings_service.set_setting("job", "delete_intermediate", "false", project=project, job=js[1])
    before = snapshot(project)
    assert before[1]["settings"] == {"delete_intermediate": False}
    pdir = project.directory
    from cryodesk.core import project_lifecycle

    project_lifecycle.detach_project(project)  # the directory is then free for another database
    original = dbmod.db.obj
    fresh = dbmod.open_database(str(tmp_path / "fresh.sqlite"))
    try:
        _check_reattached(pdir, before)
    finally:
        fresh.close()
        dbmod.db.initialize(original)


def _check_reattached(pdir, before):
    with dbmod.db.connection_context():
        again = attach.attach_project(pdir)
        assert again.uid == "P1" and again.title == "Test project"
        assert [w.title for w in projects.list_workspaces(again)] == ["main", "branch"]
        assert snapshot(again) == before
        # numbering continues after the highest job
        assert jobs.create_job(again, "t_source", "W1").uid == "J5"
        with pytest.raises(UsageError, match="already attached"):
            attach.attach_project(pdir)


def test_create_project_refuses_non_empty_or_existing_project_dirs(database, tmp_path):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "file").write_text("x")
    with pytest.raises(UsageError, match="is not empty"):
        projects.create_project("A", busy)
    p = projects.create_project("A", tmp_path / "a")
    assert json.loads((Path(p.directory) / "project.json").read_text())["uid"] == "P1"
    with pytest.raises(UsageError, match="already holds a cryodesk project"):
        projects.create_project("B", tmp_path / "a")


@pytest.mark.parametrize("edit, message", [
    (lambda d: d.update(type="no_such_type"), "unknown job type"),
    (lambda d: d.update(params=[1, 2]), "params: is not a mapping"),
    (lambda d: d.update(uid="J9"), "does not match its directory"),
    (lambda d: d["outputs"].append({"kind": "blob"}), r"outputs\[1\]: lacks group, path"),
])
def test_attach_refuses_bad_job_manifests_with_the_file_named(project, tmp_path, edit, message):
    from cryodesk.base.errors import DataError

    job = jobs.create_job(project, "t_source", "W1")
    runner.run_job(project, job)
    path = Path(project.directory) / "J1" / "job.json"
    doc = json.loads(path.read_text())
    edit(doc)
    path.write_text(json.dumps(doc))
    original = dbmod.db.obj
    fresh = dbmod.open_database(str(tmp_path / "fresh.sqlite"))
    try:
        with dbmod.db.connection_context():
            with pytest.raises(DataError, match=message) as exc:
                attach.attach_project(project.directory)
            assert str(path) in str(exc.value)
            assert projects.list_projects() == []  # nothing half-attached
    finally:
        fresh.close()
        dbmod.db.initialize(original)
