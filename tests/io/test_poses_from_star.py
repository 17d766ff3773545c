"""The compiled pose pass of the STAR import against its numpy reference and SciPy."""

from __future__ import annotations

import numpy as np
import pytest

from cryodesk.base.jit import HAVE_NUMBA
from cryodesk.io import poses_from_star as pfs

Rotation = pytest.importorskip("scipy.spatial.transform").Rotation


def _angles(n: int = 20_000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    rot, tilt, psi = rng.uniform(-180, 180, n), rng.uniform(0, 180, n), rng.uniform(-180, 180, n)
    # what RELION writes besides: whole degrees, the identity, gimbal lock (tilt 0 or 180), right angles,
    # tilts just past the poles, each case of Shepperd's choice (trace or one diagonal entry largest)
    rot[:500], tilt[:500], psi[:500] = np.round(rot[:500]), np.round(tilt[:500]), np.round(psi[:500])
    rot[500:600] = tilt[500:600] = psi[500:600] = 0.0
    tilt[600:700], tilt[700:800] = 0.0, 180.0
    rot[800:900], tilt[800:900], psi[800:900] = 90.0, 90.0, -90.0
    tilt[900:1000] = np.repeat([1e-9, 1e-12, 180 - 1e-9, 179.99999999, 90.0], 20)
    rot[1000:1100], tilt[1000:1100], psi[1000:1100] = 180.0, 180.0, 180.0
    return rot, tilt, psi


@pytest.mark.skipif(not HAVE_NUMBA, reason="numba not installed: the reference is what runs")
def test_kernel_gives_the_reference_values():
    rot, tilt, psi = _angles()
    fast = pfs.rotvec_from_relion(rot, tilt, psi)
    ref = pfs.rotvec_from_relion_numpy(rot, tilt, psi)
    assert fast.dtype == np.float32 and fast.shape == (len(rot), 3)
    # the same operations in the same order: bit for bit where the 3x3 products are BLAS's fused
    # multiply-adds (as here); never more than one float32 step apart elsewhere
    np.testing.assert_array_max_ulp(fast, ref, maxulp=1)
    assert np.count_nonzero(fast != ref) <= len(rot) // 10_000


def test_poses_agree_with_scipy():
    rot, tilt, psi = _angles()
    got = pfs.rotvec_from_relion(rot, tilt, psi).astype(np.float64)
    want = Rotation.from_euler("ZYZ", np.stack([rot, tilt, psi], axis=1), degrees=True)
    # the same rotation (a rotation vector and its angle-2pi twin are one rotation): compare matrices
    np.testing.assert_allclose(Rotation.from_rotvec(got).as_matrix(), want.as_matrix(), atol=2e-6)
    assert np.all(np.linalg.norm(got, axis=1) <= np.pi + 1e-6)  # canonical: angle in [0, pi]


def test_small_tables_use_the_reference():
    rot, tilt, psi = (a[:10] for a in _angles())
    assert np.array_equal(pfs.rotvec_from_relion(rot, tilt, psi), pfs.rotvec_from_relion_numpy(rot, tilt, psi))
