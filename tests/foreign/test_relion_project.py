"""Opening RELION projects (the real 3.1 tutorial, built 4.0/5.0 trees) and changing them as RELION would."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cryodesk.base.errors import DataError, NotFound, UsageError
from cryodesk.base.fsio import du_size
from cryodesk.core import finals, jobs
from cryodesk.core.foreign import relion_clean
from cryodesk.core.foreign.relion_lock import LOCK_DIR
from cryodesk.core.foreign.service import detect, open_project
from cryodesk.io.relion_pipeline import read_pipeline

from .relion_fixtures import build_project, copy_tutorial, write_bulky


def _job(project, n):
    return jobs.get_job(project, f"J{n}")


def test_open_real_31_tutorial(database, realdata_dir, tmp_path):
    root = copy_tutorial(realdata_dir, tmp_path / "tutorial")
    # synthetic bulky files where the STAR files point (the tutorial has metadata only)
    stacks = write_bulky(root, "Extract/job007/particles.star")
    assert any("Extract/job007/Movies/" in str(p) for p in stacks)
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}
    project, info = open_project(root)
    assert (project.kind, info["jobs"], info["read_only"]) == ("relion", 31, False)
    c2d = _job(project, 8)
    assert (c2d.path, c2d.type, c2d.title, c2d.status) == ("Class2D/job008", "relion.class2d", "LoG", "completed")
    assert c2d.params["fn_img"] == "Extract/job007/particles.star" and c2d.params["_Type"] == "8"
    assert [c.parent.number for c in c2d.input_connections] == [7]
    assert c2d.size_bytes == du_size(root / "Class2D/job008")
    assert _job(project, 7).size_bytes == du_size(root / "Extract/job007")
    assert info["size"]["measured_bytes"] == du_size(root)  # the whole tree as du -sb counts it
    after = {p: p.read_bytes() for p in root.rglob("*") if p.is_file() and not p.is_symlink()}
    assert after == before and not (root / ".cryodesk").exists()  # opening wrote nothing
    # RELION's harsh clean of the Extract job: its particle stacks go, its STAR files stay
    plan = relion_clean.plan_clear(project, ["J7"])
    assert plan.items[0].paths == ["Extract/job007/Movies"]
    total = _du(root)
    _results_ok(relion_clean.execute(project, plan))
    assert total - _du(root) == plan.bytes and (root / "Extract/job007/particles.star").is_file()
    assert read_pipeline(root / "default_pipeline.star").layout == "3.1"


@pytest.mark.parametrize("layout", ["4.0", "5.0"])
def test_open_built_layouts(database, tmp_path, layout):
    root = build_project(tmp_path / f"r{layout}", layout)
    assert detect(root) == "relion"
    project, info = open_project(root)
    assert info["jobs"] == 7
    assert _job(project, 7).status == "failed" and _job(project, 4).title == "first"
    sel = _job(project, 6)
    assert [c.parent.number for c in sel.input_connections] == [5]
    # the Movies link (raw data) and the alias links are never followed nor counted
    assert info["size"]["linked_bytes"] == 123_456
    assert info["size"]["measured_bytes"] == du_size(root)
    assert sum(_job(project, n).size_bytes for n in range(1, 8)) == info["size"]["jobs_bytes"]


def test_marker_wins_over_pipeline_status(database, relion40):
    text = (relion40 / "default_pipeline.star").read_text().replace("relion.class3d Failed", "relion.class3d Running")
    (relion40 / "default_pipeline.star").write_text(text)
    project, _ = open_project(relion40)
    assert _job(project, 7).status == "failed"  # RELION_JOB_EXIT_FAILURE
    os.unlink(relion40 / "Class3D/job007/RELION_JOB_EXIT_FAILURE")
    project, _ = open_project(relion40)  # re-opening re-reads
    assert _job(project, 7).status == "running"


def test_final_flags_live_in_cryodesk_state(database, relion40):
    project, _ = open_project(relion40)
    pipeline_before = (relion40 / "default_pipeline.star").read_bytes()
    finals.set_final(project, [_job(project, 6)])
    assert (relion40 / ".cryodesk/relion.json").is_file()
    assert _job(project, 5).is_ancestor_of_final and _job(project, 1).is_ancestor_of_final
    assert (relion40 / "default_pipeline.star").read_bytes() == pipeline_before
    assert not list(relion40.rglob("job.json"))  # nothing of cryodesk's in RELION's job directories
    project, _ = open_project(relion40)  # a fresh open keeps them
    assert _job(project, 6).is_final and _job(project, 3).is_ancestor_of_final
    with pytest.raises(UsageError, match="ancestor of a final"):
        relion_clean.plan_delete(project, ["J5"])


def _du(root):
    """The project's size without cryodesk's own state directory (journal, reserve: not RELION's data)."""
    return du_size(root) - du_size(root / ".cryodesk")


def _results_ok(results):
    assert all(r.ok for r in results), [(r.job, r.message) for r in results]


def test_clear_and_intermediate_free_what_the_plan_says(database, relion40):
    project, _ = open_project(relion40)
    raw = relion40.parent / "relion40-raw" / "m1.tiff"
    plan = relion_clean.plan_cleanup(project, preprocessing=True, intermediate=True)
    by = {(i.job, i.action): i for i in plan.items}
    assert set(by) == {("J2", "relion_clear"), ("J3", "relion_clear"), ("J4", "relion_clear"),
                       ("J5", "relion_intermediate")}
    assert by[("J3", "relion_clear")].paths == ["CtfFind/job003/Movies", "CtfFind/job003/gctf_1.out"]
    # iteration 2's data is read by Select/job006 (an input edge): kept with the last (3)
    assert by[("J5", "relion_intermediate")].paths == [f"Class2D/job005/run_it001_{p}" for p in
                                                       ("classes.mrcs", "data.star", "model.star", "optimiser.star")]
    total = _du(relion40)
    untouched = {p: p.stat().st_size for p in relion40.rglob("*")
                 if p.is_file() and not p.is_symlink() and not any(str(p).startswith(str(relion40 / q))
                                                                  for i in plan.items for q in i.paths)}
    _results_ok(relion_clean.execute(project, plan))
    assert total - _du(relion40) == plan.bytes > 100_000
    assert all(p.is_file() and p.stat().st_size == s for p, s in untouched.items())  # nothing outside the plan
    assert raw.stat().st_size == 123_456
    for keep in ("Extract/job004/particles.star", "Extract/job004/job.star", "Extract/job004/RELION_JOB_EXIT_SUCCESS",
                 "Class2D/job005/run_it002_data.star", "Class2D/job005/run_it003_optimiser.star"):
        assert (relion40 / keep).is_file(), keep
    assert read_pipeline(relion40 / "default_pipeline.star").layout == "4.0"
    assert _job(project, 4).size_bytes == du_size(relion40 / "Extract/job004")
    assert not (relion40 / LOCK_DIR).exists()  # released


def test_delete_moves_to_trash_as_relion_does(database, relion40):
    project, _ = open_project(relion40)
    before = read_pipeline(relion40 / "default_pipeline.star")
    plan = relion_clean.plan_delete(project, ["J6"])  # Select/job006 and Class3D/job007 that reads it
    assert [i.job for i in plan.items] == ["J7", "J6"] and plan.bytes == 0
    _results_ok(relion_clean.execute(project, plan))
    after = read_pipeline(relion40 / "default_pipeline.star")  # a fresh parse after the change
    assert after.layout == before.layout and after.version == before.version
    assert [p.name for p in after.processes] == [p.name for p in before.processes[:5]]
    assert not (relion40 / "Select/job006").exists()
    deleted = read_pipeline(relion40 / "Trash/Select/job006/deleted_pipeline.star")
    assert [p.name for p in deleted.processes] == ["Select/job006/"]
    assert (relion40 / "Trash/Select/job006/particles.star").is_file()
    assert (relion40 / "Trash/Class3D/job007/job.star").is_file()
    with pytest.raises(NotFound):
        jobs.get_job(project, "J6")
    # "Empty trash" is a planned action with its bytes
    empty = relion_clean.plan_empty_trash(project)
    assert [i.paths for i in empty.items] == [["Trash/Class3D/job007"], ["Trash/Select/job006"]]
    size = _du(relion40)
    _results_ok(relion_clean.execute(project, empty))
    assert size - _du(relion40) == empty.bytes > 0
    assert not (relion40 / "Trash/Select/job006").exists()


def test_refused_while_relion_holds_its_lock(database, relion40):
    project, _ = open_project(relion40)
    plan = relion_clean.plan_clear(project, ["J4"])
    os.mkdir(relion40 / LOCK_DIR)
    size = du_size(relion40 / "Extract/job004")
    results = relion_clean.execute(project, plan)
    assert not results[0].ok and "RELION holds its lock" in results[0].message
    assert du_size(relion40 / "Extract/job004") == size  # nothing moved
    assert (relion40 / LOCK_DIR).is_dir()  # RELION's lock is never broken
    os.rmdir(relion40 / LOCK_DIR)
    _results_ok(relion_clean.execute(project, relion_clean.plan_clear(project, ["J4"])))


def test_generic_actions_refuse_relion_jobs_and_bad_dirs(database, relion40):
    project, _ = open_project(relion40)
    from cryodesk.core.deletion import DeletionPlan, PlanItem, execute

    bad = PlanItem(job="J4", action="relion_clear", paths=["Extract/job004/../../x"], versions={"dir": "Extract/job004"})
    other = PlanItem(job="J4", action="relion_clear", paths=["Class2D/job005/run_it001_data.star"],
                     versions={"dir": "Extract/job004"})
    wrong = PlanItem(job="J4", action="relion_clear", paths=["Movies/m1.tiff"], versions={"dir": "Movies/../x"})
    results = execute(project, DeletionPlan(project.uid, [bad, other, wrong]))
    assert [r.ok for r in results] == [False, False, False]
    assert (relion40.parent / "relion40-raw" / "m1.tiff").is_file()
    from cryodesk.core import projects

    own = projects.create_project("own", relion40.parent / "own")
    with pytest.raises(UsageError, match="not a RELION project"):
        relion_clean.plan_clear(own)


def test_bad_directories_are_named(database, tmp_path):
    with pytest.raises(UsageError, match="not a project cryodesk knows"):
        detect(tmp_path)
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "default_pipeline.star").write_text("data_pipeline_processes\nloop_\n_rlnFoo #1\nx\n")
    with pytest.raises(DataError, match="default_pipeline.star"):
        open_project(tmp_path / "x")
    assert Path(tmp_path / "x").is_dir()


def test_generic_clear_delete_params_and_new_jobs_are_refused(database, relion40):
    from cryodesk.base.errors import Refused
    from cryodesk.core import actions

    project, _ = open_project(relion40)
    before = _du(relion40)
    j4 = _job(project, 4)
    with pytest.raises(Refused, match="another program.s job .Extract.job004.: its parameters"):
        jobs.set_params(project, j4, {"nr_classes": 3})
    with pytest.raises(UsageError, match="does not create jobs"):
        jobs.create_job(project, "relion.class2d")
    for res in (actions.clear_jobs(project, [j4]), actions.delete_jobs(project, [_job(project, 7)])):
        assert [o.ok for o in res.outcomes] == [False] and "RELION job" in res.outcomes[0].message
    assert _du(relion40) == before


def test_gentle_clean_removes_only_logs_and_metadata(database, relion40):
    project, _ = open_project(relion40)
    plan = relion_clean.plan_clear(project, ["J2", "J3", "J4"], harsh=False)
    by = {i.job: i.paths for i in plan.items}
    assert by == {"J2": ["MotionCorr/job002/Movies/mic1.log"],
                  "J3": ["CtfFind/job003/Movies", "CtfFind/job003/gctf_1.out"],  # CtfFind: the same as harsh
                  "J4": ["Extract/job004/Movies/mic1_extract.star"]}
    total = _du(relion40)
    _results_ok(relion_clean.execute(project, plan))
    assert total - _du(relion40) == plan.bytes
    assert (relion40 / "MotionCorr/job002/Movies/mic1.mrc").is_file()
    assert (relion40 / "Extract/job004/Movies/mic1.mrcs").is_file()
