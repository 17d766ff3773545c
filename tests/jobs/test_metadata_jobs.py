"""Particle metadata through the jobs: import, restack/downsample and export between CryoSPARC and RELION.

Oracles: starfile reads the STAR files, SciPy's Rotation is the pose
convention, cryosparc-tools' Dataset.load reads the .cs files.  The STAR files
are real (the RELION 3.1 tutorial's refinement, the EMPIAR-10076 RELION 3.0
file); stacks the tutorial does not ship are written where its STAR points.
"""

from __future__ import annotations

import logging
import shutil
import warnings
from pathlib import Path

import mrcfile
import numpy as np
import pytest

from cryodesk.base.errors import DataError
from cryodesk.core import registry
from cryodesk.core.context import InputRef, JobContext, OutputFileRef
from cryodesk.io import cs, mrc

Rotation = pytest.importorskip("scipy.spatial.transform").Rotation
starfile = pytest.importorskip("starfile")
Dataset = pytest.importorskip("cryosparc.dataset").Dataset

ANGLES = ["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]
ORIGINS = ["rlnOriginXAngst", "rlnOriginYAngst"]
N_REAL = 12  # the refinement's first particles: images 1..12 of one Polish stack


def run(project: Path, job_type: str, uid: str, params: dict, parent: JobContext | None = None) -> JobContext:
    jt = registry.get(job_type)
    inputs = {}
    if parent is not None:
        files = [f for g, f in parent.outputs if g == "particles"]
        inputs = {"particles": [InputRef("particles", parent.uid, "particles", 0, files, project)]}
    ctx = JobContext("P1", uid, job_type, project, project / uid, jt.coerce_params(params), inputs,
                     logging.getLogger(f"test.meta.{uid}"))
    (project / uid).mkdir(parents=True, exist_ok=True)
    jt.run(ctx)
    return ctx


def dataset(project: Path, ctx: JobContext) -> Path:
    (ref,) = [f for _, f in ctx.outputs if f.kind == "dataset"]
    return project / ref.path


def scipy_euler(pose):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return Rotation.from_rotvec(np.asarray(pose, dtype=np.float64)).as_euler("ZYZ", degrees=True)


def wrap(d):
    return (np.asarray(d, dtype=np.float64) + 180.0) % 360.0 - 180.0


@pytest.fixture
def relion_project(realdata_dir, tmp_path) -> Path:
    """A RELION project holding the first particles of the tutorial's Refine3D/job029 output."""
    proj = tmp_path / "relion"
    lines = (realdata_dir / "relion31_tutorial/Refine3D/job029/run_it018_data.star").read_text().splitlines()
    start = max(i for i, line in enumerate(lines) if line.startswith("_rln")) + 1
    job = proj / "Refine3D/job029"
    job.mkdir(parents=True)
    (job / "run_it018_data.star").write_text("\n".join(lines[:start] + lines[start:start + N_REAL]) + "\n")
    stack = proj / "Polish/job028/Movies/20170629_00021_frameImage_shiny.mrcs"
    stack.parent.mkdir(parents=True)
    rng = np.random.default_rng(3)
    mrc.write_stack(stack, rng.integers(-500, 500, (N_REAL, 256, 256)).astype(np.int16), 1.244)
    return proj


def test_relion_refinement_import_export(relion_project, tmp_path):
    src = relion_project / "Refine3D/job029/run_it018_data.star"
    ref = starfile.read(src)
    parts, optics = ref["particles"], ref["optics"]
    proj = tmp_path / "cd"
    imp = run(proj, "import_particles", "J1", {"particle_meta_path": str(src), "particle_blob_path": str(relion_project)})
    ds = Dataset.load(dataset(proj, imp))  # the .cs as CryoSPARC reads it
    pose = np.asarray(ds["alignments3D/pose"])
    assert np.abs(wrap(scipy_euler(pose) - parts[ANGLES].to_numpy())).max() < 1e-3
    shift_a = np.asarray(ds["alignments3D/shift"], np.float64) * np.asarray(ds["alignments3D/psize_A"])[:, None]
    np.testing.assert_allclose(shift_a, parts[ORIGINS].to_numpy(), atol=1e-3)
    np.testing.assert_array_equal(ds["alignments3D/split"], parts["rlnRandomSubset"] - 1)
    assert imp.results["conversion"]["mapped"]["rlnMagMat00..11"] == "ctf/anisomag = MagMat - I"

    exp = run(proj, "export_particles", "J2", {"format": "relion"}, imp)
    out = starfile.read(proj / "J2/exported/particles.star")
    assert np.abs(wrap(out["particles"][ANGLES].to_numpy() - parts[ANGLES].to_numpy())).max() < 1e-3
    np.testing.assert_allclose(out["particles"][ORIGINS], parts[ORIGINS], atol=1e-3)
    for col in ["rlnRandomSubset", "rlnClassNumber", "rlnNormCorrection", "rlnGroupNumber"]:
        np.testing.assert_allclose(out["particles"][col], parts[col], err_msg=col)
    for col in ["rlnMagMat00", "rlnMagMat01", "rlnMagMat10", "rlnMagMat11", "rlnBeamTiltX", "rlnBeamTiltY",
                "rlnImagePixelSize", "rlnVoltage"]:
        assert col not in out["particles"]
        np.testing.assert_allclose(out["optics"][col], optics[col], rtol=1e-6, err_msg=col)
    assert out["optics"]["rlnOddZernike"].tolist() == optics["rlnOddZernike"].tolist()
    assert "conversion" in exp.results and exp.results["conversion"]["not_converted"].keys() <= {
        "blob/sign", "blob/import_sig", "ctf/type"}


def test_dotdot_paths_and_particle_blob_path(relion_project, tmp_path):
    """A STAR in Select/job099 pointing at ../../Polish: found under particle_blob_path, never outside it."""
    text = (relion_project / "Refine3D/job029/run_it018_data.star").read_text()
    sel = relion_project / "Select/job099"
    sel.mkdir(parents=True)
    (sel / "particles.star").write_text(text.replace("@Polish", "@../../Polish"))
    proj = tmp_path / "cd"
    ctx = run(proj, "import_particles", "J1", {"particle_meta_path": str(sel / "particles.star"),
                                              "particle_blob_path": str(relion_project)})
    assert ctx.results["num_particles"] == N_REAL
    with pytest.raises(DataError, match=r"escapes the particle data directory .*job099.*set particle_blob_path"):
        run(proj, "import_particles", "J2", {"particle_meta_path": str(sel / "particles.star")})
    with pytest.raises(DataError, match="escapes"):  # the blob path bounds it too
        run(proj, "import_particles", "J3", {"particle_meta_path": str(sel / "particles.star"),
                                             "particle_blob_path": str(sel)})
    # a STAR whose paths are project-relative, imported without particle_blob_path: the error says what to set
    with pytest.raises(DataError, match=r"(?s)particle stack not found.*looked up under .*job029; set "
                                        r"particle_blob_path to the directory"):
        run(proj, "import_particles", "J4", {"particle_meta_path": str(relion_project / "Refine3D/job029/run_it018_data.star")})
    assert not any((proj / uid).exists() and any((proj / uid).iterdir()) for uid in ("J2", "J3", "J4"))


@pytest.fixture
def relion30(realdata_dir, tmp_path) -> Path:
    """The real EMPIAR-10076 RELION 3.0 STAR with real tutorial poses and pixel origins added."""
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(realdata_dir / "empiar_10076_7.mrc", raw)
    text = (realdata_dir / "empiar_10076_7.star").read_text().splitlines()
    n_head = max(i for i, line in enumerate(text) if line.startswith("_")) + 1
    rows = [line for line in text[n_head:] if "@" in line]
    angles = starfile.read(realdata_dir / "relion31_tutorial/Refine3D/job029/run_it018_data.star")["particles"]
    angles = angles[ANGLES].to_numpy()[:7]
    px = np.array([[-0.1115, 0.4], [1.5, -2.25], [0.0, 0.0], [3.0, 1.0], [-1.0, -1.0], [0.5, 0.25], [2.0, -3.0]])
    head = text[:n_head] + [f"_{lab} #{11 + k}" for k, lab in enumerate(ANGLES + ["rlnOriginX", "rlnOriginY"])]
    body = [f"{r} {a:.6f} {b:.6f} {c:.6f} {x} {y}" for r, (a, b, c), (x, y) in zip(rows, angles, px)]
    (raw / "r30.star").write_text("\n".join(head + body) + "\n")
    return raw / "r30.star"


def test_downsample_then_export_keeps_shifts_in_angstrom(relion30, tmp_path):
    """RELION 3.0 pixel origins -> 2x downsample -> RELION STAR: the same shifts in Å (issue: -0.146 became -0.291)."""
    src = starfile.read(relion30)
    psize = 5 * 1e4 / 38168
    want = src[["rlnOriginX", "rlnOriginY"]].to_numpy() * psize
    assert round(want[0, 0], 3) == -0.146
    proj = tmp_path / "cd"
    imp = run(proj, "import_particles", "J1", {"particle_meta_path": str(relion30)})
    down = run(proj, "downsample_particles", "J2", {"new_box_size": 160}, imp)
    mid = cs.read_cs(dataset(proj, down))
    np.testing.assert_allclose(mid["alignments3D/psize_A"], 2 * psize, rtol=1e-6)
    with mrcfile.open(proj / cs.as_str(mid["blob/path"][:1])[0], header_only=True) as m:
        assert abs(float(m.voxel_size.x) - 2 * psize) < 1e-5
    run(proj, "export_particles", "J3", {"format": "relion"}, down)
    out = starfile.read(proj / "J3/exported/particles.star")
    np.testing.assert_allclose(out["particles"][ORIGINS].to_numpy(), want, atol=1e-3)
    assert abs(out["particles"]["rlnOriginXAngst"][0] - (-0.146)) < 1e-3
    assert np.abs(wrap(out["particles"][ANGLES].to_numpy() - src[ANGLES].to_numpy())).max() < 1e-3
    np.testing.assert_allclose(out["optics"]["rlnImagePixelSize"], 2 * psize, rtol=1e-6)


def test_export_csdat_and_reimport_the_group(realdata_dir, tmp_path, caplog):
    proj = tmp_path / "cd"
    src = cs.read_cs(realdata_dir / "empiar_10076_7.cs")
    cols = {n: src[n] for n in src.dtype.names}
    cols["alignments3D/pose"] = Rotation.random(7, random_state=2).as_rotvec().astype(np.float32)
    cols["alignments3D/shift"] = np.linspace(-2, 2, 14, dtype=np.float32).reshape(7, 2)
    cols["alignments3D/psize_A"] = src["blob/psize_A"]
    cols["alignments3D/error"] = np.ones(7, np.float32)
    raw = tmp_path / "raw"
    raw.mkdir()
    shutil.copy(realdata_dir / "empiar_10076_7.mrc", raw)
    cs.write_cs(raw / "refined.cs", cs.from_columns(cols, 7))
    imp = run(proj, "import_particles", "J1", {"particle_meta_path": str(raw / "refined.cs")})
    run(proj, "export_particles", "J2", {"format": "cryosparc", "cs_format": "csdat"}, imp)
    out = proj / "J2/exported/particles_exported.cs"
    assert out.read_bytes()[:6] == b"\x95CSDAT"
    ds = Dataset.load(out)
    np.testing.assert_array_equal(ds["uid"], src["uid"])
    np.testing.assert_array_equal(ds["alignments3D/pose"], cols["alignments3D/pose"])
    again = run(proj, "import_particles", "J3", {"particle_meta_path": str(proj / "J2/exported/particles_exported.csg")})
    back = cs.read_cs(dataset(proj, again))
    for f in cols:
        if f != "blob/path":
            np.testing.assert_array_equal(back[f], cs.from_columns(cols, 7)[f], err_msg=f)
    # the RELION export says what it could not convert, in the log and the results
    with caplog.at_level(logging.INFO, logger="test.meta.J4"):
        exp = run(proj, "export_particles", "J4", {"format": "relion"}, imp)
    assert exp.results["conversion"]["not_converted"]["alignments3D/error"].startswith("no RELION column")
    assert any(r.levelname == "WARNING" and "not converted: alignments3D/error" in r.getMessage()
               for r in caplog.records)
    assert not any(r.levelname == "WARNING" and "ctf/type" in r.getMessage() for r in caplog.records)
    parts = starfile.read(proj / "J4/exported/particles.star")["particles"]
    assert np.abs(wrap(parts[ANGLES].to_numpy() - scipy_euler(cols["alignments3D/pose"]))).max() < 1e-3
    np.testing.assert_array_equal(parts["csparc/uid"].astype(np.uint64), src["uid"])


def test_restack_mixed_pixel_sizes_writes_each_size_in_its_headers(tmp_path):
    proj = tmp_path / "P"
    (proj / "J1").mkdir(parents=True)
    rng = np.random.default_rng(1)
    images = rng.standard_normal((8, 8, 8)).astype(np.float32)
    mrc.write_stack(proj / "J1/a.mrc", images[:4], 1.0)
    mrc.write_stack(proj / "J1/b.mrc", images[4:], 2.0)
    order = [0, 4, 1, 5, 2, 6, 3, 7]  # interleaved pixel sizes
    data = cs.from_columns({"blob/path": ["J1/a.mrc" if i < 4 else "J1/b.mrc" for i in order],
                            "blob/idx": [i % 4 for i in order], "blob/shape": np.tile([8, 8], (8, 1)),
                            "blob/psize_A": [1.0 if i < 4 else 2.0 for i in order]}, 8)
    cs.write_cs(proj / "J1/particles.cs", data)
    parent = JobContext("P1", "J1", "t", proj, proj / "J1", {}, {}, logging.getLogger("t"))
    parent.outputs.append(("particles", OutputFileRef("dataset", "J1/particles.cs", 0)))
    ctx = run(proj, "restack_particles", "J2", {"particles_per_file": 3}, parent)
    out = cs.read_cs(dataset(proj, ctx))
    np.testing.assert_array_equal(out["uid"], data["uid"])  # row order and identity kept
    for row, i in enumerate(order):
        path = proj / cs.as_str(out["blob/path"][row : row + 1])[0]
        with mrcfile.open(path) as m:
            assert float(m.voxel_size.x) == pytest.approx(float(out["blob/psize_A"][row]))
            np.testing.assert_array_equal(m.data.reshape(-1, 8, 8)[out["blob/idx"][row]], images[i])
    assert ctx.results["psize_A"] == [1.0, 2.0] and ctx.results["stacks"] == 4
