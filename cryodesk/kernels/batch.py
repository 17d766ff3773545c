"""A per-batch particle transform built from the kernels, for :mod:`cryodesk.io.gather`.

One object holds the per-particle checks (:meth:`ParticleTransform.inspect`,
run on the source pixels by the gather's reading thread) and the pixel
transform (``__call__``: Fourier crop, then float16 conversion, on the
writing thread).  Each step is optional; with none of them the batch passes
through untouched, so the restack stays bit-identical.
"""

from __future__ import annotations

import numpy as np

from .checks import ALL_ZERO, NONFINITE, particle_flags
from .float16 import to_float16
from .fourier import cropped_shape, fourier_crop

__all__ = ["ParticleTransform"]


class ParticleTransform:
    """Checks, crops and converts batches of particle images.

    Parameters
    ----------
    n_items : int
        Particles in the whole job (sizes :attr:`flags`).
    in_shape : (ny, nx)
        Shape of the source images.
    in_dtype : dtype
        Pixel type of the source images.
    new_shape : int or (my, mx), optional
        Fourier-crop to this box; ``None`` or the current box keeps the pixels.
    float16 : bool
        Write float16 (MRC mode 12) instead of the source type.
    check : bool
        Record :data:`~cryodesk.kernels.checks.NONFINITE` /
        :data:`~cryodesk.kernels.checks.ALL_ZERO` flags per particle.

    Attributes
    ----------
    out_shape : (my, mx)
    out_dtype : numpy.dtype
        Native byte order.
    flags : ndarray of uint8, shape (n_items,)
    """

    def __init__(self, n_items: int, in_shape: tuple[int, int], in_dtype, *,
                 new_shape: int | tuple[int, int] | None = None, float16: bool = False,
                 check: bool = True):
        self.in_shape = (int(in_shape[0]), int(in_shape[1]))
        self.in_dtype = np.dtype(in_dtype)
        self.out_shape = self.in_shape if new_shape is None else cropped_shape(self.in_shape, new_shape)
        self.crop = self.out_shape != self.in_shape
        self.float16 = bool(float16)
        self.check = bool(check)
        if self.float16:
            self.out_dtype = np.dtype(np.float16)
        elif self.crop:
            self.out_dtype = np.dtype(np.float32)
        else:
            self.out_dtype = self.in_dtype.newbyteorder("=")
        self.flags = np.zeros(int(n_items), dtype=np.uint8)

    @property
    def identity(self) -> bool:
        """True when the output pixels are exactly the input pixels."""
        return not self.crop and self.out_dtype == self.in_dtype

    def inspect(self, images: np.ndarray, first: int) -> None:
        """Record the check flags of ``images`` (items ``first..``).

        The gather calls this on its reading thread right after each read,
        while the pixels are still in the CPU cache, so the checks cost
        almost nothing; distinct calls touch distinct items.
        """
        if self.check:
            self.flags[first:first + len(images)] = particle_flags(images)

    def __call__(self, src: np.ndarray, dst: np.ndarray, first: int) -> np.ndarray:
        """Transform ``src`` (items ``first..``) and return the array to write.

        ``dst`` is a scratch array of ``(len(src),) + out_shape`` and
        :attr:`out_dtype`; the result is ``dst``, or ``src`` itself when the
        pixels are unchanged (no copy).
        """
        if self.identity:
            return src
        x = src
        if self.crop:
            x = fourier_crop(x, self.out_shape, out=None if self.float16 else dst)
        if self.float16 and x.dtype != np.float16:
            return to_float16(x, out=dst)
        if x is not dst:
            dst[...] = x  # plain type change (or byte swap), numpy's cast
        return dst

    def flagged(self, flag: int) -> np.ndarray:
        """Item numbers whose flags include ``flag``."""
        return np.flatnonzero(self.flags & np.uint8(flag))

    def summary(self) -> dict[str, int]:
        """Counts of flagged particles, for logs and job results."""
        return {"nonfinite": int(np.count_nonzero(self.flags & NONFINITE)),
                "all_zero": int(np.count_nonzero(self.flags & ALL_ZERO))}
