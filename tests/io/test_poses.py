"""The pose convention against SciPy: Rotation.from_rotvec(pose).as_euler('ZYZ', degrees=True).

Real poses come from the RELION 3.1 tutorial's refinements (read with starfile,
an independent reader); random ones cover the rest of SO(3).
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from cryodesk.io import poses

Rotation = pytest.importorskip("scipy.spatial.transform").Rotation
starfile = pytest.importorskip("starfile")

REAL = ["Refine3D/job029/run_it018_data.star", "Class3D/job016/run_it025_data.star",
        "InitialModel/job015/run_it150_data.star", "CtfRefine/job024/particles_ctf_refine.star"]


def angle_diff(a, b):
    """Differences of angles in degrees, wrapped into [-180, 180)."""
    return (np.asarray(a) - np.asarray(b) + 180.0) % 360.0 - 180.0


def scipy_euler(rotvec):
    with warnings.catch_warnings():  # SciPy warns at gimbal lock, where it sets psi = 0 as we do
        warnings.simplefilter("ignore", UserWarning)
        return Rotation.from_rotvec(rotvec).as_euler("ZYZ", degrees=True)


def real_angles(realdata_dir, name):
    df = starfile.read(realdata_dir / "relion31_tutorial" / name)["particles"]
    return df[["rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi"]].to_numpy(dtype=np.float64)


@pytest.mark.parametrize("name", REAL)
def test_real_relion_angles_to_rotvec_and_back(realdata_dir, name):
    euler = real_angles(realdata_dir, name)
    ref = Rotation.from_euler("ZYZ", euler, degrees=True)
    ours = poses.relion_to_rotvec(euler)
    # same rotation as SciPy's, and the canonical vector SciPy gives
    assert np.degrees((ref.inv() * Rotation.from_rotvec(ours)).magnitude()).max() < 1e-9
    np.testing.assert_allclose(ours, ref.as_rotvec(), atol=1e-9)
    back = poses.rotvec_to_relion(ours)
    assert np.abs(angle_diff(back, scipy_euler(ours))).max() < 1e-6
    # RELION's own ranges: the same numbers, except where tilt is 0 or 180 (only rot +- psi defined)
    free = (euler[:, 1] > 1e-6) & (euler[:, 1] < 180 - 1e-6)
    assert free.sum() > 0.9 * len(euler)
    assert np.abs(angle_diff(back[free], euler[free])).max() < 1e-6
    np.testing.assert_allclose(poses.euler_to_matrix(back), ref.as_matrix(), atol=1e-9)


def test_float32_poses_agree_with_scipy_to_1e_3_degrees(realdata_dir):
    """What a .cs holds (float32 poses) converts as SciPy converts it."""
    euler = real_angles(realdata_dir, REAL[0])
    pose32 = Rotation.from_euler("ZYZ", euler, degrees=True).as_rotvec().astype(np.float32)
    ours = poses.rotvec_to_relion(pose32)
    assert np.abs(angle_diff(ours, scipy_euler(pose32.astype(np.float64)))).max() < 1e-3
    assert np.abs(angle_diff(ours, euler)).max() < 1e-3


def test_random_rotations_and_matrices():
    rot = Rotation.random(20000, random_state=7)
    v = rot.as_rotvec()
    np.testing.assert_allclose(poses.rotvec_to_matrix(v), rot.as_matrix(), atol=1e-12)
    mats = poses.euler_to_matrix(poses.rotvec_to_relion(v))
    np.testing.assert_allclose(mats, rot.as_matrix(), atol=1e-12)
    np.testing.assert_allclose(poses.matrix_to_rotvec(rot.as_matrix()), v, atol=1e-12)
    # SciPy's intrinsic ZYZ and RELION's matrix A are transposes of each other (RELION euler.cpp)
    e = np.radians(poses.rotvec_to_relion(v[:50]))
    for (a, b, g), m in zip(e, rot.as_matrix()[:50]):
        ca, cb, cg, sa, sb, sg = np.cos(a), np.cos(b), np.cos(g), np.sin(a), np.sin(b), np.sin(g)
        relion_a = np.array([[cg * cb * ca - sg * sa, cg * cb * sa + sg * ca, -cg * sb],
                             [-sg * cb * ca - cg * sa, -sg * cb * sa + cg * ca, sg * sb],
                             [sb * ca, sb * sa, cb]])
        np.testing.assert_allclose(relion_a, m.T, atol=1e-12)


@pytest.mark.parametrize("vec", [[0, 0, 0], [np.pi, 0, 0], [0, np.pi, 0], [0, 0, np.pi], [0, 0, -3.0],
                                 [np.pi / 2**0.5, np.pi / 2**0.5, 0], [0, 0, 0.3], [1e-9, 2e-9, 0],
                                 [0.2, 0.1, 0], [3.0, 0.5, 0.1]])
def test_edge_cases_match_scipy(vec):
    """Identity, half turns and gimbal lock (tilt 0 or 180: psi = 0, as SciPy)."""
    v = np.array([vec], dtype=np.float64)
    ours = poses.rotvec_to_relion(v)
    ref = scipy_euler(v)
    if 1e-6 < ref[0, 1] < 180 - 1e-6:
        assert np.abs(angle_diff(ours, ref)).max() < 1e-9
    np.testing.assert_allclose(poses.euler_to_matrix(ours), Rotation.from_rotvec(v).as_matrix(), atol=1e-12)
    np.testing.assert_allclose(poses.rotvec_to_matrix(poses.relion_to_rotvec(ours)),
                               Rotation.from_rotvec(v).as_matrix(), atol=1e-12)


def test_non_canonical_pose_comes_back_as_the_same_rotation():
    v = np.array([[0.0, 0.0, 4.0]])  # |v| > pi: the same rotation as (0, 0, 4 - 2 pi)
    back = poses.relion_to_rotvec(poses.rotvec_to_relion(v))
    np.testing.assert_allclose(back, [[0.0, 0.0, 4.0 - 2 * np.pi]], atol=1e-12)


def test_bad_shape():
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        poses.rotvec_to_relion(np.zeros((3, 2)))


def test_compiled_pass_agrees_with_the_numpy_reference_and_scipy(realdata_dir):
    """The one-pass kernel (large sets, read in place from a float32 record view) against the numpy
    reference and SciPy: random rotations, the edge cases above, tiny angles, real poses."""
    kernels = pytest.importorskip("cryodesk.io._pose_kernels")
    if not kernels.HAVE_NUMBA:
        pytest.skip("numba not available")
    rng = np.random.default_rng(3)
    edge = np.array([[0, 0, 0], [np.pi, 0, 0], [0, np.pi, 0], [0, 0, np.pi], [0, 0, -3.0], [1e-9, 2e-9, 0],
                     [np.pi / 2**0.5, np.pi / 2**0.5, 0], [0.2, 0.1, 0], [3e-7, -1e-7, 2e-7], [0, 0, 1e-12]])
    real = Rotation.from_euler("ZYZ", real_angles(realdata_dir, REAL[0]), degrees=True).as_rotvec()
    v = np.concatenate([Rotation.random(30000, random_state=11).as_rotvec(), edge, real,
                        rng.normal(0, 1e-4, (500, 3))])
    rec = np.zeros(len(v), dtype=[("uid", "<u8"), ("alignments3D/pose", "<f4", (3,)), ("x", "<f4")])
    rec["alignments3D/pose"] = v
    view = rec["alignments3D/pose"]  # strided float32, as cs_to_star passes it
    assert len(view) >= poses._KERNEL_MIN and not view.flags.c_contiguous
    for arr in (v, view):
        ours = poses.rotvec_to_relion(arr)
        ref = poses.rotvec_to_relion_numpy(arr)
        assert ours.dtype == np.float64 and ours.shape == (len(v), 3)
        assert np.abs(ours - ref).max() < 1e-9  # same formulas and ranges: a few ulp (no wrap-around)
        np.testing.assert_array_equal(ours[:, 2] == 0, ref[:, 2] == 0)  # the same gimbal-locked rows
        free = (ref[:, 1] > 0.1) & (ref[:, 1] < 179.9)  # (near 0 or 180 only rot +- psi is well defined)
        assert free.sum() > 0.9 * len(v)
        assert np.abs(angle_diff(ours[free], scipy_euler(arr[free].astype(np.float64)))).max() < 1e-6
        np.testing.assert_allclose(poses.euler_to_matrix(ours),
                                   Rotation.from_rotvec(arr.astype(np.float64)).as_matrix(), atol=1e-9)
