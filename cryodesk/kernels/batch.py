"""A per-batch particle transform built from the kernels, for :mod:`cryodesk.io.gather`.

One object holds the per-particle checks (:meth:`ParticleTransform.inspect`,
run on the source pixels right after a batch is read) and the pixel
transform (``__call__``: Fourier crop, then float16 conversion), both on the
gather's worker threads: two threads may call them at once, on distinct
items (per-thread scratch, a lock for the shared clip count).  Each step is
optional; with none of them the batch passes through untouched, so the
restack stays bit-identical.

The checks are one sum of squares per image, which proves the usual clean
image clean (:mod:`.sumsq`), and the two exact reductions of :mod:`.minmax`
for any other image.  float16 is converted by the CPU's F16C instruction
(:mod:`.f16c`, a small C extension: no numba); where that is missing, by numpy
below :data:`F16_NUMBA_MIN_BYTES` of input and by numba above.  numba is
otherwise imported only for a crop, so a plain or float16 restack never pays
its ~120 MB of memory and ~1 s of loading.

A float16 conversion refuses pixels that float16 cannot hold (finite values
of magnitude 65520 or more would become ±inf): :class:`Float16Overflow`
names the particle, unless ``clip_f16`` asks to clip them to ±65504.
"""

from __future__ import annotations

import math
import os
import threading

import numpy as np

from cryodesk.base.errors import DataError

from .minmax import ALL_ZERO, F16_MAX, F16_OVERFLOW, NONFINITE, flags_from_min_max, float16_overflow, image_min_max
from .sumsq import f16_bound, fast_dtype, proves_clean_all, sum_squares_rows

__all__ = ["ParticleTransform", "Float16Overflow", "NONFINITE", "ALL_ZERO", "F16_NUMBA_MIN_BYTES",
           "float16_kernel_for"]

#: Smallest input (bytes of source pixels) for which a float16 restack without F16C loads the numba
#: kernel.  numpy's own cast (scalar code in this numpy build: ~0.5 GB/s here) needs no numba; the numba
#: kernel converts ~3x faster (~1.5 GB/s) but costs ~1 s and ~120 MB to load, which it wins back
#: only beyond about a gigabyte of input.
F16_NUMBA_MIN_BYTES = 1 << 30


def float16_kernel_for(nbytes: int) -> str:
    """``"f16c"``, ``"numba"`` or ``"numpy"``: the float16 conversion for ``nbytes`` of source pixels.

    F16C whenever this process has it (:data:`cryodesk.kernels.f16c.AVAILABLE`); else numba from
    :data:`F16_NUMBA_MIN_BYTES` up, numpy below.
    """
    from .f16c import AVAILABLE

    if AVAILABLE:
        return "f16c"
    return "numba" if int(nbytes) >= F16_NUMBA_MIN_BYTES else "numpy"


#: Batches of at least this many pixels are cast by two threads (numpy's cast releases the GIL).
CAST_SPLIT_MIN_PIXELS = 1 << 18


def _cast_into(x: np.ndarray, out: np.ndarray) -> None:
    with np.errstate(over="ignore"):  # overflow to inf is the documented result (checked before)
        out[...] = x


def _float16_numpy(x: np.ndarray, out: np.ndarray) -> np.ndarray:
    """numpy's cast, as :func:`cryodesk.kernels.float16.to_float16_numpy` (imported here without numba).

    numpy casts float32 to float16 in scalar code here (~0.5 GB/s a core), so a big batch is cast in
    two halves by two threads: element by element the same cast, so the same bits.
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.size < CAST_SPLIT_MIN_PIXELS or not out.flags.c_contiguous or (os.cpu_count() or 1) < 2:
        _cast_into(x, out)
        return out
    flat_x, flat_out = x.reshape(-1), out.reshape(-1)
    half = flat_x.size // 2
    failed: list[BaseException] = []

    def second() -> None:
        try:
            _cast_into(flat_x[half:], flat_out[half:])
        except BaseException as exc:  # pragma: no cover - re-raised below
            failed.append(exc)

    helper = threading.Thread(target=second, name="cryodesk-f16cast", daemon=True)
    helper.start()  # a thread per batch (~0.1 ms against ~4 ms of casting): none is left behind
    try:
        _cast_into(flat_x[:half], flat_out[:half])
    finally:
        helper.join()
    if failed:
        raise failed[0]
    return out


def _nan_bits_as_kernel(x: np.ndarray, out: np.ndarray) -> None:
    """Give the NaNs of ``out`` (numpy's cast of ``x``) the bits the numba kernel writes: quiet, with the
    top 10 payload bits (numpy keeps a signalling NaN signalling), so both kernels write the same file."""
    nan = np.isnan(out)
    if nan.any():
        a = np.asarray(x, dtype=np.float32)[nan].view(np.uint32)
        out[nan] = (((a >> 16) & 0x8000) | 0x7E00 | ((a >> 13) & 0x3FF)).astype(np.uint16).view(np.float16)


class Float16Overflow(DataError):
    """A particle has a finite pixel beyond the float16 range.

    Attributes
    ----------
    item : int
        The particle's number in the transform's items (the gather's plan order).
    value : float
        One of its pixel values that float16 cannot hold.
    """

    def __init__(self, item: int, value: float):
        super().__init__(f"particle {item} has a pixel value {value:g} beyond the float16 range "
                         f"(±{F16_MAX:g}): float16 output would turn it into infinity")
        self.item, self.value = int(item), float(value)


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
    clip_f16 : bool
        With ``float16``: clip finite pixels beyond ±65504 to ±65504 instead
        of raising :class:`Float16Overflow` (NaN and ±inf are kept).
    float16_kernel : {"f16c", "numba", "numpy"}, optional
        How float16 is computed (the same bits either way); default:
        :func:`float16_kernel_for` the whole input (F16C where the CPU and
        the build have it; else numpy below :data:`F16_NUMBA_MIN_BYTES`, so a
        small restack never loads numba); with a crop, F16C or numba.

    Attributes
    ----------
    out_shape : (my, mx)
    out_dtype : numpy.dtype
        Native byte order.
    flags : ndarray of uint8, shape (n_items,)
    """

    def __init__(self, n_items: int, in_shape: tuple[int, int], in_dtype, *,
                 new_shape: int | tuple[int, int] | None = None, float16: bool = False,
                 check: bool = True, clip_f16: bool = False, float16_kernel: str | None = None):
        self.in_shape = (int(in_shape[0]), int(in_shape[1]))
        self.in_dtype = np.dtype(in_dtype)
        if new_shape is None:
            self.out_shape = self.in_shape
        else:
            from .fourier import cropped_shape  # numba (and rocket-fft): only when asked for

            self.out_shape = cropped_shape(self.in_shape, new_shape)
        self.crop = self.out_shape != self.in_shape
        self.float16 = bool(float16)
        self.clip_f16 = bool(clip_f16)
        self.clipped = 0  # particles with pixels clipped to the float16 range
        self.check = bool(check)
        if self.float16:
            self.out_dtype = np.dtype(np.float16)
        elif self.crop:
            self.out_dtype = np.dtype(np.float32)
        else:
            self.out_dtype = self.in_dtype.newbyteorder("=")
        self.flags = np.zeros(int(n_items), dtype=np.uint8)
        if float16_kernel is None and not self.float16:
            float16_kernel = "numpy"  # (unused: no float16) without importing F16C's module and its settings
        elif float16_kernel is None:
            float16_kernel = float16_kernel_for(int(n_items) * self.in_shape[0] * self.in_shape[1]
                                                * self.in_dtype.itemsize)
            if self.crop and float16_kernel == "numpy":
                float16_kernel = "numba"  # the crop loads numba anyway
        if float16_kernel not in ("f16c", "numba", "numpy"):
            raise ValueError(f"float16_kernel must be 'f16c', 'numba' or 'numpy', got {float16_kernel!r}")
        if float16_kernel == "f16c":
            from .f16c import AVAILABLE

            if not AVAILABLE:
                raise ValueError("float16_kernel 'f16c': this CPU or build has no F16C conversion")
        self.float16_kernel = float16_kernel
        # float16 without a crop: items whose pixels inspect() found all finite and inside the float16
        # range (from the same minima and maxima as the checks), so __call__ need not look again
        self._f16_safe = (np.zeros(int(n_items), dtype=bool)
                          if self.float16 and not self.crop and self.in_dtype.kind in "fiu" else None)
        # One sum of squares per image decides the usual clean image (:mod:`.sumsq`); the exact
        # minimum and maximum only for the others.  Float16: only when the sum also proves the range.
        n_pix = self.in_shape[0] * self.in_shape[1]
        self._quick = fast_dtype(self.in_dtype) and n_pix > 0
        self._quick_max = math.inf if self._f16_safe is None else f16_bound(n_pix, self.in_dtype)
        # F16C: the range of what inspect() could not prove is checked on the converted pixels (a
        # finite pixel overflows exactly when it becomes ±inf), one pass over the float16 output
        # instead of a minimum and a maximum of the input; the other kernels look at the input first
        self._range_after = self.float16 and self.float16_kernel == "f16c"
        self._scratch = threading.local()  # per thread (the gather's workers call in parallel): .bits of that check
        self._lock = threading.Lock()  # for the counters shared by the threads (clipped)

    @property
    def identity(self) -> bool:
        """True when the output pixels are exactly the input pixels."""
        return not self.crop and self.out_dtype == self.in_dtype

    def inspect(self, images: np.ndarray, first: int) -> None:
        """Record the check flags of ``images`` (items ``first..``).

        The gather calls this on a worker thread once per batch, right after
        the batch is read, while the pixels are still in the CPU cache, so the
        checks cost almost nothing; distinct calls touch distinct items.
        """
        n = len(images)
        if not n or (not self.check and self._f16_safe is None):
            return
        if self._quick and images.flags.c_contiguous and self._quick_clean(images, first):
            return
        if n == 1:  # (a batch of one big image, a one-image read) two whole-array reductions, no arrays
            flat = images.reshape(-1)
            lo, hi = np.minimum.reduce(flat), np.maximum.reduce(flat)
            finite = flat.dtype.kind not in "fc" or bool(np.isfinite(lo) and np.isfinite(hi))
            if self.check:
                self.flags[first] = (0 if finite else int(NONFINITE)) | (
                    int(ALL_ZERO) if lo == 0 and hi == 0 else 0)
            if self._f16_safe is not None:
                self._f16_safe[first] = finite and -F16_OVERFLOW < lo and hi < F16_OVERFLOW
            return
        mn, mx = image_min_max(images)
        if self.check:
            self.flags[first:first + n] = flags_from_min_max(mn, mx)
        if self._f16_safe is not None:
            with np.errstate(invalid="ignore"):
                self._f16_safe[first:first + n] = (np.isfinite(mn) & np.isfinite(mx) & (mn > -F16_OVERFLOW)
                                                   & (mx < F16_OVERFLOW))

    def _quick_clean(self, images: np.ndarray, first: int) -> bool:
        """True (and recorded) if one sum of squares per image proves all of ``images`` clean.

        Float16: each image whose sum also proves the range is marked safe; with F16C the others
        are left to the check after the conversion (:meth:`__call__`), with the other kernels they
        send the batch to the exact look.
        """
        flat = images.reshape(len(images), -1)
        with np.errstate(over="ignore", invalid="ignore"):  # an infinite sum is an answer, not an error
            sums = sum_squares_rows(flat)
            if not proves_clean_all(sums):
                return False  # the exact look, for the whole batch (rare)
        n = len(images)
        if self._f16_safe is not None:
            safe = sums < self._quick_max
            if not self._range_after and not safe.all():
                return False  # the exact look decides the range
            self._f16_safe[first:first + n] = safe
        if self.check:
            self.flags[first:first + n] = 0
        return True

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
            from .fourier import fourier_crop

            x = fourier_crop(x, self.out_shape, out=None if self.float16 else dst)
        if self.float16 and x.dtype != np.float16:
            if self.float16_kernel == "f16c":
                from .f16c import to_float16_f16c  # NaNs as the numba kernel writes them

                if not self._seen_safe(first, len(x)):
                    out = to_float16_f16c(x, out=dst)
                    if not self._any_inf_or_nan(out):
                        return out  # no pixel became ±inf: none overflowed
                    fitted = self._fit_float16(x, first)  # the exact look: raises, or clips
                    if fitted is x:
                        return out  # (the infinities were the source's own)
                    x = fitted
                return to_float16_f16c(x, out=dst)
            x = self._fit_float16(x, first)
            if self.float16_kernel == "numpy":
                out = _float16_numpy(x, dst)
                if x.dtype.kind == "f" and not (self._f16_safe is not None and self._f16_safe[first:first + len(x)].all()):
                    _nan_bits_as_kernel(x, out)  # (items seen all finite have no NaN: no extra pass)
                return out
            from .float16 import to_float16

            return to_float16(x, out=dst)
        if x is not dst:
            dst[...] = x  # plain type change (or byte swap), numpy's cast
        return dst

    def _seen_safe(self, first: int, n: int) -> bool:
        """Whether inspect() saw every pixel of items ``first..first + n - 1`` finite and inside the float16 range."""
        return self._f16_safe is not None and bool(self._f16_safe[first:first + n].all())

    def _any_inf_or_nan(self, out: np.ndarray) -> bool:
        """Whether float16 ``out`` holds a ±inf or a NaN (exponent bits all set): one pass."""
        u = out.view(np.uint16).reshape(-1)
        bits = getattr(self._scratch, "bits", None)
        if bits is None or bits.size < u.size:
            bits = self._scratch.bits = np.empty(u.size, np.uint16)
        bits = bits[:u.size]
        np.bitwise_and(u, np.uint16(0x7FFF), out=bits)
        return bool(np.maximum.reduce(bits) >= 0x7C00)

    def _fit_float16(self, x: np.ndarray, first: int) -> np.ndarray:
        """``x``, or (``clip_f16``) a copy clipped to the float16 range; Float16Overflow if it overflows."""
        if self._seen_safe(first, len(x)):
            return x  # inspect() saw every pixel of these items finite and inside the range
        found = float16_overflow(x)
        if found is None:
            return x
        if not self.clip_f16:
            raise Float16Overflow(first + found[0], found[1])
        x = np.array(x, dtype=np.float32)
        finite = np.isfinite(x)
        over = finite & (np.abs(x) >= F16_OVERFLOW)
        n_clipped = int(over.reshape(len(x), -1).any(axis=1).sum())
        with self._lock:
            self.clipped += n_clipped
        np.clip(x, -F16_MAX, F16_MAX, out=x, where=finite)
        return x

    def flagged(self, flag: int) -> np.ndarray:
        """Item numbers whose flags include ``flag``."""
        return np.flatnonzero(self.flags & np.uint8(flag))

    def summary(self) -> dict[str, int]:
        """Counts of flagged particles, for logs and job results."""
        out = {"nonfinite": int(np.count_nonzero(self.flags & NONFINITE)),
               "all_zero": int(np.count_nonzero(self.flags & ALL_ZERO))}
        if self.clip_f16:
            out["clipped_f16"] = self.clipped
        return out
