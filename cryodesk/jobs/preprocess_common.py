"""Shared pieces of the built-in preprocessing jobs (no job types here).

* CryoSPARC-style ``.cs`` datasets: NumPy structured arrays whose field names
  contain ``/`` (``blob/path``, ``ctf/df1_A``), read and written by
  :mod:`cryodesk.io.cs`, so every job writes the same format.
* MRC access that turns every failure into a :class:`DataError` naming the file;
  every file appears under its final name only when complete (``base.fsio``).
* The CTF model and Fourier helpers, shared by the jobs and the demo simulator
  so both use one definition of defocus, astigmatism angle and sign.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any, Mapping

import mrcfile
import numpy as np
from mrcfile.utils import data_dtype_from_header

from cryodesk.base.errors import DataError
from cryodesk.base.fsio import AtomicFile
from cryodesk.core.context import JobContext
from cryodesk.io.cs import read_cs, write_cs


# -- identifiers ---------------------------------------------------------
def stable_uid(*parts: Any) -> int:
    """A 64-bit uid derived from ``parts``.

    CryoSPARC uses random uids; ours are hashes so that a cleared job re-run
    with the same params and inputs writes bit-identical datasets.
    """
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


# -- .cs datasets --------------------------------------------------------
def dataset_from_columns(columns: Mapping[str, Any]) -> np.ndarray:
    """Build a structured array from ``{field: values}`` (first axis = rows)."""
    arrays = {k: np.asarray(v) for k, v in columns.items()}
    n = {len(a) for a in arrays.values()}
    if len(n) > 1:
        raise ValueError(f"columns have different lengths: {sorted(n)}")
    dtype = []
    for name, a in arrays.items():
        base = a.dtype
        if base.kind == "U":  # .cs stores text as bytes
            a = arrays[name] = np.char.encode(a, "utf-8")
            base = a.dtype
        dtype.append((name, base, a.shape[1:]) if a.ndim > 1 else (name, base))
    out = np.zeros(n.pop() if n else 0, dtype=dtype)
    for name, a in arrays.items():
        out[name] = a
    return out


def with_columns(data: np.ndarray, columns: Mapping[str, Any]) -> np.ndarray:
    """``data`` with fields added or replaced by ``columns``, field order kept."""
    merged: dict[str, Any] = {name: data[name] for name in data.dtype.names}
    for name, values in columns.items():
        merged[name] = np.broadcast_to(np.asarray(values), (len(data),) + np.shape(values)[1:]) \
            if np.ndim(values) else np.full(len(data), values)
    return dataset_from_columns(merged)


def write_dataset(path: Path, data: np.ndarray) -> Path:
    """Write a ``.cs`` dataset (:func:`cryodesk.io.cs.write_cs`), making its directory."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_cs(path, data)


def input_dataset(ctx: JobContext, slot: str) -> np.ndarray:
    """The ``.cs`` dataset of the single connection of input ``slot``."""
    return read_cs(ctx.input(slot).path("dataset"))


def text(value: Any) -> str:
    """A ``.cs`` bytes field as ``str``."""
    return value.decode() if isinstance(value, (bytes, np.bytes_)) else str(value)


# -- MRC -----------------------------------------------------------------
def check_mrc(path: Path) -> tuple[tuple[int, ...], float]:
    """Validate an MRC file from its header and size; return ``(shape zyx, psize_A)``.

    Reading only the header keeps import cheap on terabyte datasets, but a
    truncated file must still be caught here rather than in a later job.
    """
    if not path.exists():
        raise DataError(f"raw file not found: {path}")
    try:
        with mrcfile.open(path, header_only=True, permissive=False) as mrc:
            h = mrc.header
            shape = (int(h.nz), int(h.ny), int(h.nx))
            dtype = data_dtype_from_header(h)
            expected = 1024 + int(h.nsymbt) + int(np.prod(shape)) * dtype.itemsize
            psize = float(mrc.voxel_size.x)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"not a readable MRC file: {path} ({exc})") from exc
    actual = os.path.getsize(path)
    if min(shape) <= 0 or actual < expected:
        raise DataError(f"corrupt MRC file: {path} (header says {expected} bytes, file has {actual})")
    return shape, psize


def read_mrc(path: Path) -> np.ndarray:
    """Read MRC data as float32; any failure is a :class:`DataError` naming ``path``."""
    if not path.exists():
        raise DataError(f"file not found: {path}")
    try:
        with mrcfile.open(path, permissive=False) as mrc:
            return np.asarray(mrc.data, dtype=np.float32)
    except (OSError, ValueError, EOFError) as exc:
        raise DataError(f"cannot read MRC file {path}: {exc}") from exc


def write_mrc(path: Path, data: np.ndarray, psize_A: float, stack: bool = False) -> Path:
    """Write float32 ``data``; ``stack`` marks a 3-D array as an image stack."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mrcfile opens by name: it writes the temp file, which is renamed once mrcfile closed it.
    with AtomicFile(path, durable=False) as out, mrcfile.new(str(out.tmp), overwrite=True) as mrc:
        mrc.set_data(np.ascontiguousarray(data, dtype=np.float32))
        if stack:
            mrc.set_image_stack()
        mrc.voxel_size = float(psize_A)
        # mrcfile's default label carries a timestamp; a fixed one keeps re-runs bit-identical.
        mrc.header.label[0] = b"cryodesk built-in job".ljust(80)
        mrc.header.nlabl = 1
    return path


# -- Fourier helpers and the CTF model -----------------------------------
def freq_grid(shape: tuple[int, int], psize_A: float) -> tuple[np.ndarray, np.ndarray]:
    """Spatial frequencies (1/Å) ``(ky, kx)`` of an unshifted full FFT."""
    ky = np.fft.fftfreq(shape[0], d=psize_A)[:, None]
    kx = np.fft.fftfreq(shape[1], d=psize_A)[None, :]
    return np.broadcast_to(ky, shape), np.broadcast_to(kx, shape)


def fourier_shift(image: np.ndarray, dy: float, dx: float) -> np.ndarray:
    """Shift ``image`` by ``(dy, dx)`` pixels (content moves +dx right), periodic."""
    ky = np.fft.fftfreq(image.shape[-2])[:, None]
    kx = np.fft.rfftfreq(image.shape[-1])[None, :]
    ramp = np.exp(-2j * np.pi * (ky * dy + kx * dx))
    return np.fft.irfft2(np.fft.rfft2(image) * ramp, s=image.shape[-2:]).astype(np.float32)


def electron_wavelength_A(accel_kv: float) -> float:
    """Relativistic electron wavelength in Å."""
    v = accel_kv * 1e3
    return 12.2643247 / np.sqrt(v * (1 + 0.978466e-6 * v))


def ctf_2d(ky: np.ndarray, kx: np.ndarray, df1_A: float, df2_A: float, angle_rad: float,
           accel_kv: float = 300.0, cs_mm: float = 2.7, amp_contrast: float = 0.1,
           phase_shift_rad: float = 0.0, bfactor: float = 0.0) -> np.ndarray:
    """The contrast transfer function on a frequency grid (CTFFIND/RELION convention).

    ``df1_A``/``df2_A`` are underfocus along ``angle_rad`` (from +x, counter-
    clockwise) and perpendicular to it; the CTF is ``-A`` at zero frequency, so
    density appears dark, as in a real micrograph.
    """
    lam = electron_wavelength_A(accel_kv)
    k2 = ky * ky + kx * kx
    phi = np.arctan2(ky, kx)
    df = 0.5 * (df1_A + df2_A + (df1_A - df2_A) * np.cos(2 * (phi - angle_rad)))
    chi = np.pi * lam * df * k2 - 0.5 * np.pi * cs_mm * 1e7 * lam**3 * k2 * k2 + phase_shift_rad
    w = np.arcsin(np.clip(amp_contrast, 0.0, 1.0))
    ctf = -np.sin(chi + w)
    if bfactor:
        ctf = ctf * np.exp(-bfactor * k2 / 4.0)
    return ctf
