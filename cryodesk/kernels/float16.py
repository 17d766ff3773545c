"""float32 → float16 conversion (MRC mode 2 → mode 12).

The result is the IEEE round-to-nearest-even float16 of each float32 value,
exactly what ``numpy.ndarray.astype(numpy.float16)`` gives: values beyond the
float16 range become ±inf, tiny values become subnormals or ±0.  NaN stays
NaN (the payload is not preserved bit for bit).

The numba version works on the bit patterns (numba has no float16 type) and
is several times faster than numpy's conversion, which matters because the
conversion runs on the write path of a restack at disk speed.
"""

from __future__ import annotations

import numpy as np

from ._numba import HAVE_NUMBA, jit
from .f16args import prepare as _prepare

__all__ = ["to_float16", "to_float16_numpy", "IMPLEMENTATION"]


def to_float16_numpy(src: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Reference conversion with numpy.

    Parameters
    ----------
    src : ndarray
        Any shape; converted to float32 first if needed.
    out : ndarray of float16, optional
        Destination (same shape, C-contiguous).

    Returns
    -------
    ndarray of float16
    """
    src, out = _prepare(src, out)
    with np.errstate(over="ignore"):  # overflow to inf is the documented result
        out[...] = src  # numpy's cast is IEEE round-to-nearest-even
    return out


if HAVE_NUMBA:

    @jit
    def _f32_bits_to_f16_bits(src, dst):  # pragma: no cover - compiled
        for i in range(src.size):
            f = np.uint32(src[i])
            sign = np.uint32((f >> np.uint32(16)) & np.uint32(0x8000))
            a = f & np.uint32(0x7FFFFFFF)
            if a >= np.uint32(0x7F800000):
                if a > np.uint32(0x7F800000):  # NaN: keep it a (quiet) NaN
                    h = np.uint32(0x7E00) | ((a >> np.uint32(13)) & np.uint32(0x3FF))
                else:
                    h = np.uint32(0x7C00)
            elif a >= np.uint32(0x47800000):  # >= 65536: beyond float16 range
                h = np.uint32(0x7C00)
            elif a >= np.uint32(0x38800000):  # normal float16 (>= 2**-14)
                # Rebias the exponent (127 -> 15) and round the 13 dropped
                # bits to nearest even; a carry may roll into the exponent
                # (and up to inf at 65520), which is the correct result.
                h = (a - np.uint32(0x38000000) + np.uint32(0x0FFF)
                     + ((a >> np.uint32(13)) & np.uint32(1))) >> np.uint32(13)
            elif a > np.uint32(0x33000000):  # subnormal float16 (> 2**-25)
                e = a >> np.uint32(23)
                m = (a & np.uint32(0x7FFFFF)) | np.uint32(0x800000)
                s = np.uint32(126) - e  # 14..24 bits to drop
                h = (m + (np.uint32(1) << (s - np.uint32(1))) - np.uint32(1)
                     + ((m >> s) & np.uint32(1))) >> s
            else:  # |x| <= 2**-25 rounds to zero (2**-25 itself is a tie -> even)
                h = np.uint32(0)
            dst[i] = np.uint16(sign | h)

    def to_float16_numba(src: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Compiled conversion; same contract as :func:`to_float16_numpy`."""
        src, out = _prepare(src, out)
        _f32_bits_to_f16_bits(src.reshape(-1).view(np.uint32), out.reshape(-1).view(np.uint16))
        return out

    __all__.append("to_float16_numba")
    to_float16 = to_float16_numba
    IMPLEMENTATION = "numba"
else:  # pragma: no cover - depends on the environment
    to_float16 = to_float16_numpy
    IMPLEMENTATION = "numpy"

