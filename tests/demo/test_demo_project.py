"""The demo project a new user gets, and Cleanup Data on it checked against the files on disk."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from cryodesk import db as dbmod
from cryodesk.cli.main import main
from cryodesk.core import jobs, runner, sizes
from cryodesk.core.cleanup import CleanupOptions, execute_cleanup, plan_cleanup
from cryodesk.db.models import Job, OutputFile


@pytest.fixture(scope="module")
def demo_template(tmp_path_factory):
    """Build the demo once (CLI, as a user would); tests work on copies."""
    root = tmp_path_factory.mktemp("demo")
    os.environ["CRYODESK_DB"] = str(root / "db.sqlite")
    try:
        assert main(["demo", "--dir", str(root / "d")]) == 0
    finally:
        del os.environ["CRYODESK_DB"]
    return root


@pytest.fixture
def demo(demo_template, tmp_path):
    """A private copy of the demo (database + directories; symlinks into raw data kept as links)."""
    shutil.copytree(demo_template, tmp_path / "demo", symlinks=True)
    db_path = tmp_path / "demo" / "db.sqlite"
    dbmod.open_database(str(db_path))
    with dbmod.db.connection_context():
        # the copy lives elsewhere: point the project row at it
        from cryodesk.db.models import Project

        Project.update(directory=str(tmp_path / "demo" / "d" / "project")).execute()
        yield Project.get()
    dbmod.close_database()


def by_uid(project):
    return {d["uid"]: d for d in jobs.describe_jobs(project, jobs.list_jobs(project))}


def test_demo_has_what_a_cleanup_demo_needs(demo):
    d = by_uid(demo)
    assert len(d) == 12
    assert d["J8"]["is_final"] and all(d[f"J{i}"]["is_ancestor_of_final"] for i in range(1, 8))
    assert d["J11"]["status"] == "killed" and d["J12"]["status"] == "failed"
    assert "must be even" in d["J12"]["error"]
    assert d["J5"]["workspaces"] == ["W1", "W2"] and d["J9"]["workspaces"] == ["W2"]
    versions = {o["version"] for o in d["J6"]["outputs"] if o["group"] == "class_averages"}
    assert versions == set(range(5))  # intermediate results kept on J6
    killed_versions = {o["version"] for o in d["J11"]["outputs"] if o["group"] == "class_averages"}
    assert killed_versions and max(killed_versions) < 7  # finished iterations kept, the rest never ran
    raw = Path(demo.directory).parent / "raw"
    assert (Path(demo.directory) / "J1" / "imported").is_dir()
    assert all(p.is_symlink() for p in (Path(demo.directory) / "J1" / "imported").iterdir())
    assert any(raw.joinpath("movies").iterdir())


def test_cleanup_figures_match_the_disk(demo):
    project_dir = Path(demo.directory)
    raw = project_dir.parent / "raw"
    raw_before = {p: p.stat().st_size for p in raw.rglob("*") if p.is_file()}
    before = sizes.scan_project_dir(project_dir)
    # the recorded job sizes the planner uses are what is on disk (manifests excluded)
    for j in Job.select():
        assert j.size_bytes == before.jobs[j.number], j.uid
    opts = CleanupOptions(preprocessing="all", intermediate=True, non_final="delete",
                          killed="delete", failed="delete")
    plan = plan_cleanup(demo, opts)
    tabs = plan.tabs
    total = sum(before.jobs.values())
    assert tabs["preprocessing"]["motion_correction"]["bytes"] == before.jobs[2]
    assert tabs["preprocessing"]["extraction"]["jobs"] == 2
    assert tabs["preprocessing"]["extraction"]["bytes"] == before.jobs[5] + before.jobs[10]
    assert tabs["non_final"]["final"]["bytes"] == before.jobs[8]
    assert tabs["non_final"]["ancestor_of_final"]["jobs"] == 7
    assert tabs["killed_failed"]["killed"]["bytes"] == before.jobs[11]
    assert tabs["killed_failed"]["failed"]["bytes"] == before.jobs[12]
    assert sum(b["bytes"] for b in tabs["non_final"].values() if isinstance(b, dict)) == total
    actions = {e.uid: e.action for e in plan.entries}
    assert "J8" not in actions  # the final result is never touched
    assert actions["J2"] == "clear" and actions["J11"] == "delete" and actions["J12"] == "delete"
    assert all(actions.get(f"J{i}") != "delete" for i in range(1, 9))
    result = execute_cleanup(demo, plan)
    assert result.ok, result.to_dict()
    after = sizes.scan_project_dir(project_dir)
    assert sum(before.jobs.values()) - sum(after.jobs.values()) == plan.bytes == result.bytes_freed
    assert {p: p.stat().st_size for p in raw.rglob("*") if p.is_file()} == raw_before  # raw data untouched
    assert (project_dir / "J8").is_dir() and after.jobs[8] == before.jobs[8]


def test_cleared_preprocessing_reruns_to_identical_outputs(demo):
    from cryodesk.core import actions

    project_dir = Path(demo.directory)
    motion = jobs.get_job(demo, "J2")
    files = {f.path: (project_dir / f.path).read_bytes() for f in OutputFile.select().where(OutputFile.job == motion)
             if not (project_dir / f.path).is_symlink()}
    assert files
    assert actions.clear_jobs(demo, [motion]).ok
    assert jobs.get_job(demo, "J2").status == "building"
    assert runner.run_job(demo, "J2").status == "completed"
    for path, data in files.items():
        assert (project_dir / path).read_bytes() == data, path
    # its child can run again from the regenerated outputs
    assert actions.clear_jobs(demo, [jobs.get_job(demo, "J3")]).ok
    assert runner.run_job(demo, "J3").status == "completed"


def test_class_2d_reads_through_the_ssd_cache_with_identical_results(demo, tmp_path, monkeypatch):
    import mrcfile
    import numpy as np

    from cryodesk.cache import Cache, resolve_config

    monkeypatch.setenv("CRYODESK_SSD_PATH", str(tmp_path / "ssd"))
    (tmp_path / "ssd").mkdir()
    results = {}
    for cache_on in (True, False):
        job = jobs.create_job(demo, "class_2d", "W2", [jobs.InputSpec("particles", "J5")],
                              {"num_classes": 3, "num_iterations": 2, "cache_particles": str(cache_on)})
        done = runner.run_job(demo, job)
        assert done.status == "completed", done.error
        final = [f for f in OutputFile.select().where((OutputFile.job == done) & (OutputFile.group == "class_averages")
                                                      & (OutputFile.kind == "blob")) if f.version == 1]
        with mrcfile.open(Path(demo.directory) / final[0].path) as m:
            results[cache_on] = np.array(m.data)
    np.testing.assert_array_equal(results[True], results[False])
    status = Cache(resolve_config()).status()
    assert status["used_bytes"] > 0  # the cached run really copied the extraction stacks
