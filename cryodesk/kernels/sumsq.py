"""The restack's checks in one pass per image: a sum of squares that proves an image clean.

The checks (:mod:`.minmax`) need two reductions per image, a minimum and a
maximum: ~90 µs per 256² float32 image here, more than reading it from the
page cache.  One dot product of the image with itself (BLAS, ~30 µs) decides
the common case, with no arithmetic doubt:

* ``s = Σ x²`` is **finite only if every pixel is finite**: a NaN makes it NaN,
  an infinity makes it +inf, and squares are never negative, so no ``inf - inf``
  can turn it finite again;
* ``s > 0`` **only if some pixel is not zero** (a sum of non-negative terms is
  at least its largest term; a square is 0 only for 0, or for a pixel so tiny
  that its square underflows — then ``s`` may be 0 and the image is looked at
  exactly);
* **float16 range**: every ``|x| < 65520`` when ``s``, with room for its own
  rounding, is below ``65520²``.

So a finite, positive ``s`` means the image passes both checks, and any other
``s`` (a NaN or infinite pixel, an all-zero image — or a clean image whose
squares overflow or underflow) sends the image to the exact two reductions.
The flags are always exactly those of the reference
(:func:`cryodesk.kernels.checks.particle_flags_numpy`); only the time differs.
No numba: a plain restack never imports it.

:func:`sum_squares_rows` sums a whole batch of float32 images in the small C
extension (``cryodesk/kernels/_f16c.c``, ``sumsq``: AVX, no GIL) where it is
built: a BLAS dot per image runs on OpenBLAS's own threads, which then spin
for a while on the two cores the gather's workers need (about a tenth of a
hot restack's CPU time here).  Elsewhere, and for float64, one dot per image.
"""

from __future__ import annotations

import math

import numpy as np

from .minmax import F16_OVERFLOW

__all__ = ["fast_dtype", "sum_squares", "sum_squares_rows", "proves_clean", "proves_clean_all", "f16_bound"]

try:
    from . import _f16c
except ImportError:  # pragma: no cover - built without a C compiler
    _f16c = None
# (an extension built from an older _f16c.c, as a development tree keeps it, has convert() only)
_sumsq = getattr(_f16c, "sumsq", None)

_FAST = (np.dtype(np.float32), np.dtype(np.float64))


def fast_dtype(dtype) -> bool:
    """True for the pixel types the sum of squares decides (native float32/float64).

    Integer pixels cannot be NaN and their squares wrap around; float16 sums
    overflow at once; a byte-swapped array would be copied first.
    """
    return np.dtype(dtype) in _FAST


def sum_squares(flat: np.ndarray) -> float:
    """``Σ x²`` of one image given as a contiguous 1-D array (a BLAS dot: one pass)."""
    return float(flat @ flat)


def sum_squares_rows(flat: np.ndarray) -> np.ndarray:
    """``Σ x²`` of each row of a C-contiguous 2-D array of images (float64 results).

    float32 rows by the C extension's ``sumsq`` (float32 accumulation, like
    the dot) where it is built; otherwise, and for float64, one dot per row.
    """
    n = len(flat)
    fn = _sumsq if _f16c is not None else None
    if fn is not None and flat.dtype == np.float32 and flat.flags.c_contiguous and flat.shape[1] > 0:
        out = np.empty(n, np.float64)
        fn(flat.reshape(-1), flat.shape[1], out)
        return out
    return np.array([sum_squares(row) for row in flat], dtype=np.float64)


def proves_clean(s: float) -> bool:
    """Whether a sum of squares ``s`` proves its image finite and not all zero."""
    return 0.0 < s < math.inf  # False for NaN


def proves_clean_all(sums: np.ndarray) -> bool:
    """Whether every sum of squares in ``sums`` proves its image clean (:func:`proves_clean`)."""
    with np.errstate(invalid="ignore"):
        return bool(((sums > 0.0) & (sums < math.inf)).all())  # False for a NaN


def f16_bound(n_pixels: int, dtype) -> float:
    """The largest sum of squares of ``n_pixels`` that still proves every ``|x| < 65520``.

    ``65520²`` less room for the rounding of the sum: a float sum of ``n``
    non-negative terms is within ``n·u`` of the exact one (``u`` the unit
    roundoff, 2⁻²⁴ for float32); twice that is allowed.  0 (nothing is proved)
    when the bound would be loose.
    """
    u = 2.0 ** -24 if np.dtype(dtype) == np.float32 else 2.0 ** -53
    err = 2.0 * (int(n_pixels) + 1) * u
    if err >= 0.5:
        return 0.0
    return F16_OVERFLOW * F16_OVERFLOW * (1.0 - err)
