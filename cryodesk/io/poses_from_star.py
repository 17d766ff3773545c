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
the reference and to SciPy).

API summary
-----------
``rotvec_from_relion(rot, tilt, psi) -> ndarray[float32] (N, 3)``   degrees -> ``alignments3D/pose``
``rotvec_from_relion_numpy(rot, tilt, psi)``                       its reference (:mod:`cryodesk.io.poses`)
"""

from __future__ import annotations

import numpy as np

from cryodesk.base.jit import HAVE_NUMBA, jit
from cryodesk.io.poses import relion_to_rotvec

__all__ = ["rotvec_from_relion", "rotvec_from_relion_numpy"]

#: below this many rows the reference is as fast (and no kernel is loaded)
MIN_ROWS = 4096


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
    if not HAVE_NUMBA or n < MIN_ROWS:
        return rotvec_from_relion_numpy(rot, tilt, psi)
    trig = []
    for a in (rot, tilt, psi):
        r = np.radians(a)
        trig += [np.cos(r), np.sin(r)]
    q = np.empty((5, n))  # x, y, z, w of the unit quaternion (w >= 0) and |(x, y, z)|
    _quaternions(*trig, q)
    angle = 2.0 * np.arctan2(q[4], q[3])
    out = np.empty((n, 3), dtype=np.float32)
    _scale(q, angle, out)
    return out


if HAVE_NUMBA:
    from numba.core import cgutils, types
    from numba.core.extending import intrinsic

    @intrinsic
    def _fma(typingctx, a, b, c):
        """``a * b + c`` rounded once (LLVM's ``fma``: the instruction, or its exact emulation)."""
        sig = types.float64(types.float64, types.float64, types.float64)

        def codegen(context, builder, signature, args):
            import llvmlite.ir as ir

            d = ir.DoubleType()
            fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(d, [d, d, d]), "llvm.fma.f64")
            return builder.call(fn, args)

        return sig, codegen

    @jit
    def _dot3(a0, a1, a2, b0, b1, b2):
        return _fma(a2, b2, _fma(a1, b1, a0 * b0))

    @jit
    def _quaternions(c0, s0, c1, s1, c2, s2, q):
        """Rows of ``q`` (5, N): the normalised quaternion of ``Rz(rot) Ry(tilt) Rz(psi)`` and ``|xyz|``.

        As ``poses._quaternions(euler_to_matrix(...))``: the same matrices
        (zeros included in the products, as BLAS multiplies them), the same
        case choice (the first largest of trace and diagonal) and arithmetic.
        """
        a = np.zeros((3, 3))
        b = np.zeros((3, 3))
        d = np.zeros((3, 3))
        ab = np.zeros((3, 3))
        r = np.zeros((3, 3))
        v = np.zeros(4)
        a[2, 2] = 1.0
        b[1, 1] = 1.0
        d[2, 2] = 1.0
        for i in range(len(c0)):
            a[0, 0], a[0, 1], a[1, 0], a[1, 1] = c0[i], -s0[i], s0[i], c0[i]
            b[0, 0], b[0, 2], b[2, 0], b[2, 2] = c1[i], s1[i], -s1[i], c1[i]
            d[0, 0], d[0, 1], d[1, 0], d[1, 1] = c2[i], -s2[i], s2[i], c2[i]
            for p in range(3):
                for t in range(3):
                    ab[p, t] = _dot3(a[p, 0], a[p, 1], a[p, 2], b[0, t], b[1, t], b[2, t])
            for p in range(3):
                for t in range(3):
                    r[p, t] = _dot3(ab[p, 0], ab[p, 1], ab[p, 2], d[0, t], d[1, t], d[2, t])
            tr = (r[0, 0] + r[1, 1]) + r[2, 2]
            best = tr
            case = 0
            for m in range(3):
                if r[m, m] > best:
                    best = r[m, m]
                    case = m + 1
            if case == 0:
                s = np.sqrt(max(1.0 + tr, 0.0)) * 2.0
                v[0] = 0.25 * s
                v[1] = (r[2, 1] - r[1, 2]) / s
                v[2] = (r[0, 2] - r[2, 0]) / s
                v[3] = (r[1, 0] - r[0, 1]) / s
            else:
                e = case - 1
                j = (e + 1) % 3
                k = (e + 2) % 3
                s = np.sqrt(max(1.0 + r[e, e] - r[j, j] - r[k, k], 0.0)) * 2.0
                v[0] = (r[k, j] - r[j, k]) / s
                v[1 + e] = 0.25 * s
                v[1 + j] = (r[j, e] + r[e, j]) / s
                v[1 + k] = (r[k, e] + r[e, k]) / s
            norm = np.sqrt(((v[0] * v[0] + v[1] * v[1]) + v[2] * v[2]) + v[3] * v[3])
            w, x, y, z = v[0] / norm, v[1] / norm, v[2] / norm, v[3] / norm
            if w < 0:
                w, x, y, z = -w, -x, -y, -z
            q[0, i], q[1, i], q[2, i], q[3, i] = x, y, z, w
            q[4, i] = np.sqrt((x * x + y * y) + z * z)

    @jit
    def _scale(q, angle, out):
        """``out = xyz * (angle / |xyz|)`` (``2 / w`` near the identity), as float32: ``matrix_to_rotvec``'s end."""
        for i in range(q.shape[1]):
            n = q[4, i]
            scale = angle[i] / n if n > 1e-12 else 2.0 / max(q[3, i], 1e-300)
            out[i, 0] = q[0, i] * scale
            out[i, 1] = q[1, i] * scale
            out[i, 2] = q[2, i] * scale
