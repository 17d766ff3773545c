"""STAR <-> .cs particle metadata against independent oracles.

Oracles: ``starfile`` reads every STAR file (ours and RELION's), SciPy's
``Rotation`` is the pose convention (``from_rotvec(pose).as_euler('ZYZ')``),
cryosparc-tools' ``Dataset.load`` reads the ``.cs`` files.  Real poses: the
RELION 3.1 tutorial's refinements in ``../shared/realdata/relion31_tutorial``.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from cryodesk.base.errors import DataError
from cryodesk.io import cs, relion, star, star_images
from cryodesk.io.conversion import ConversionReport

Rotation = pytest.importorskip("scipy.spatial.transform").Rotation
starfile = pytest.importorskip("starfile")
Dataset = pytest.importorskip("cryosparc.dataset").Dataset

TUTORIAL = "relion31_tutorial"
REFINE = f"{TUTORIAL}/Refine3D/job029/run_it018_data.star"
WITH_POSES = [REFINE, f"{TUTORIAL}/Refine3D/job019/run_it020_data.star", f"{TUTORIAL}/Class3D/job016/run_it025_data.star",
              f"{TUTORIAL}/InitialModel/job015/run_it150_data.star", f"{TUTORIAL}/CtfRefine/job024/particles_ctf_refine.star"]
ANGLES = ["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]


def wrap(d):
    return (np.asarray(d, dtype=np.float64) + 180.0) % 360.0 - 180.0


def scipy_euler(rotvec):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # gimbal lock: SciPy sets psi = 0, as we do
        return Rotation.from_rotvec(np.asarray(rotvec, dtype=np.float64)).as_euler("ZYZ", degrees=True)


def merged(path):
    """starfile's particles table with each particle's optics row joined (the oracle's view)."""
    blocks = starfile.read(path, always_dict=True)
    parts = blocks["particles"] if "particles" in blocks else next(iter(blocks.values()))
    if "optics" in blocks:
        parts = parts.merge(blocks["optics"], on="rlnOpticsGroup", how="left", suffixes=("", "_optics"))
    return parts


def assert_same_angles(ours, ref, tol=1e-3):
    """Angles agree to ``tol`` degrees; where tilt is 0/180 (gimbal lock) the rotations agree."""
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    free = (ref[:, 1] > 0.01) & (ref[:, 1] < 179.99)
    assert np.abs(wrap(ours[free] - ref[free])).max() < tol
    r1 = Rotation.from_euler("ZYZ", ours, degrees=True)
    r2 = Rotation.from_euler("ZYZ", ref, degrees=True)
    assert np.degrees((r1.inv() * r2).magnitude()).max() < tol


# ---------------------------------------------------------------- STAR -> .cs
@pytest.mark.parametrize("name", WITH_POSES)
def test_star_poses_become_alignments3d(realdata_dir, name):
    path = realdata_dir / name
    report = ConversionReport("STAR -> .cs")
    d = relion.star_to_cs(star.read_star(path), str(path), report=report)
    ref = merged(path)
    assert len(d) == len(ref)
    assert_same_angles(scipy_euler(d["alignments3D/pose"]), ref[ANGLES].to_numpy())
    shift_a = d["alignments3D/shift"].astype(np.float64) * d["alignments3D/psize_A"][:, None]
    np.testing.assert_allclose(shift_a, ref[["rlnOriginXAngst", "rlnOriginYAngst"]].to_numpy(), atol=1e-3)
    np.testing.assert_allclose(d["alignments3D/psize_A"], ref["rlnImagePixelSize"], rtol=1e-6)
    np.testing.assert_array_equal(d["alignments3D/class"], ref["rlnClassNumber"] - 1)
    if "rlnRandomSubset" in ref:
        np.testing.assert_array_equal(d["alignments3D/split"], ref["rlnRandomSubset"] - 1)
    assert not any(f"relion/{lab}" in d.dtype.names for lab in ANGLES + ["rlnOriginXAngst", "rlnClassNumber"])
    assert "rlnAngleRot/Tilt/Psi (ZYZ, degrees)" in report.mapped


def test_star_optics_ctf_refinements(realdata_dir):
    """Beam tilt and magnification from data_optics become ctf/tilt_A and ctf/anisomag."""
    path = realdata_dir / REFINE
    d = relion.star_to_cs(star.read_star(path), str(path))
    ref = merged(path)
    cs_a = ref["rlnSphericalAberration"].to_numpy() * 1e7
    tilt = ref[["rlnBeamTiltX", "rlnBeamTiltY"]].to_numpy() / 1e3
    np.testing.assert_allclose(d["ctf/tilt_A"], cs_a[:, None] * np.sin(tilt), rtol=1e-6)
    mag = ref[["rlnMagMat00", "rlnMagMat01", "rlnMagMat10", "rlnMagMat11"]].to_numpy()
    np.testing.assert_allclose(d["ctf/anisomag"], mag - [1, 0, 0, 1], atol=1e-7)
    # Zernike coefficients have no CryoSPARC field: carried verbatim
    assert cs.as_str(d["relion/rlnOddZernike"][:1])[0] == "[-0.238192150209,0.0947790958988,1.41916848821,0,0,-2.16360232922]"


def test_class2d_alignments(realdata_dir):
    """RELION Class2D (rot = tilt = 0, psi and origins): alignments2D, psi unwrapped."""
    path = realdata_dir / TUTORIAL / "Class2D/job008/run_it025_data.star"
    d = relion.star_to_cs(star.read_star(path), str(path))
    ref = merged(path)
    assert "alignments3D/pose" not in d.dtype.names
    np.testing.assert_allclose(np.degrees(d["alignments2D/pose"].astype(np.float64)), ref["rlnAnglePsi"], atol=1e-4)
    np.testing.assert_allclose(d["alignments2D/shift"] * d["alignments2D/psize_A"][:, None],
                               ref[["rlnOriginXAngst", "rlnOriginYAngst"]].to_numpy(), atol=1e-3)
    np.testing.assert_array_equal(d["alignments2D/class"], ref["rlnClassNumber"] - 1)
    np.testing.assert_array_equal(d["relion/rlnAngleRot"], 0)  # the zeros ride along, not a 3D pose


def test_picking_angles_are_not_alignments(realdata_dir):
    path = realdata_dir / TUTORIAL / "Extract/job012/particles.star"  # psi from template picking, no origins
    report = ConversionReport("STAR -> .cs")
    d = relion.star_to_cs(star.read_star(path), str(path), report=report)
    assert not any(f.startswith("alignments") for f in d.dtype.names)
    np.testing.assert_allclose(d["relion/rlnAnglePsi"][:2], [40, 290])
    assert any("picking angle" in n for n in report.notes)
    path = realdata_dir / TUTORIAL / "Extract/job007/particles.star"  # class 0 from LoG picking
    d = relion.star_to_cs(star.read_star(path), str(path))
    assert "relion/rlnClassNumber" in d.dtype.names


def test_relion30_pixel_origins_are_converted(realdata_dir, tmp_path):
    """RELION 3.0 rlnOriginX/Y are pixels: shifts in pixels of the det/mag pixel size, Å on export."""
    text = (realdata_dir / "empiar_10076_7.star").read_text().splitlines()
    n_head = max(i for i, line in enumerate(text) if line.startswith("_")) + 1
    rows = [line for line in text[n_head:] if "@" in line]
    ref = merged(realdata_dir / REFINE).iloc[:7]
    px = np.array([[-0.1115, 0.4], [1.5, -2.25], [0.0, 0.0], [3.0, 1.0], [-1.0, -1.0], [0.5, 0.25], [2, -3]])
    head = text[:n_head] + [f"_{lab} #{11 + k}" for k, lab in enumerate(ANGLES + ["rlnOriginX", "rlnOriginY"])]
    body = [f"{r} {a:.6f} {b:.6f} {c:.6f} {x} {y}" for r, (a, b, c), (x, y) in
            zip(rows, ref[ANGLES].to_numpy(), px)]
    path = tmp_path / "r30.star"
    path.write_text("\n".join(head + body) + "\n")
    d = relion.star_to_cs(star.read_star(path), str(path))
    psize = 5 * 1e4 / 38168
    np.testing.assert_allclose(d["alignments3D/psize_A"], psize, rtol=1e-6)
    np.testing.assert_allclose(d["alignments3D/shift"], px, atol=1e-6)
    out = tmp_path / "out.star"
    star.write_star(out, relion.cs_to_star(d))
    back = merged(out)
    np.testing.assert_allclose(back[["rlnOriginXAngst", "rlnOriginYAngst"]], px * psize, atol=1e-3)
    assert "rlnOriginX" not in back  # pixels became Å, not carried twice
    assert_same_angles(back[ANGLES].to_numpy(), ref[ANGLES].to_numpy())


def test_one_optics_group_without_rlnopticsgroup():
    text = ("data_optics\nloop_\n_rlnOpticsGroup\n_rlnImagePixelSize\n_rlnVoltage\n1 1.5 300\n"
            "data_particles\nloop_\n_rlnImageName\n_rlnDefocusU\n1@a.mrcs 1000\n2@a.mrcs 2000\n")
    report = ConversionReport("STAR -> .cs")
    d = relion.star_to_cs(star.parse_star(text), "x.star", report=report)
    np.testing.assert_allclose(d["blob/psize_A"], 1.5)
    np.testing.assert_allclose(d["ctf/accel_kv"], 300)
    assert d["ctf/exp_group_id"].tolist() == [1, 1] and any("one optics group" in n for n in report.notes)
    two = text.replace("1 1.5 300\n", "1 1.5 300\n2 1.5 200\n")
    with pytest.raises(DataError, match="x.star: data_optics defines 2 optics groups but the particles have no "
                                        "_rlnOpticsGroup"):
        relion.star_to_cs(star.parse_star(two), "x.star")


# ---------------------------------------------------------------- .cs -> STAR
@pytest.fixture
def cs_refinement(realdata_dir, tmp_path):
    """A CryoSPARC refinement output built from the tutorial's real poses (SciPy), read back by cryosparc-tools."""
    ref = merged(realdata_dir / REFINE).iloc[:400]
    n = len(ref)
    rng = np.random.default_rng(11)
    psize = np.float32(1.244)
    idx, paths = star_images.parse_image_names(ref["rlnImageName"].to_numpy(dtype=str))
    eg = np.where(np.arange(n) < n // 2, 0, 3).astype(np.uint32)  # exposure group 0 exists in CryoSPARC
    cs_mm = ref["rlnSphericalAberration"].to_numpy(np.float32)
    cols = {
        "blob/path": paths, "blob/idx": idx, "blob/shape": np.tile([256, 256], (n, 1)), "blob/psize_A": psize,
        "blob/sign": -1.0, "blob/import_sig": np.uint64(77), "ctf/type": "spline",
        "ctf/exp_group_id": eg, "ctf/accel_kv": 300.0, "ctf/cs_mm": cs_mm, "ctf/amp_contrast": 0.1,
        "ctf/df1_A": ref["rlnDefocusU"], "ctf/df2_A": ref["rlnDefocusV"],
        "ctf/df_angle_rad": np.radians(ref["rlnDefocusAngle"]), "ctf/phase_shift_rad": 0.0, "ctf/scale": 1.0,
        "ctf/scale_const": 0.0, "ctf/bfactor": 0.0,
        "ctf/tilt_A": np.where(eg[:, None] == 0, [[12.5, -40.0]], [[3.0, 8.0]]).astype(np.float32),
        "ctf/shift_A": np.where(eg[:, None] == 0, [[0.1, -0.2]], [[0.3, 0.0]]).astype(np.float32),
        "ctf/trefoil_A": np.where(eg[:, None] == 0, [[5.0, 2.0]], [[-1.0, 0.5]]).astype(np.float32),
        "ctf/tetra_A": np.tile(np.float32([1, 2, 3, 4]), (n, 1)),
        "ctf/anisomag": np.where(eg[:, None] == 0, [[0.0021, 0.0015, 0.0014, -0.001]], 0.0).astype(np.float32),
        "location/micrograph_uid": rng.integers(1, 2**63, n, dtype=np.uint64),
        "location/exp_group_id": eg, "location/micrograph_path": ref["rlnMicrographName"].to_numpy(dtype=str),
        "location/micrograph_shape": np.tile([3838, 3710], (n, 1)),
        "location/center_x_frac": (ref["rlnCoordinateX"] / 3710).to_numpy(np.float32),
        "location/center_y_frac": (ref["rlnCoordinateY"] / 3838).to_numpy(np.float32),
        "alignments3D/split": (ref["rlnRandomSubset"] - 1).to_numpy(np.uint32),
        "alignments3D/shift": (ref[["rlnOriginXAngst", "rlnOriginYAngst"]].to_numpy() / psize).astype(np.float32),
        "alignments3D/pose": Rotation.from_euler("ZYZ", ref[ANGLES].to_numpy(), degrees=True).as_rotvec().astype(np.float32),
        "alignments3D/psize_A": psize, "alignments3D/error": rng.uniform(0, 1, n).astype(np.float32),
        "alignments3D/class_posterior": 1.0, "alignments3D/class": (ref["rlnClassNumber"] - 1).to_numpy(np.uint32),
        "alignments2D/pose": rng.uniform(-3, 3, n).astype(np.float32),
        "alignments2D/shift": rng.uniform(-2, 2, (n, 2)).astype(np.float32), "alignments2D/psize_A": psize,
        "alignments2D/class": rng.integers(0, 50, n).astype(np.uint32),
    }
    path = cs.write_cs(tmp_path / "J9_particles.cs", cs.from_columns(cols, n))
    ds = Dataset.load(path)  # the oracle reads what we wrote: use its values as the reference
    return cs.read_cs(path), ds


def write_read(blocks, path):
    star.write_star(path, blocks)
    return starfile.read(path, always_dict=True)


def test_cs_export_poses_shifts_against_scipy(cs_refinement, tmp_path):
    data, ds = cs_refinement
    report = ConversionReport(".cs -> STAR")
    blocks = write_read(relion.cs_to_star(data, report=report), tmp_path / "p.star")
    parts, optics = blocks["particles"], blocks["optics"]
    pose = np.asarray(ds["alignments3D/pose"], dtype=np.float64)
    assert_same_angles(parts[ANGLES].to_numpy(), scipy_euler(pose))
    shift_a = np.asarray(ds["alignments3D/shift"], np.float64) * np.asarray(ds["alignments3D/psize_A"])[:, None]
    np.testing.assert_allclose(parts[["rlnOriginXAngst", "rlnOriginYAngst"]], shift_a, atol=1e-3)
    np.testing.assert_array_equal(parts["rlnRandomSubset"], np.asarray(ds["alignments3D/split"]) + 1)
    np.testing.assert_array_equal(parts["rlnClassNumber"], np.asarray(ds["alignments3D/class"]) + 1)
    # optics: per-group columns only in data_optics, where RELION reads them
    for lab in ["rlnBeamTiltX", "rlnBeamTiltY", "rlnMagMat00", "rlnMagMat11", "rlnVoltage", "rlnImagePixelSize"]:
        assert lab in optics and lab not in parts
    assert sorted(optics["rlnOpticsGroup"]) == [1, 2] and set(parts["rlnOpticsGroup"]) == {1, 2}
    exp = dict(zip(optics["rlnOpticsGroup"], optics["csparc/ctf/exp_group_id"]))
    assert exp == {1: 0, 2: 3}  # exposure group 0 is no RELION optics group: renumbered, and kept
    g0 = optics[optics["csparc/ctf/exp_group_id"] == 0].iloc[0]
    cs_a = float(np.asarray(ds["ctf/cs_mm"])[0]) * 1e7
    np.testing.assert_allclose([g0["rlnBeamTiltX"], g0["rlnBeamTiltY"]], np.arcsin(np.array([12.5, -40.0]) / cs_a) * 1e3,
                               rtol=1e-6)
    np.testing.assert_allclose([g0["rlnMagMat00"], g0["rlnMagMat01"], g0["rlnMagMat10"], g0["rlnMagMat11"]],
                               [1.0021, 0.0015, 0.0014, 0.999], atol=1e-7)
    # what RELION has no column for is said, not dropped silently
    assert {"alignments3D/error", "alignments3D/class_posterior"} <= set(report.skipped)
    assert any("alignments2D not written" in n for n in report.notes)
    assert report.carried["ctf/trefoil_A"] == "_csparc/ctf/trefoil_A"


def test_cs_star_cs_roundtrip_keeps_mapped_fields_and_uids(cs_refinement, tmp_path):
    data, _ = cs_refinement
    star.write_star(tmp_path / "p.star", relion.cs_to_star(data))
    back = relion.star_to_cs(star.read_star(tmp_path / "p.star"))
    np.testing.assert_array_equal(back["uid"], data["uid"])
    exact = ["blob/path", "blob/idx", "blob/shape", "ctf/exp_group_id", "location/exp_group_id",
             "location/micrograph_uid", "location/micrograph_path", "location/micrograph_shape",
             "alignments3D/split", "alignments3D/class", "alignments3D/pose", "alignments3D/shift",
             "alignments3D/psize_A", "blob/psize_A", "ctf/shift_A", "ctf/trefoil_A", "ctf/tetra_A",
             "ctf/scale_const", "ctf/accel_kv", "ctf/cs_mm", "ctf/amp_contrast", "ctf/df1_A", "ctf/df2_A",
             "ctf/phase_shift_rad", "ctf/scale", "ctf/bfactor", "ctf/anisomag"]
    for f in exact:
        np.testing.assert_array_equal(back[f], data[f], err_msg=f)
    close = ["ctf/df_angle_rad", "ctf/tilt_A", "location/center_x_frac", "location/center_y_frac"]
    for f in close:  # through degrees, mrad or pixels and back: float32 precision
        np.testing.assert_allclose(back[f], data[f], rtol=2e-7, atol=1e-6, err_msg=f)
    assert back.dtype["alignments3D/pose"] == data.dtype["alignments3D/pose"]


def test_star_cs_star_roundtrip_keeps_every_column(realdata_dir, tmp_path):
    src = realdata_dir / REFINE
    d = relion.star_to_cs(star.read_star(src), str(src))
    orig, back = starfile.read(src, always_dict=True), write_read(relion.cs_to_star(d), tmp_path / "o.star")
    for block in ("optics", "particles"):
        a, b = orig[block], back[block]
        assert set(a.columns) <= set(b.columns), set(a.columns) - set(b.columns)
        for col in a.columns:
            if col in ANGLES:
                continue
            if col == "rlnImageName":  # 000001@x and 1@x name the same image
                for x, y in zip(star_images.parse_image_names(b[col]), star_images.parse_image_names(a[col])):
                    np.testing.assert_array_equal(x, y)
            elif a[col].dtype.kind in "if":
                np.testing.assert_allclose(b[col].to_numpy(np.float64), a[col].to_numpy(np.float64), rtol=1e-6,
                                           atol=1e-5 if "Origin" in col else 1e-9, err_msg=col)
            else:
                np.testing.assert_array_equal(b[col].astype(str), a[col].astype(str), err_msg=col)
    assert_same_angles(back["particles"][ANGLES].to_numpy(), orig["particles"][ANGLES].to_numpy())
    # and again: the uids written by the first trip survive the second
    d2 = relion.star_to_cs(star.read_star(tmp_path / "o.star"))
    np.testing.assert_array_equal(d2["uid"], d["uid"])


def test_exposure_group_split_when_optics_values_differ(cs_refinement):
    data, _ = cs_refinement
    data = data.copy()
    data["ctf/exp_group_id"] = 1
    data["location/exp_group_id"] = 1
    for f in ("ctf/tilt_A", "ctf/anisomag"):
        data[f] = data[f][-1]
    data["ctf/accel_kv"][:10] = 200.0
    report = ConversionReport(".cs -> STAR")
    blocks = relion.cs_to_star(data, report=report)
    opt = blocks["optics"].columns
    assert opt["rlnOpticsGroup"].tolist() == [1, 2] and sorted(opt["rlnVoltage"].tolist()) == [200.0, 300.0]
    assert "exposure group 1 split into 2 RELION optics groups: rlnVoltage differ within it" in report.notes
    back = relion.star_to_cs(blocks)
    np.testing.assert_array_equal(back["ctf/exp_group_id"], 1)  # still one exposure group
    np.testing.assert_array_equal(back["ctf/accel_kv"], data["ctf/accel_kv"])


def test_beam_tilt_without_cs_is_carried(cs_refinement):
    data, _ = cs_refinement
    data = data.copy()
    data["ctf/cs_mm"] = 0.0
    report = ConversionReport(".cs -> STAR")
    blocks = relion.cs_to_star(data, report=report)
    assert "rlnBeamTiltX" not in blocks["optics"].columns and "ctf/tilt_A" in report.skipped
    back = relion.star_to_cs(blocks)
    np.testing.assert_array_equal(back["ctf/tilt_A"], data["ctf/tilt_A"])


def test_relion30_export_pixel_origins(cs_refinement, tmp_path):
    data, _ = cs_refinement
    blocks = write_read(relion.cs_to_star(data, version=30), tmp_path / "p30.star")
    parts = next(iter(blocks.values()))
    shift_a = data["alignments3D/shift"].astype(np.float64) * data["alignments3D/psize_A"][:, None]
    np.testing.assert_allclose(parts[["rlnOriginX", "rlnOriginY"]], shift_a / 1.244, atol=1e-4)
    back = relion.star_to_cs(star.read_star(tmp_path / "p30.star"))
    np.testing.assert_allclose(back["alignments3D/shift"], data["alignments3D/shift"], atol=1e-5)
    np.testing.assert_array_equal(back["ctf/exp_group_id"], data["ctf/exp_group_id"])


def test_light_on_dark_particles_are_flagged(cs_refinement):
    data, _ = cs_refinement
    data = data.copy()
    report = ConversionReport(".cs -> STAR")
    relion.cs_to_star(data, report=report)
    assert "blob/sign" in report.quiet
    data["blob/sign"] = 1.0
    report = ConversionReport(".cs -> STAR")
    relion.cs_to_star(data, report=report)
    assert "light-on-dark" in report.skipped["blob/sign"] and "blob/sign" not in report.quiet
