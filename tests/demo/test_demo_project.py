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
    """Build the demo once (CLI, as a user would, no --dir: it goes beside the database); tests work on copies."""
    root = tmp_path_factory.mktemp("demo")
    os.environ["CRYODESK_DB"] = str(root / "db.sqlite")
    try:
        assert main(["demo"]) == 0
    finally:
        del os.environ["CRYODESK_DB"]
    assert (root / "db-demo" / "project" / "project.json").is_file()  # issue 12, item 14: beside the database
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

        Project.update(directory=str(tmp_path / "demo" / "db-demo" / "project")).execute()
        yield Project.get()
    dbmod.close_database()


def by_uid(project):
    return {d["uid"]: d for d in jobs.describe_jobs(project, jobs.list_jobs(project))}


def test_demo_has_what_a_cleanup_demo_needs(demo):
    d = by_uid(demo)
    assert len(d) == 13
    assert d["J8"]["is_final"] and all(d[f"J{i}"]["is_ancestor_of_final"] for i in range(1, 8))
    assert d["J11"]["status"] == "killed" and d["J13"]["status"] == "failed"
    assert d["J12"]["type"] == "downsample_particles" and d["J12"]["status"] == "completed"  # consolidation
    assert "no class 9" in d["J13"]["error"]
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
    # the recorded job sizes the planner uses are what is on disk (du -sb of each job directory)
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
    assert tabs["killed_failed"]["failed"]["bytes"] == before.jobs[13]
    assert sum(b["bytes"] for b in tabs["non_final"].values() if isinstance(b, dict)) == total
    actions = {e.uid: e.action for e in plan.entries}
    assert "J8" not in actions  # the final result is never touched
    assert actions["J2"] == "clear" and actions["J11"] == "delete" and actions["J13"] == "delete"
    assert all(actions.get(f"J{i}") != "delete" for i in range(1, 9))
    manifests = {j.number: (project_dir / j.directory / "job.json").stat().st_size for j in Job.select()}
    result = execute_cleanup(demo, plan)
    assert result.ok, result.to_dict()
    after = sizes.scan_project_dir(project_dir)
    rewritten = sum((project_dir / f"J{n}" / "job.json").stat().st_size - size for n, size in manifests.items()
                    if (project_dir / f"J{n}").exists())  # a kept job's record is rewritten, not freed
    assert sum(before.jobs.values()) - sum(after.jobs.values()) + rewritten == plan.bytes == result.bytes_freed
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


def test_consolidation_keeps_the_box_and_writes_only_the_subset(demo):
    """Issue 12, item 3: the demo's Downsample Particles ran "with no need to change any parameters"."""
    import numpy as np

    project_dir = Path(demo.directory)
    sel = np.load(project_dir / "J7" / "particles.cs")
    out = np.load(project_dir / "J12" / "downsample_particles.cs")
    assert len(out) == len(sel) and out["blob/shape"].tolist() == sel["blob/shape"].tolist()
    np.testing.assert_array_equal(out["uid"], sel["uid"])
    stacks = sorted((project_dir / "J12" / "downsample").glob("*.mrc"))
    box = int(sel["blob/shape"][0][0])
    assert sum(p.stat().st_size for p in stacks) == len(stacks) * 1024 + len(sel) * box * box * 4


def test_mark_complete_makes_a_killed_class2d_usable(demo, capsys):
    """Issue 12, item 4: "Mark Job as Complete" on the killed J11, then Select 2D on it."""
    from cryodesk.core import actions

    result = actions.mark_complete(demo, [jobs.get_job(demo, "J11")])
    assert result.ok
    kept = sorted({f.version for f in OutputFile.select().where(OutputFile.job == jobs.get_job(demo, "J11"))
                   if f.group == "particles"})
    assert kept and f"particles v{kept[-1]}" in result.outcomes[0].message
    sel = jobs.create_job(demo, "select_2d", "W2", [jobs.InputSpec("particles", "J11", "particles"),
                                                   jobs.InputSpec("class_averages", "J11", "class_averages")])
    done = runner.run_job(demo, sel)
    assert done.status == "completed", done.error
    d = jobs.describe_jobs(demo, [done])[0]
    assert d["inputs"][0]["parent"] == "J11"
    log = (Path(demo.directory) / done.directory / "job.log").read_text()
    assert "kept classes" in log


def test_demo_dir_is_beside_the_database(tmp_path):
    """Issue 12, item 14: with CRYODESK_DB (or --db) elsewhere the demo goes beside that database."""
    from cryodesk.demo.project import default_demo_dir

    assert default_demo_dir(str(tmp_path / "lab" / "cryodesk.sqlite")) == tmp_path / "lab" / "cryodesk-demo"
    assert default_demo_dir(f"sqlite:///{tmp_path}/x.sqlite") == tmp_path / "x-demo"
    assert default_demo_dir("postgresql://u@h/db").name == "demo"
