"""Particle orientations: CryoSPARC rotation vectors <-> RELION ZYZ Euler angles.

API summary
-----------
``rotvec_to_matrix(v) -> (N, 3, 3)``         Rodrigues' formula, float64
``matrix_to_rotvec(R) -> (N, 3)``            canonical vector (angle in [0, pi])
``euler_to_matrix(angles_deg) -> (N, 3, 3)`` ``Rz(rot) Ry(tilt) Rz(psi)``
``matrix_to_euler(R) -> (N, 3) degrees``     rot, psi in (-180, 180], tilt in [0, 180]
``rotvec_to_relion(v) -> (N, 3) degrees``    ``alignments3D/pose`` -> rlnAngleRot/Tilt/Psi
                                             (a large set in one compiled pass, :mod:`._pose_kernels`)
``rotvec_to_relion_numpy(v)``                its numpy reference
``relion_to_rotvec(angles_deg) -> (N, 3)``   the reverse

Conventions and derivation
--------------------------
All matrices here are *active* rotations of column vectors, ``Rz(a)`` turning
the x axis towards y by ``a``.

RELION (``src/euler.cpp``, and the same in XMIPP/SPIDER) builds from
``(rot, tilt, psi) = (phi, theta, psi)`` the matrix

    A = Rz(psi)^T  Ry(theta)^T  Rz(phi)^T  =  [Rz(phi) Ry(theta) Rz(psi)]^T

(its element ``A[0,2] = -cos(psi) sin(theta)``, ``A[2,0] = sin(theta) cos(phi)``,
``A[2,2] = cos(theta)``).  ``A`` takes reference coordinates into the frame of
the particle image ("orientations rotate the reference into the observation").

CryoSPARC stores ``alignments3D/pose`` as a rotation vector ``p`` (axis times
angle, radians).  Its matrix ``exp([p]x) = I + sin t K + (1 - cos t) K^2``
(``t = |p|``, ``K`` the cross-product matrix of ``p / t``) is the *transpose*
of RELION's ``A``: pyem's ``csparc2star`` writes ``rot2euler(expmap(p))``
where its ``expmap`` returns ``exp([p]x)^T`` and its ``rot2euler`` inverts
RELION's ``A``; cryoDRGN's ``parse_pose_csparc`` takes ``exp([p]x)^T`` for the
same matrix its ``parse_pose_star`` builds from RELION's angles.  Hence

    exp([p]x) = A^T = Rz(phi) Ry(theta) Rz(psi),

which is exactly SciPy's intrinsic ``Rotation.from_euler('ZYZ', [phi, theta,
psi])``; so ``Rotation.from_rotvec(p).as_euler('ZYZ', degrees=True)`` is the
reference the tests compare with.  Decomposing ``R = Rz(phi) Ry(theta) Rz(psi)``::

    R[2,2] = cos(theta)
    R[0,2] = cos(phi) sin(theta),   R[1,2] = sin(phi) sin(theta)
    R[2,0] = -sin(theta) cos(psi),  R[2,1] = sin(theta) sin(psi)

gives ``theta = atan2(hypot(R[0,2], R[1,2]), R[2,2])`` in [0, pi],
``phi = atan2(R[1,2], R[0,2])``, ``psi = atan2(R[2,1], -R[2,0])``.  At
``theta = 0`` only ``phi + psi`` is defined (``R = Rz(phi + psi)``) and at
``theta = pi`` only ``phi - psi`` (``R = Rz(phi - psi) Ry(pi)``): like SciPy we
then set ``psi = 0``.  The inverse goes through a unit quaternion (Shepperd's
method) and returns the rotation vector with angle in ``[0, pi]``: a stored
pose with ``|p| > pi`` comes back as the equivalent canonical vector.

Shifts need no sign change: ``alignments3D/shift`` (pixels of
``alignments3D/psize_A``) times that pixel size is ``rlnOriginX/YAngst`` (pyem
and cryoDRGN both copy the shift as the RELION origin).  A 2D alignment
(``alignments2D/pose``, one in-plane angle in radians) is ``rlnAnglePsi`` in
degrees: the 3D case with ``p = (0, 0, pose)``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["rotvec_to_matrix", "matrix_to_rotvec", "euler_to_matrix", "matrix_to_euler",
           "rotvec_to_relion", "rotvec_to_relion_numpy", "relion_to_rotvec"]

# below this |theta| (or pi - theta) the Euler decomposition is gimbal-locked
_GIMBAL = 1e-9
# from this many poses on, the compiled pass (numba loads on first use: not worth it for a few)
_KERNEL_MIN = 20000
_kernels = None  # cryodesk.io._pose_kernels once loaded; False without numba


def _as_n3(values) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"expected an (N, 3) array, got shape {np.shape(values)}")
    return arr


def rotvec_to_matrix(rotvec) -> np.ndarray:
    """Rotation matrices of rotation vectors (Rodrigues), ``(N, 3) -> (N, 3, 3)``."""
    v = _as_n3(rotvec)
    t = np.linalg.norm(v, axis=1)
    small = t < 1e-6
    safe = np.where(small, 1.0, t)
    # sin(t)/t and (1 - cos t)/t^2, with their series where t is tiny
    a = np.where(small, 1.0 - t**2 / 6.0, np.sin(safe) / safe)
    b = np.where(small, 0.5 - t**2 / 24.0, (1.0 - np.cos(safe)) / safe**2)
    x, y, z = v[:, 0], v[:, 1], v[:, 2]
    k = np.zeros((len(v), 3, 3))
    k[:, 0, 1], k[:, 0, 2], k[:, 1, 2] = -z, y, -x
    k[:, 1, 0], k[:, 2, 0], k[:, 2, 1] = z, -y, x
    return np.eye(3) + a[:, None, None] * k + b[:, None, None] * (k @ k)


def _quaternions(r: np.ndarray) -> np.ndarray:
    """Unit quaternions ``(w, x, y, z)`` with ``w >= 0`` (Shepperd: the largest component first)."""
    tr = np.trace(r, axis1=1, axis2=2)
    diag = np.stack([r[:, 0, 0], r[:, 1, 1], r[:, 2, 2]], axis=1)
    choice = np.argmax(np.concatenate([tr[:, None], diag], axis=1), axis=1)
    q = np.empty((len(r), 4))
    # each case's rows gathered once (rm), then read as views: the same arithmetic, a few passes fewer
    m = np.flatnonzero(choice == 0)
    rm = r[m]
    s = np.sqrt(np.maximum(1.0 + tr[m], 0.0)) * 2.0
    q[m] = np.stack([0.25 * s, (rm[:, 2, 1] - rm[:, 1, 2]) / s, (rm[:, 0, 2] - rm[:, 2, 0]) / s,
                     (rm[:, 1, 0] - rm[:, 0, 1]) / s], axis=1)
    for i in range(3):
        j, k = (i + 1) % 3, (i + 2) % 3
        m = np.flatnonzero(choice == i + 1)
        rm = r[m]
        s = np.sqrt(np.maximum(1.0 + rm[:, i, i] - rm[:, j, j] - rm[:, k, k], 0.0)) * 2.0
        qi = np.empty((len(m), 4))
        qi[:, 0] = (rm[:, k, j] - rm[:, j, k]) / s
        qi[:, 1 + i] = 0.25 * s
        qi[:, 1 + j] = (rm[:, j, i] + rm[:, i, j]) / s
        qi[:, 1 + k] = (rm[:, k, i] + rm[:, i, k]) / s
        q[m] = qi
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    return np.where(q[:, :1] < 0, -q, q)


def matrix_to_rotvec(matrices) -> np.ndarray:
    """Canonical rotation vectors (angle in ``[0, pi]``) of rotation matrices."""
    r = np.asarray(matrices, dtype=np.float64).reshape(-1, 3, 3)
    q = _quaternions(r)
    w, xyz = q[:, 0], q[:, 1:]
    n = np.linalg.norm(xyz, axis=1)
    angle = 2.0 * np.arctan2(n, w)
    # angle / n, with its limit 2 / w near the identity (w ~ 1 there)
    scale = np.where(n > 1e-12, angle / np.where(n > 1e-12, n, 1.0), 2.0 / np.maximum(w, 1e-300))
    return xyz * scale[:, None]


def _rz(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    m = np.zeros((len(a), 3, 3))
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1], m[:, 2, 2] = c, -s, s, c, 1.0
    return m


def _ry(a: np.ndarray) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    m = np.zeros((len(a), 3, 3))
    m[:, 0, 0], m[:, 0, 2], m[:, 2, 0], m[:, 2, 2], m[:, 1, 1] = c, s, -s, c, 1.0
    return m


def euler_to_matrix(angles_deg) -> np.ndarray:
    """``Rz(rot) Ry(tilt) Rz(psi)`` of RELION angles in degrees, ``(N, 3) -> (N, 3, 3)``."""
    e = np.radians(_as_n3(angles_deg))
    return _rz(e[:, 0]) @ _ry(e[:, 1]) @ _rz(e[:, 2])


def matrix_to_euler(matrices) -> np.ndarray:
    """RELION angles ``(rot, tilt, psi)`` in degrees of ``Rz(rot) Ry(tilt) Rz(psi)`` matrices."""
    r = np.asarray(matrices, dtype=np.float64).reshape(-1, 3, 3)
    sin_t = np.hypot(r[:, 0, 2], r[:, 1, 2])
    tilt = np.arctan2(sin_t, r[:, 2, 2])
    rot = np.arctan2(r[:, 1, 2], r[:, 0, 2])
    psi = np.arctan2(r[:, 2, 1], -r[:, 2, 0])
    top, bottom = tilt < _GIMBAL, tilt > np.pi - _GIMBAL
    rot = np.where(top, np.arctan2(r[:, 1, 0], r[:, 0, 0]), rot)
    rot = np.where(bottom, np.arctan2(-r[:, 1, 0], r[:, 1, 1]), rot)
    psi = np.where(top | bottom, 0.0, psi)
    return np.degrees(np.stack([rot, tilt, psi], axis=1))


def rotvec_to_relion(rotvec) -> np.ndarray:
    """``rlnAngleRot, rlnAngleTilt, rlnAnglePsi`` (degrees) of CryoSPARC poses.

    ``rotvec`` may be a strided float32 view (a ``.cs`` record's ``alignments3D/pose``):
    a large set is read in place by one compiled pass (the same formulas, to a few
    units in the last place), a small one by :func:`rotvec_to_relion_numpy`.
    """
    arr = np.asarray(rotvec)
    if arr.ndim == 2 and arr.shape[1] == 3 and len(arr) >= _KERNEL_MIN and arr.dtype in (np.float32, np.float64):
        k = _pose_kernel()
        if k is not None:
            return k(arr)
    return rotvec_to_relion_numpy(arr)


def warm() -> None:
    """Load the compiled pass now (numba's first load), for a caller that has a thread to spare."""
    k = _pose_kernel()
    if k is not None:
        rec = np.zeros(2, dtype=[("uid", "<u8"), ("pose", "<f4", (3,))])
        rec.flags.writeable = False  # (a mapped .cs record view: strided, read-only)
        k(rec["pose"])


def pose_kernels():
    """The compiled pose kernels (:mod:`cryodesk.io._pose_kernels`, both directions), numba imported with
    them on first use (not when the metadata modules are imported); None without numba."""
    global _kernels
    if _kernels is None:
        from cryodesk.io import _pose_kernels

        _kernels = _pose_kernels if _pose_kernels.HAVE_NUMBA else False
    return _kernels or None


def _pose_kernel():
    k = pose_kernels()
    return None if k is None else k.rotvec_to_relion


def rotvec_to_relion_numpy(rotvec) -> np.ndarray:
    """The numpy reference of :func:`rotvec_to_relion` (Rodrigues' matrices, then their ZYZ angles)."""
    return matrix_to_euler(rotvec_to_matrix(rotvec))


def relion_to_rotvec(angles_deg) -> np.ndarray:
    """CryoSPARC poses (rotation vectors, radians) of RELION angles in degrees."""
    return matrix_to_rotvec(euler_to_matrix(angles_deg))
