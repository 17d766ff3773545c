"""Compiled pose kernels, both directions, imported on first use (numba loads with them).

**CryoSPARC -> RELION** (:func:`rotvec_to_relion`): the compiled twin of
:func:`cryodesk.io.poses.rotvec_to_relion_numpy`, one pass, no temporaries; used by
:mod:`cryodesk.io.poses` for a large set of poses.  The same formulas as the numpy reference (Rodrigues'
matrix with the same series near the identity, then the same ``atan2``
decomposition and gimbal-lock rule), evaluated per row on the eight matrix
elements the decomposition reads, straight from the ``(N, 3)`` pose array (a
strided view of a ``.cs`` record is fine; float32 values are widened exactly).
``K @ K`` is written in closed form (``v v^T - |v|^2 I``) and libm's ``atan2``
is not numpy's, so values agree with the reference to a few units in the last
place, not bit for bit (tests/io/test_poses.py holds both to each other and to
SciPy).

**RELION -> CryoSPARC** (``_quaternions``, ``_scale`` and their helpers): the kernels of
:mod:`cryodesk.io.poses_from_star`, the reference's operations in its order (tests/io/test_poses_from_star.py).
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


# -- RELION angles -> CryoSPARC poses (cryodesk.io.poses_from_star) ------------------------------

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
