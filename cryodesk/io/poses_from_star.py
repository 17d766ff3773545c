"""RELION angles -> CryoSPARC poses for a whole particle table, compiled (the STAR import's pose pass).

:func:`cryodesk.io.poses.relion_to_rotvec` (the reference, with the
derivation) builds ``Rz(rot) Ry(tilt) Rz(psi)`` as stacks of 3x3 matrices,
multiplies them (a BLAS call per particle), takes the quaternion (Shepperd)
and the rotation vector: about ten passes over ``(N, 3, 3)`` arrays, ~1 s for
a million particles.  Here one kernel goes from the angles' cosines and sines
to the normalised quaternion per row, with the same operations in the same
order: the 3x3 products as BLAS computes them here (each entry a chain of fused
multiply-adds, k = 0, 1, 2), the sums of squares left to right as numpy's
reductions of 3-4 values.  The functions whose last bit differs between numpy
and the C library (``cos``, ``sin``, ``arctan2``: numpy has SIMD versions)
stay numpy's, so the result is the reference's value (the tests hold it to
the reference and to SciPy).  The kernels are in :mod:`cryodesk.io._pose_kernels`,
loaded (with numba) on the first large table only.

API summary
-----------
``rotvec_from_relion(rot, tilt, psi) -> ndarray[float32] (N, 3)``   degrees -> ``alignments3D/pose``
``rotvec_from_relion_numpy(rot, tilt, psi)``                       its reference (:mod:`cryodesk.io.poses`)
"""

from __future__ import annotations

import numpy as np

from cryodesk.io.poses import pose_kernels, relion_to_rotvec

__all__ = ["rotvec_from_relion", "rotvec_from_relion_numpy", "warm"]

#: below this many rows the reference is as fast (and no kernel is loaded)
MIN_ROWS = 4096


def warm() -> None:
    """Load the compiled pass now (numba's first load), for a caller that has a thread to spare."""
    k = pose_kernels()
    if k is not None:
        one = np.ones(1)
        q = np.zeros((5, 1))
        k._quaternions(one, one, one, one, one, one, q)
        k._scale(q, one, np.zeros((1, 3), np.float32))


def rotvec_from_relion_numpy(rot, tilt, psi) -> np.ndarray:
    """``relion_to_rotvec`` of the three angle columns (degrees), as float32 (the reference)."""
    return relion_to_rotvec(np.stack([rot, tilt, psi], axis=1)).astype(np.float32)


def rotvec_from_relion(rot, tilt, psi) -> np.ndarray:
    """CryoSPARC poses (float32 rotation vectors, radians) of RELION angles in degrees, ``(N, 3)``.

    The same values as :func:`rotvec_from_relion_numpy`, a compiled pass
    instead of ten numpy passes over matrix stacks.
    """
    rot, tilt, psi = (np.asarray(a, dtype=np.float64).ravel() for a in (rot, tilt, psi))
    n = len(rot)
    k = pose_kernels() if n >= MIN_ROWS else None
    if k is None:
        return rotvec_from_relion_numpy(rot, tilt, psi)
    trig = []
    for a in (rot, tilt, psi):
        r = np.radians(a)
        trig += [np.cos(r), np.sin(r)]
    q = np.empty((5, n))  # x, y, z, w of the unit quaternion (w >= 0) and |(x, y, z)|
    k._quaternions(*trig, q)
    angle = 2.0 * np.arctan2(q[4], q[3])
    out = np.empty((n, 3), dtype=np.float32)
    k._scale(q, angle, out)
    return out
