"""The compiled twin of :func:`cryodesk.io.poses.rotvec_to_relion_numpy`: one pass, no temporaries.

Imported on first use by :mod:`cryodesk.io.poses` (numba loads with it) for a
large set of poses.  The same formulas as the numpy reference (Rodrigues'
matrix with the same series near the identity, then the same ``atan2``
decomposition and gimbal-lock rule), evaluated per row on the eight matrix
elements the decomposition reads, straight from the ``(N, 3)`` pose array (a
strided view of a ``.cs`` record is fine; float32 values are widened exactly).
``K @ K`` is written in closed form (``v v^T - |v|^2 I``) and libm's ``atan2``
is not numpy's, so values agree with the reference to a few units in the last
place, not bit for bit (tests/io/test_poses.py holds both to each other and to
SciPy).
"""

from __future__ import annotations

import math

import numpy as np

from cryodesk.base.jit import HAVE_NUMBA, jit

_GIMBAL = 1e-9  # (poses._GIMBAL)
_DEG = 180.0 / math.pi

if HAVE_NUMBA:

    @jit
    def rotvec_to_relion(pose):
        """``(N, 3)`` rotation vectors -> ``(N, 3)`` float64 ``rot, tilt, psi`` in degrees."""
        n = pose.shape[0]
        out = np.empty((n, 3), dtype=np.float64)
        for i in range(n):
            x = np.float64(pose[i, 0])
            y = np.float64(pose[i, 1])
            z = np.float64(pose[i, 2])
            t = math.sqrt(x * x + y * y + z * z)
            if t < 1e-6:
                a = 1.0 - t * t / 6.0
                b = 0.5 - t * t / 24.0
            else:
                a = math.sin(t) / t
                b = (1.0 - math.cos(t)) / (t * t)
            # R = I + a K + b K^2, K the cross-product matrix of (x, y, z); the elements used below
            r02 = a * y + b * (x * z)
            r12 = -a * x + b * (y * z)
            r22 = 1.0 - b * (x * x + y * y)
            r20 = -a * y + b * (x * z)
            r21 = a * x + b * (y * z)
            tilt = math.atan2(math.hypot(r02, r12), r22)
            if tilt < _GIMBAL:
                rot = math.atan2(a * z + b * (x * y), 1.0 - b * (y * y + z * z))
                psi = 0.0
            elif tilt > math.pi - _GIMBAL:
                rot = math.atan2(-(a * z + b * (x * y)), 1.0 - b * (x * x + z * z))
                psi = 0.0
            else:
                rot = math.atan2(r12, r02)
                psi = math.atan2(r21, -r20)
            out[i, 0] = rot * _DEG
            out[i, 1] = tilt * _DEG
            out[i, 2] = psi * _DEG
        return out
