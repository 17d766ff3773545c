"""Fourier cropping: downsample a batch of images to a smaller box.

An image of ``ny × nx`` pixels is transformed with a real FFT, only the
frequencies that a ``my × mx`` image can hold are kept (the layout of
``numpy.fft.fftfreq(my)`` along y, ``rfftfreq(mx)`` along x) and it is
transformed back.  The result is scaled by ``(my·mx)/(ny·nx)`` so that pixel
values (the mean in particular) are preserved; the pixel size grows by
``nx/mx``.  This is the band-limited downsampling that CryoSPARC's and
RELION's "downsample" do, without the aliasing of real-space binning.

The numba version needs ``numpy.fft`` inside compiled code, which the
``rocket-fft`` package provides; without it the numpy version is used.  It
works image by image in float32 without the large temporaries of the numpy
version and releases the GIL, so it runs beside the I/O thread.
"""

from __future__ import annotations

import numpy as np

from ._numba import have_rocket_fft, jit

__all__ = ["fourier_crop", "fourier_crop_numpy", "cropped_shape", "IMPLEMENTATION"]


def cropped_shape(shape: tuple[int, int], new_shape: int | tuple[int, int]) -> tuple[int, int]:
    """Validate and normalise the target ``(my, mx)`` for images of ``shape``."""
    my, mx = (new_shape, new_shape) if np.isscalar(new_shape) else tuple(new_shape)
    my, mx = int(my), int(mx)
    ny, nx = (int(s) for s in shape)
    if not (0 < my <= ny and 0 < mx <= nx):
        raise ValueError(f"cannot Fourier-crop images of {ny}x{nx} to {my}x{mx}: "
                         f"the new box must be between 1 and the current box")
    return my, mx


def _prepare(images, new_shape, out):
    images = np.asarray(images)
    if images.ndim == 2:
        images = images[None]
    if images.ndim != 3:
        raise ValueError(f"expected images of shape (n, ny, nx), got {images.shape}")
    my, mx = cropped_shape(images.shape[1:], new_shape)
    images = np.ascontiguousarray(images, dtype=np.float32)
    if out is None:
        out = np.empty((images.shape[0], my, mx), dtype=np.float32)
    if out.shape != (images.shape[0], my, mx) or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {(images.shape[0], my, mx)}")
    return images, my, mx, out


def fourier_crop_numpy(images: np.ndarray, new_shape: int | tuple[int, int],
                       out: np.ndarray | None = None) -> np.ndarray:
    """Reference Fourier crop with ``numpy.fft``.

    Parameters
    ----------
    images : ndarray, shape (n, ny, nx) or (ny, nx)
        Converted to float32 first.
    new_shape : int or (my, mx)
        The new box (``my <= ny``, ``mx <= nx``).
    out : ndarray of float32, shape (n, my, mx), optional

    Returns
    -------
    ndarray of float32, shape (n, my, mx)
    """
    images, my, mx, out = _prepare(images, new_shape, out)
    ny, nx = images.shape[1:]
    pos, neg = (my + 1) // 2, my // 2  # rows kept: frequencies 0..pos-1 and -neg..-1
    spec = np.fft.rfft2(images)
    kept = np.concatenate([spec[:, :pos, : mx // 2 + 1], spec[:, ny - neg:, : mx // 2 + 1]], axis=1)
    out[...] = np.fft.irfft2(kept, s=(my, mx)) * ((my * mx) / (ny * nx))
    return out


if have_rocket_fft():

    @jit
    def _crop_numba(images, out):  # pragma: no cover - compiled
        n, ny, nx = images.shape
        my, mx = out.shape[1], out.shape[2]
        pos, neg, cx = (my + 1) // 2, my // 2, mx // 2 + 1
        scale = np.float32((my * mx) / (ny * nx))
        kept = np.empty((my, cx), dtype=np.complex64)
        for k in range(n):
            spec = np.fft.rfft2(images[k])
            kept[:pos, :] = spec[:pos, :cx]
            kept[pos:, :] = spec[ny - neg:, :cx]
            back = np.fft.irfft2(kept, s=(my, mx))
            for i in range(my):
                for j in range(mx):
                    out[k, i, j] = np.float32(back[i, j] * scale)

    def fourier_crop_numba(images: np.ndarray, new_shape: int | tuple[int, int],
                           out: np.ndarray | None = None) -> np.ndarray:
        """Compiled Fourier crop; same contract as :func:`fourier_crop_numpy`."""
        images, my, mx, out = _prepare(images, new_shape, out)
        _crop_numba(images, out)
        return out

    __all__.append("fourier_crop_numba")
    fourier_crop = fourier_crop_numba
    IMPLEMENTATION = "numba"
else:  # pragma: no cover - depends on the environment
    fourier_crop = fourier_crop_numpy
    IMPLEMENTATION = "numpy"
