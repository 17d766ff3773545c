"""Per-image minimum and maximum, and what they tell: the restack's checks without numba.

Two SIMD reductions per image (numpy's ``minimum``/``maximum`` reduce at
10+ GB/s here and release the GIL) give everything the restack checks:

* **non-finite pixels** — NaN propagates through both reductions and ±inf
  is the maximum or the minimum, so an image has a NaN or an infinite pixel
  exactly when its minimum or maximum is not finite;
* **all-zero images** — minimum and maximum are both (±)0;
* **float16 overflow** — a finite pixel rounds to ±inf in float16 exactly
  when its magnitude is at least 65520 (:data:`F16_OVERFLOW`).

No numba here: a restack that neither crops nor converts to float16 never
imports it (numba and LLVM alone take ~150 MB of memory and ~0.4 s to load).
The reference for the flags is :func:`cryodesk.kernels.checks.particle_flags_numpy`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["as_batch", "NONFINITE", "ALL_ZERO", "F16_MAX", "F16_OVERFLOW", "image_min_max", "flags_from_min_max",
           "particle_flags_minmax", "float16_overflow"]

#: Flag bit: the image has a NaN or infinite pixel.
NONFINITE = np.uint8(1)
#: Flag bit: every pixel of the image is zero.
ALL_ZERO = np.uint8(2)
#: Largest finite float16.
F16_MAX = 65504.0
#: Smallest magnitude that rounds to infinity in float16 (round to nearest even).
F16_OVERFLOW = 65520.0


def image_min_max(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum and maximum of each image of ``images`` (n, ny, nx); NaN if it has one."""
    flat = np.asarray(images).reshape(len(images), -1)
    return np.minimum.reduce(flat, axis=1), np.maximum.reduce(flat, axis=1)


def flags_from_min_max(mn: np.ndarray, mx: np.ndarray) -> np.ndarray:
    """:data:`NONFINITE` / :data:`ALL_ZERO` flags from per-image minima and maxima."""
    flags = np.zeros(mn.shape, dtype=np.uint8)
    if mn.dtype.kind in "fc":
        flags[~(np.isfinite(mn) & np.isfinite(mx))] |= NONFINITE
    flags[(mn == 0) & (mx == 0)] |= ALL_ZERO
    return flags


def as_batch(images: np.ndarray) -> np.ndarray:
    """``images`` as an (n, ny, nx) array (one 2-D image becomes a batch of one)."""
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3:
        raise ValueError(f"expected images of shape (n, ny, nx), got {images.shape}")
    return images


def particle_flags_minmax(images: np.ndarray) -> np.ndarray:
    """The flags of :func:`cryodesk.kernels.checks.particle_flags_numpy`, from two reductions."""
    images = as_batch(images)
    if images.shape[0] == 0:
        return np.zeros(0, dtype=np.uint8)
    return flags_from_min_max(*image_min_max(images))


def float16_overflow(images: np.ndarray) -> tuple[int, float] | None:
    """``(image, value)`` of the first image with a finite pixel that float16 cannot hold, or None.

    ``value`` is one of its pixels that overflows.  NaN and ±inf are not
    overflows (they stay what they are, and the checks flag them).  Integer
    images overflow too (uint16 above 65519).
    """
    images = np.asarray(images)
    if images.dtype.kind not in "fiu" or images.dtype == np.float16 or len(images) == 0:
        return None
    mn, mx = image_min_max(images)
    with np.errstate(invalid="ignore"):
        over = (np.isfinite(mx) & (mx >= F16_OVERFLOW)) | (np.isfinite(mn) & (mn <= -F16_OVERFLOW))
    # NaN or inf in an image hides its other pixels from the reductions: look inside those (rare)
    for k in np.flatnonzero(~(np.isfinite(mn) & np.isfinite(mx))).tolist():
        if over[:k].any():
            break
        finite = images[k][np.isfinite(images[k])]
        if finite.size and np.abs(finite).max() >= F16_OVERFLOW:
            return k, float(finite[np.argmax(np.abs(finite))])
    if not over.any():
        return None
    k = int(np.flatnonzero(over)[0])
    return k, float(mx[k] if np.isfinite(mx[k]) and mx[k] >= F16_OVERFLOW else mn[k])
