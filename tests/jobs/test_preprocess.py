"""Built-in preprocessing job bodies on simulated data, checked against ground truth.

One simulated dataset and one pipeline run are shared by the module; the jobs
run with hand-built contexts (:func:`cryodesk.demo.pipeline.run_inline`).
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

from cryodesk.base.errors import DataError, JobCancelled, UsageError
from cryodesk.core import registry
from cryodesk.demo import simulate_dataset
from cryodesk.demo.pipeline import run_demo_pipeline, run_inline
from cryodesk.io.mrc import read_images
from cryodesk.jobs.preprocess_extract import background_mask, extract_boxes, extract_boxes_numpy

SEED = 0
CLASS2D = {"num_classes": 4, "num_iterations": 3}


@pytest.fixture(scope="module")
def sim(tmp_path_factory) -> tuple[Path, dict]:
    raw = tmp_path_factory.mktemp("raw")
    return raw, simulate_dataset(raw, "small", seed=SEED)


@pytest.fixture(scope="module")
def chain(sim, tmp_path_factory):
    raw, truth = sim
    project = tmp_path_factory.mktemp("project")
    jobs = run_demo_pipeline(project, raw, {"class_2d": CLASS2D})
    return project, jobs, truth


def _movie_key(mic: dict) -> str:
    return Path(mic["movie_path"]).stem


def _hashes(job_dir: Path) -> dict[str, str]:
    return {str(p.relative_to(job_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(job_dir.rglob("*")) if p.is_file() and not p.is_symlink()}


def test_registered_types_declare_their_interface():
    for name in ("import_movies", "import_micrographs", "motion_correction", "ctf_estimation", "blob_picker",
                 "extract_particles", "class_2d", "select_2d", "external"):
        jt = registry.get(name)
        assert jt.run is not None and jt.outputs and jt.description
    assert registry.get("class_2d").keep_partial_on_cancel
    assert registry.get("class_2d").output_group("class_averages").iterative


def test_results_are_json_for_job_json(chain):
    import json

    for ctx in chain[1].values():
        json.dumps(ctx.results)


def test_import_links_raw_files_without_copying(chain, sim):
    project, jobs, _ = chain
    ctx = jobs["import_movies"]
    links = sorted((project / "J1" / "imported").iterdir())
    assert len(links) == 4 and all(p.is_symlink() for p in links)
    assert links[0].resolve() == (sim[0] / "movies" / "movie_000.mrc").resolve()
    data = np.load(project / "J1" / "imported_movies.cs")
    assert data["movie_blob/path"][0] == b"J1/imported/movie_000.mrc"
    assert tuple(data["movie_blob/shape"][0]) == (8, 512, 512)
    assert {ref.kind for _, ref in ctx.outputs} == {"dataset", "blob"}


def test_motion_shifts_within_half_pixel(chain):
    _, jobs, truth = chain
    shifts = jobs["motion_correction"].results["shifts_px"]
    for mic in truth["micrographs"]:
        est = np.array(shifts[_movie_key(mic)])
        assert np.abs(est - np.array(mic["shifts_px"])).max() < 0.5


def test_ctf_defocus_within_five_percent(chain):
    project, _, truth = chain
    data = np.load(project / "J3" / "micrographs_ctf.cs")
    for row, mic in zip(data, truth["micrographs"]):
        true_mean = (mic["defocus_u_A"] + mic["defocus_v_A"]) / 2
        est_mean = (row["ctf/df1_A"] + row["ctf/df2_A"]) / 2
        assert abs(est_mean - true_mean) / true_mean < 0.05
        assert row["ctf/df1_A"] >= row["ctf/df2_A"]


def test_picker_recall(chain):
    project, _, truth = chain
    locs = np.load(project / "J4" / "picked_locations.cs")
    radius = truth["spec"]["particle_diameter_A"] / truth["spec"]["psize_A"] / 2
    found = total = 0
    mic_paths = sorted(set(locs["location/micrograph_path"]))
    for path, mic in zip(mic_paths, truth["micrographs"]):
        rows = locs[locs["location/micrograph_path"] == path]
        picks = np.column_stack([rows["location/center_x_frac"], rows["location/center_y_frac"]]) * 512
        true = np.array([[p["x"], p["y"]] for p in mic["particles"]])
        dist = np.hypot(*(true[:, None, :] - picks[None, :, :]).transpose(2, 0, 1)).min(axis=1)
        found += int((dist < 0.5 * radius).sum())
        total += len(true)
    assert found / total >= 0.9


def test_extraction_stacks_hold_the_right_boxes(chain):
    project, jobs, _ = chain
    parts = np.load(project / "J5" / "extracted_particles.cs")
    assert jobs["extract_particles"].results["n_particles"] == len(parts)
    for field in ("uid", "blob/path", "blob/idx", "blob/shape", "blob/psize_A", "location/center_x_frac",
                  "ctf/df1_A", "ctf/accel_kv"):
        assert field in parts.dtype.names
    import mrcfile
    row = parts[3]
    with mrcfile.open(project / row["location/micrograph_path"].decode()) as m:
        mic = np.asarray(m.data, np.float32)
    box = int(row["blob/shape"][0])
    x0 = int(np.floor(row["location/center_x_frac"] * 512 + 0.5)) - box // 2
    y0 = int(np.floor(row["location/center_y_frac"] * 512 + 0.5)) - box // 2
    want = extract_boxes_numpy(mic, np.array([y0]), np.array([x0]), box, background_mask(box))[0]
    got = read_images(project / row["blob/path"].decode(), [int(row["blob/idx"])])[0]
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert abs(got[background_mask(box)].std() - 1) < 1e-3


def test_numba_and_numpy_extraction_agree():
    rng = np.random.default_rng(1)
    mic = rng.normal(size=(200, 300)).astype(np.float32)
    y0, x0 = rng.integers(0, 200 - 48, 20), rng.integers(0, 300 - 48, 20)
    bg = background_mask(48)
    for norm in (True, False):
        np.testing.assert_allclose(extract_boxes(mic, y0, x0, 48, bg, norm),
                                   extract_boxes_numpy(mic, y0, x0, 48, bg, norm), rtol=1e-5, atol=1e-5)


def test_class2d_writes_one_version_per_iteration(chain):
    _, jobs, _ = chain
    ctx = jobs["class_2d"]
    for group in ("class_averages", "particles"):  # both outputs: one version per iteration
        versions = sorted({ref.version for g, ref in ctx.outputs if g == group})
        assert versions == list(range(CLASS2D["num_iterations"])), group
    kinds = {ref.kind for g, ref in ctx.outputs if g == "class_averages" and ref.version == 0}
    assert kinds == {"blob", "dataset"}
    last = CLASS2D["num_iterations"] - 1
    final = np.load(ctx.project_dir / [r.path for g, r in ctx.outputs if g == "particles" and r.version == last][0])
    assert len(final) == len(np.load(ctx.project_dir / ctx.inputs["particles"][0].path("dataset")))
    assert "blob/path" in final.dtype.names  # every input field, plus the iteration's alignments
    assert final["alignments2D/class"].max() < CLASS2D["num_classes"]
    assert sum(ctx.results["class_sizes"]) == len(final)


def test_select_2d_keeps_a_subset_pointing_into_extraction(chain):
    project, jobs, _ = chain
    sel = np.load(project / "J7" / "particles.cs")
    rest = np.load(project / "J7" / "particles_excluded.cs")
    total = len(np.load(project / "J6" / "class2d" / f"iter_{CLASS2D['num_iterations'] - 1:03d}_particles.cs"))
    assert len(sel) + len(rest) == total and len(sel) > 0
    assert all(p.startswith(b"J5/extract/") for p in sel["blob/path"])
    manual = run_inline(project, "J70", "select_2d", {"classes": "0"},
                        {"particles": (jobs["class_2d"], "particles")})
    assert manual.results["kept_classes"] == [0]
    with pytest.raises(UsageError, match="no class 9"):
        run_inline(project, "J71", "select_2d", {"classes": "9"}, {"particles": (jobs["class_2d"], "particles")})


def test_cleared_jobs_rerun_bit_identical(chain):
    project, jobs, _ = chain
    for type_name in ("motion_correction", "ctf_estimation", "blob_picker", "extract_particles", "class_2d"):
        ctx = jobs[type_name]
        before = _hashes(ctx.job_dir)
        shutil.rmtree(ctx.job_dir)  # what Cleanup "clear" does to a preprocessing job
        again = run_inline(project, ctx.uid, type_name, ctx.params,
                           {slot: [(_parent(jobs, r.parent_uid), r.output) for r in refs]
                            for slot, refs in ctx.inputs.items()})
        assert _hashes(ctx.job_dir) == before, type_name
        assert [(g, r.path, r.kind, r.version) for g, r in again.outputs] == \
               [(g, r.path, r.kind, r.version) for g, r in ctx.outputs]


def _parent(jobs, uid):
    return next(c for c in jobs.values() if c.uid == uid)


def test_class2d_cancel_keeps_finished_iterations(chain, monkeypatch):
    """Issue 12, item 4: a killed class_2d keeps each finished iteration's class averages *and*
    particles, so once marked complete its last completed iteration is its output for Select 2D."""
    import cryodesk.demo.pipeline as pipeline

    project, jobs, _ = chain
    stop = threading.Event()
    made = []
    real = pipeline.JobContext
    monkeypatch.setattr(pipeline, "JobContext", lambda *a, **k: made.append(real(*a, **k)) or made[-1])

    def progress(fraction, message):
        if message == "iteration 2":
            stop.set()

    with pytest.raises(JobCancelled):
        run_inline(project, "J60", "class_2d", {**CLASS2D, "num_iterations": 5},
                   {"particles": (jobs["extract_particles"], "particles")}, cancel_event=stop, progress_cb=progress)
    assert sorted((project / "J60" / "class2d").glob("iter_*_classes.mrc"))[-1].name == "iter_001_classes.mrc"
    ctx = made[0]
    kept = {(g, r.version) for g, r in ctx.outputs}
    assert kept == {(g, v) for g in ("class_averages", "particles") for v in (0, 1)}
    sel = run_inline(project, "J61", "select_2d", {}, {"particles": (ctx, "particles"),
                                                       "class_averages": (ctx, "class_averages")})
    assert sel.inputs["particles"][0].version == 1 and sel.results["n_selected"] > 0


def test_import_missing_raw_file_names_it(tmp_path):
    with pytest.raises(DataError, match="nothing_here.mrc"):
        run_inline(tmp_path, "J1", "import_movies", {"path": str(tmp_path / "nothing_here.mrc"), "psize_A": 1.0})
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no MRC files"):
        run_inline(tmp_path, "J2", "import_movies", {"path": str(tmp_path / "empty")})


def test_import_corrupt_movie_names_it(sim, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(sim[0] / "movies" / "movie_000.mrc", raw / "good.mrc")
    data = (sim[0] / "movies" / "movie_001.mrc").read_bytes()
    (raw / "truncated.mrc").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="truncated.mrc"):
        run_inline(tmp_path, "J1", "import_movies", {"path": str(raw / "*.mrc")})
    (raw / "truncated.mrc").write_bytes(b"not an mrc file at all" * 100)
    with pytest.raises(DataError, match="truncated.mrc"):
        run_inline(tmp_path, "J2", "import_movies", {"path": str(raw)})
    with pytest.raises(DataError, match="good.mrc"):  # one frame is not a movie
        run_inline(tmp_path, "J3", "import_micrographs", {"path": str(raw / "good.mrc")})


def test_motion_reports_raw_file_deleted_after_import(sim, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(sim[0] / "movies" / "movie_000.mrc", raw / "m0.mrc")
    imp = run_inline(tmp_path, "J1", "import_movies", {"path": str(raw)})
    (raw / "m0.mrc").unlink()
    with pytest.raises(DataError, match="m0.mrc"):
        run_inline(tmp_path, "J2", "motion_correction", {}, {"movies": (imp, "movies")})


def test_import_micrographs(sim, tmp_path):
    ctx = run_inline(tmp_path, "J1", "import_micrographs", {"path": str(sim[0] / "micrographs" / "*.mrc")})
    data = np.load(tmp_path / "J1" / "imported_micrographs.cs")
    assert len(data) == 4 and tuple(data["micrograph_blob/shape"][0]) == (512, 512)
    assert data["micrograph_blob/psize_A"][0] == pytest.approx(2.0)  # read from the header
    assert ctx.results["n_micrographs"] == 4
