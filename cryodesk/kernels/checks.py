"""Per-particle sanity checks: non-finite pixels and all-zero images.

Both are signs of a broken extraction or a damaged stack that would
otherwise poison every later refinement.  The result is one flag byte per
image: :data:`NONFINITE` if any pixel is NaN or ±inf, :data:`ALL_ZERO` if
every pixel is (±)0.

The numba version reads the IEEE bit patterns with integer max/or
reductions, which vectorise (a float NaN test with early exit does not), so
the checks run at memory speed on the write path of a restack.
"""

from __future__ import annotations

import numpy as np

from ._numba import HAVE_NUMBA, jit
from .minmax import ALL_ZERO, NONFINITE
from .minmax import as_batch as _as_batch

__all__ = ["NONFINITE", "ALL_ZERO", "particle_flags", "particle_flags_numpy", "IMPLEMENTATION"]

# NONFINITE (bit 1: a NaN or infinite pixel) and ALL_ZERO (bit 2: every pixel (±)0) come from .minmax

# (exponent mask, magnitude mask, bit-pattern view) of the float types
_FLOAT_BITS = {
    np.dtype(np.float32): (0x7F800000, 0x7FFFFFFF, np.uint32),
    np.dtype(np.float16): (0x7C00, 0x7FFF, np.uint16),
}


def particle_flags_numpy(images: np.ndarray) -> np.ndarray:
    """Reference checks with numpy.

    Parameters
    ----------
    images : ndarray, shape (n, ny, nx) or (ny, nx)
        Any numeric dtype.

    Returns
    -------
    ndarray of uint8, shape (n,)
        Bitwise OR of :data:`NONFINITE` and :data:`ALL_ZERO` per image.
    """
    images = _as_batch(images)
    flags = np.zeros(images.shape[0], dtype=np.uint8)
    if images.dtype.kind in "fc":
        flags[~np.isfinite(images).all(axis=(1, 2))] |= NONFINITE
    flags[~images.any(axis=(1, 2))] |= ALL_ZERO
    return flags


if HAVE_NUMBA:

    @jit
    def _flags_bits(bits, exp_mask, mag_mask, out):  # pragma: no cover - compiled
        n = bits.shape[0]
        for k in range(n):
            img = bits[k]
            top = bits.dtype.type(0)  # max of the exponent field
            any_set = bits.dtype.type(0)  # OR of the magnitudes
            for i in range(img.size):
                v = img[i]
                top = max(top, v & exp_mask)
                any_set |= v & mag_mask
            f = np.uint8(0)
            if top == exp_mask:
                f |= np.uint8(1)
            if any_set == 0:
                f |= np.uint8(2)
            out[k] = f

    def particle_flags_numba(images: np.ndarray) -> np.ndarray:
        """Compiled checks for float32/float16; other dtypes use the numpy version."""
        images = _as_batch(images)
        spec = _FLOAT_BITS.get(images.dtype)
        if spec is None or not images.dtype.isnative:
            return particle_flags_numpy(images)
        exp_mask, mag_mask, view = spec
        flat = np.ascontiguousarray(images).reshape(images.shape[0], -1).view(view)
        out = np.empty(images.shape[0], dtype=np.uint8)
        _flags_bits(flat, view(exp_mask), view(mag_mask), out)
        return out

    __all__.append("particle_flags_numba")
    particle_flags = particle_flags_numba
    IMPLEMENTATION = "numba"
else:  # pragma: no cover - depends on the environment
    particle_flags = particle_flags_numpy
    IMPLEMENTATION = "numpy"
