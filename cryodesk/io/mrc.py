"""MRC particle stacks: validated reading, atomic writing, streaming writing.

API summary
-----------
``read_header(path) -> StackInfo``
    Parse and validate the 1024-byte header (+ extended header size); checks
    the file is long enough for every image.  Cheap: reads 1 KiB.
``StackInfo.offset(i) -> int`` / ``StackInfo.image_bytes``
    Byte offset and size of image ``i`` so other code can ``os.pread`` it.
``read_images(path, indices=None, info=None) -> ndarray``
    Images ``indices`` (0-based) as an ``(n, ny, nx)`` array in native byte order.
``read_image(path, i) -> ndarray``
    One image, ``(ny, nx)``.
``open_stack(path) -> mrcfile.mrcmemmap.MrcMemmap``
    Read-only, permissive memory map after validation (use as a context manager).
``write_stack(path, data, voxel_size=1.0, durable=False) -> StackInfo``
    Write a whole ``(n, ny, nx)`` stack (through :class:`StackWriter`).
``StackWriter(path, shape, dtype, voxel_size=1.0, durable=True)``
    Streaming writer: header once, ``append(images)``, header stats and ``nz``
    fixed at ``close()``; writes a hidden temp file and renames only on success
    (:class:`cryodesk.base.fsio.AtomicFile`).
``make_header(nx, ny, nz, mode, voxel_size, dmin=0, dmax=0, dmean=0, rms=0) -> bytes``
    A 1024-byte little-endian MRC2014 image-stack header.
``mode_for_dtype(dtype) -> int``

Supported modes: 0 (int8), 1 (int16), 2 (float32), 6 (uint16), 12 (float16).
Every problem becomes a :class:`cryodesk.base.errors.DataError` naming the file.
"""

from __future__ import annotations

import errno
import os
import stat
import warnings
from dataclasses import dataclass
from pathlib import Path

import mrcfile
import numpy as np
from mrcfile.dtypes import HEADER_DTYPE

from cryodesk.base.errors import DataError
from cryodesk.io._mrcstream import MODES, StackWriter, make_header, mode_for_dtype

__all__ = ["MODES", "HEADER_BYTES", "StackInfo", "read_header", "read_images", "read_image",
           "open_stack", "write_stack", "StackWriter", "make_header", "mode_for_dtype"]

HEADER_BYTES = 1024
# A stack dimension beyond this is certainly a corrupt (or byte-swapped) header.
_MAX_DIM = 1 << 24


@dataclass(frozen=True)
class StackInfo:
    """What the header of an MRC stack says, validated against the file size.

    Attributes
    ----------
    path : Path
    nx, ny, nz : int
        Image width, height and number of images.
    mode : int
        MRC data mode.
    dtype : numpy.dtype
        Pixel dtype *as stored* (byte order included).
    data_offset : int
        ``1024 + nsymbt``: where image 0 starts.
    voxel_size : float
        Å/pixel from ``cella.x / mx`` (0 if the header does not say).
    file_size : int
    file_id : (st_dev, st_ino), optional
        Which file the header was read from; the gather refuses to read
        images from a file of that name that is not this one (a stack
        replaced by a rename after its header was read).  ``None``: not known.
    """

    path: Path
    nx: int
    ny: int
    nz: int
    mode: int
    dtype: np.dtype
    data_offset: int
    voxel_size: float
    file_size: int
    file_id: tuple[int, int] | None = None

    @property
    def image_bytes(self) -> int:
        """Bytes per image."""
        return self.nx * self.ny * self.dtype.itemsize

    @property
    def shape(self) -> tuple[int, int]:
        """``(ny, nx)`` of one image."""
        return (self.ny, self.nx)

    def offset(self, i: int) -> int:
        """Byte offset of image ``i`` (0-based); DataError if out of range."""
        self.check_index(i)
        return self.data_offset + int(i) * self.image_bytes

    def check_index(self, i: int) -> None:
        if not 0 <= int(i) < self.nz:
            raise DataError(f"{self.path}: particle index {int(i)} is out of range "
                            f"(the stack has {self.nz} images, 0..{self.nz - 1})")


def _parse(raw: bytes, order: str) -> np.ndarray:
    return np.frombuffer(raw, dtype=HEADER_DTYPE.newbyteorder(order), count=1)[0]


def read_header(path: Path | str) -> StackInfo:
    """Parse and validate the header of the MRC stack at ``path``.

    Raises
    ------
    DataError
        Missing/unreadable file, corrupt header, unsupported mode, or a file
        shorter than the header says (truncated stack).
    """
    path = Path(path)
    try:
        # O_NONBLOCK: open() of a FIFO put where a stack was would wait for a writer for ever,
        # in C (no Ctrl-C, no cancel); it is refused below instead (no effect on a regular file)
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise DataError(f"{path}: particle stack not found") from None
    except OSError as exc:
        if exc.errno == errno.ENXIO:  # a socket, or a device without a driver
            raise DataError(f"{path}: the particle stack is not a regular file; cryodesk reads only "
                            f"regular files") from None
        raise DataError(f"{path}: cannot read particle stack ({exc.strerror or exc})") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DataError(f"{path}: the particle stack is not a regular file (a "
                            f"{'directory' if stat.S_ISDIR(st.st_mode) else 'FIFO, socket or device'}); "
                            f"cryodesk reads only regular files")
        size = st.st_size
        raw = b""
        while len(raw) < HEADER_BYTES:
            chunk = os.read(fd, HEADER_BYTES - len(raw))
            if not chunk:
                break
            raw += chunk
    except OSError as exc:
        raise DataError(f"{path}: cannot read particle stack ({exc.strerror or exc})") from None
    finally:
        os.close(fd)
    if len(raw) < HEADER_BYTES:
        raise DataError(f"{path}: not an MRC file or corrupt header "
                        f"(file has {len(raw)} bytes, an MRC header needs {HEADER_BYTES})")
    # The machine stamp is often missing (e.g. RELION-written stacks), so pick
    # the byte order in which the mode is plausible, little-endian first.
    for order in ("<", ">"):
        hdr = _parse(raw, order)
        if int(hdr["mode"]) in MODES and 0 < int(hdr["nx"]) < _MAX_DIM:
            break
    else:
        mode = int(_parse(raw, "<")["mode"])
        raise DataError(f"{path}: corrupt MRC header or unsupported mode {mode} "
                        f"(supported modes: {', '.join(map(str, MODES))})")
    nx, ny, nz = int(hdr["nx"]), int(hdr["ny"]), int(hdr["nz"])
    nsymbt = int(hdr["nsymbt"])
    if not (0 < nx < _MAX_DIM and 0 < ny < _MAX_DIM and 0 <= nz < (1 << 31)):
        raise DataError(f"{path}: corrupt MRC header (dimensions {nx}x{ny}x{nz})")
    if nsymbt < 0 or HEADER_BYTES + nsymbt > size:
        raise DataError(f"{path}: corrupt MRC header (extended header size {nsymbt} bytes, "
                        f"file has {size} bytes)")
    mode = int(hdr["mode"])
    dtype = MODES[mode].newbyteorder(order) if MODES[mode].itemsize > 1 else MODES[mode]
    mx = int(hdr["mx"])
    vs = float(hdr["cella"]["x"]) / mx if mx > 0 else 0.0
    info = StackInfo(path, nx, ny, nz, mode, dtype, HEADER_BYTES + nsymbt,
                     vs if np.isfinite(vs) and vs > 0 else 0.0, size, (st.st_dev, st.st_ino))
    need = info.data_offset + nz * info.image_bytes
    if size < need:
        complete = max(0, (size - info.data_offset) // info.image_bytes)
        raise DataError(f"{path}: truncated particle stack: the header says {nz} images "
                        f"({need} bytes) but the file has {size} bytes; images from "
                        f"index {complete} on are incomplete")
    return info


def read_images(path: Path | str, indices=None, info: StackInfo | None = None) -> np.ndarray:
    """Read images ``indices`` (0-based; all if None) as ``(n, ny, nx)``, native byte order.

    Parameters
    ----------
    path : path-like
    indices : array-like of int, optional
    info : StackInfo, optional
        A header already read with :func:`read_header` (saves re-reading it).
    """
    info = info or read_header(path)
    idx = np.arange(info.nz) if indices is None else np.asarray(indices, dtype=np.int64).ravel()
    bad = idx[(idx < 0) | (idx >= info.nz)]
    if bad.size:
        info.check_index(int(bad[0]))
    out = np.empty((idx.size, info.ny, info.nx), dtype=info.dtype.newbyteorder("="))
    if idx.size == 0:
        return out
    try:
        mm = np.memmap(info.path, dtype=info.dtype, mode="r", offset=info.data_offset,
                       shape=(info.nz, info.ny, info.nx))
        try:
            out[:] = mm[idx]
        finally:
            del mm
    except OSError as exc:
        raise DataError(f"{info.path}: cannot read particle stack ({exc.strerror or exc})") from None
    return out


def read_image(path: Path | str, i: int, info: StackInfo | None = None) -> np.ndarray:
    """Image ``i`` (0-based) of the stack at ``path`` as ``(ny, nx)``."""
    return read_images(path, [i], info)[0]


def open_stack(path: Path | str):
    """Validate, then memory-map the stack read-only with :func:`mrcfile.mmap`.

    Returns an ``MrcMemmap``; use it as a context manager.  ``.data`` is
    ``(nz, ny, nx)`` (or ``(ny, nx)`` for a single 2-D image).
    """
    info = read_header(path)
    with warnings.catch_warnings():
        # Headers without map ID / machine stamp are common and harmless here:
        # read_header has already validated what matters.
        warnings.simplefilter("ignore", RuntimeWarning)
        try:
            return mrcfile.mmap(str(info.path), mode="r", permissive=True)
        except (ValueError, OSError) as exc:
            raise DataError(f"{info.path}: cannot open particle stack ({exc})") from None


#: Bytes per append when :func:`write_stack` streams a big array (bounds the float64
#: temporaries of the header statistics).
_WRITE_CHUNK_BYTES = 64 << 20


def write_stack(path: Path | str, data: np.ndarray, voxel_size: float = 1.0,
                durable: bool = False) -> StackInfo:
    """Write ``data`` (``(n, ny, nx)`` or ``(ny, nx)``) as an MRC image stack.

    The same writer as :class:`StackWriter` (one header layout, one set of
    statistics), fed in chunks; the file appears under its final name only
    when complete.  ``durable`` fsyncs it before the rename.
    """
    path = Path(path)
    arr = np.asarray(data)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[0] == 0:
        raise DataError(f"{path}: a stack needs shape (n, ny, nx) with n >= 1, got {arr.shape}")
    step = max(1, _WRITE_CHUNK_BYTES // max(1, arr[0].nbytes))
    with StackWriter(path, arr.shape[1:], arr.dtype, voxel_size, durable=durable) as w:
        for i in range(0, arr.shape[0], step):
            w.append(arr[i:i + step])
    return read_header(path)
