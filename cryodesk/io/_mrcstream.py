"""Streaming MRC stack writer (re-exported as :class:`cryodesk.io.mrc.StackWriter`).

The header is written once with ``nz = 0``, images are appended as they come,
and :meth:`StackWriter.close` rewrites the header with the final ``nz`` and
min/max/mean/rms.  The file is an :class:`~cryodesk.base.fsio.AtomicFile`:
written under a hidden temp name and renamed only on a successful close, so a
crash or exception leaves no half-written stack under the final name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from mrcfile.constants import IMAGE_STACK_SPACEGROUP
from mrcfile.dtypes import HEADER_DTYPE

from cryodesk.base.errors import DataError
from cryodesk.base.fsio import AtomicFile

#: MRC mode -> little-endian numpy dtype of one pixel.
MODES: dict[int, np.dtype] = {
    0: np.dtype("i1"), 1: np.dtype("<i2"), 2: np.dtype("<f4"), 6: np.dtype("<u2"), 12: np.dtype("<f2"),
}


def mode_for_dtype(dtype) -> int:
    """The MRC mode that stores ``dtype``; DataError for unsupported types."""
    dt = np.dtype(dtype).newbyteorder("<") if np.dtype(dtype).itemsize > 1 else np.dtype(dtype)
    for mode, mdt in MODES.items():
        if mdt == dt:
            return mode
    raise DataError(f"cannot store {np.dtype(dtype)} in an MRC file (supported: int8, int16, "
                    f"uint16, float16, float32)")

_LE_STAMP = (0x44, 0x44, 0x00, 0x00)


def make_header(nx: int, ny: int, nz: int, mode: int, voxel_size: float,
                dmin=0.0, dmax=0.0, dmean=0.0, rms=0.0) -> bytes:
    """A little-endian MRC2014 image-stack header as 1024 bytes."""
    h = np.zeros((), dtype=HEADER_DTYPE)
    h["nx"], h["ny"], h["nz"], h["mode"] = nx, ny, nz, mode
    h["mx"], h["my"], h["mz"] = nx, ny, 1
    h["cella"] = (nx * voxel_size, ny * voxel_size, voxel_size)
    h["cellb"] = (90.0, 90.0, 90.0)
    h["mapc"], h["mapr"], h["maps"] = 1, 2, 3
    h["dmin"], h["dmax"], h["dmean"], h["rms"] = dmin, dmax, dmean, rms
    h["ispg"] = IMAGE_STACK_SPACEGROUP
    h["exttyp"] = b"MRCO"
    h["nversion"] = 20140
    h["map"] = b"MAP "
    h["machst"] = _LE_STAMP
    h["nlabl"] = 1
    h["label"][0] = b"cryodesk".ljust(80)
    return h.tobytes()


class StackWriter:
    """Write an MRC stack image by image.

    Parameters
    ----------
    path : path-like
        Final file name.
    shape : (ny, nx)
        Shape of every image.
    dtype : dtype
        Pixel type (int8, int16, uint16, float16, float32).
    voxel_size : float
        Å/pixel recorded in the header.
    durable : bool
        ``fsync`` before the rename (see :class:`~cryodesk.base.fsio.AtomicFile`).

    Examples
    --------
    >>> with StackWriter(out, (64, 64), "float32", 1.3) as w:   # doctest: +SKIP
    ...     for batch in batches:
    ...         w.append(batch)
    """

    def __init__(self, path: Path | str, shape: tuple[int, int], dtype="float32",
                 voxel_size: float = 1.0, durable: bool = True):
        self._out: AtomicFile | None = None  # set last: __del__ may run after a failed __init__
        self.path = Path(path)
        self.ny, self.nx = (int(s) for s in shape)
        if self.nx <= 0 or self.ny <= 0:
            raise DataError(f"{self.path}: invalid image shape {shape}")
        self.mode = mode_for_dtype(dtype)
        self.dtype = np.dtype(dtype).newbyteorder("<") if np.dtype(dtype).itemsize > 1 else np.dtype(dtype)
        self.voxel_size = float(voxel_size)
        self.count = 0
        # running statistics (Chan et al. parallel mean/M2) in float64
        self._min, self._max, self._mean, self._m2 = np.inf, -np.inf, 0.0, 0.0
        out = AtomicFile(self.path, durable=durable)
        try:
            out.fh.write(make_header(self.nx, self.ny, 0, self.mode, self.voxel_size))
        except BaseException:
            out.abort()
            raise
        self._out = out

    def append(self, images: np.ndarray) -> None:
        """Append one image ``(ny, nx)`` or a batch ``(n, ny, nx)``."""
        if self._out is None:
            raise DataError(f"{self.path}: writer is closed")
        arr = np.asarray(images)
        if arr.ndim == 2:
            arr = arr[None]
        if arr.ndim != 3 or arr.shape[1:] != (self.ny, self.nx):
            raise DataError(f"{self.path}: expected images of shape {(self.ny, self.nx)}, "
                            f"got {arr.shape}")
        n = arr.shape[0]
        if n == 0:
            return
        data = np.ascontiguousarray(arr, dtype=self.dtype)
        try:
            self._out.fh.write(memoryview(data).cast("B"))  # no copy of the batch
        except OSError as exc:
            self.abort()  # what was written cannot be trusted: drop it now
            raise self._write_error(exc) from None
        f = data.astype(np.float64, copy=False)
        bmean = float(f.mean())
        bm2 = float(((f - bmean) ** 2).sum())
        na, nb = self.count * self.nx * self.ny, f.size
        delta = bmean - self._mean
        tot = na + nb
        self._mean += delta * nb / tot
        self._m2 += bm2 + delta * delta * na * nb / tot
        self._min = min(self._min, float(f.min()))
        self._max = max(self._max, float(f.max()))
        self.count += n

    def close(self) -> Path:
        """Finalise the header and rename to the final name; returns the path."""
        if self._out is None:
            return self.path
        out, self._out = self._out, None
        try:
            if self.count == 0:
                raise DataError(f"{self.path}: no images were written")
            npix = self.count * self.nx * self.ny
            rms = (self._m2 / npix) ** 0.5
            out.fh.seek(0)
            out.fh.write(make_header(self.nx, self.ny, self.count, self.mode, self.voxel_size,
                                     self._min, self._max, self._mean, rms))
            return out.commit()
        except OSError as exc:  # the buffered tail, the fsync or the rename failed (a full disk)
            out.abort()
            raise self._write_error(exc) from None
        except BaseException:
            out.abort()
            raise

    def _write_error(self, exc: OSError) -> DataError:
        return DataError(f"{self.path}: cannot write the stack ({exc.strerror or exc}); "
                         f"the partial file was removed")

    def abort(self) -> None:
        """Discard everything written so far."""
        if self._out is not None:
            out, self._out = self._out, None
            out.abort()

    def __enter__(self) -> "StackWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self):  # an abandoned writer must not leave a temp file behind
        try:
            self.abort()
        except Exception:
            pass
