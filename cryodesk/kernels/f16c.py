"""float32 → float16 with the CPU's conversion instruction (x86 F16C), without numba.

numpy's portable wheels convert float32 to float16 in scalar code (~0.6 GB/s a
core here); numba's kernel (:mod:`.float16`) is ~5× faster but importing numba
and loading a kernel costs ~120 MB of memory and ~1 s in every process.  The
F16C instruction ``vcvtps2ph`` converts 8 values at once: the small C extension
``cryodesk.kernels._f16c`` (``cryodesk/kernels/_f16c.c``, built at install when a
C compiler is there) reaches ~11 GB/s here and loads nothing.

The bits are numpy's ``astype(numpy.float16)`` (round to nearest even, ±inf beyond
the range, subnormals) for every value but NaN, which becomes the quiet NaN with
the top 10 payload bits that the numba kernel writes too.

:data:`AVAILABLE` is False without the extension (no compiler at install), on a
CPU without F16C, or with the setting ``disable_f16c`` (``CRYODESK_DISABLE_F16C=1``) (to compare, or to test the
fallbacks); callers then use numba or numpy (:func:`cryodesk.kernels.batch.float16_kernel_for`).
"""

from __future__ import annotations

import logging

import numpy as np

from cryodesk.base import settings
from cryodesk.base.errors import UsageError

from .f16args import prepare

__all__ = ["AVAILABLE", "to_float16_f16c"]

try:
    from . import _f16c
except ImportError:  # pragma: no cover - built without a C compiler
    _f16c = None


def _disabled() -> bool:
    try:
        return bool(settings.resolve("disable_f16c"))
    except UsageError as exc:  # read at import: a typo in the variable must not break float16 output
        logging.getLogger(__name__).warning("%s; F16C stays enabled", exc)
        return False


#: True when this process can convert with F16C.
AVAILABLE = bool(_f16c is not None and _f16c.available and not _disabled())


def to_float16_f16c(src: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """Convert with F16C; same contract as :func:`cryodesk.kernels.float16.to_float16_numpy`.

    Parameters
    ----------
    src : ndarray
        Any shape; converted to C-contiguous float32 first if needed.
    out : ndarray of float16, optional
        Destination (same shape, C-contiguous).

    Raises
    ------
    RuntimeError
        If :data:`AVAILABLE` is False.
    """
    if not AVAILABLE:
        raise RuntimeError("the F16C float16 conversion is not available in this process")
    src, out = prepare(src, out)
    if src.size:
        _f16c.convert(src.reshape(-1), out.reshape(-1))
    return out
