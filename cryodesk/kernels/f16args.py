"""The arguments of every float32 → float16 conversion (numpy, numba, F16C), checked one way.

``prepare(src, out) -> (src, out)``: ``src`` as C-contiguous float32 of the same
shape (0-d stays 0-d), ``out`` a new float16 array or the caller's, which must be
float16, C-contiguous, writable and of that shape (ValueError otherwise).  When
``out`` may share memory with ``src``, ``src`` is copied first, so a conversion
that writes ``out`` front to back never reads a value it has already overwritten.
"""

from __future__ import annotations

import numpy as np

__all__ = ["prepare"]


def prepare(src, out: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    src = np.asarray(src, dtype=np.float32, order="C")
    if out is None:
        return src, np.empty(src.shape, dtype=np.float16)
    if (not isinstance(out, np.ndarray) or out.dtype != np.float16 or out.shape != src.shape
            or not out.flags.c_contiguous):
        raise ValueError(f"out must be a C-contiguous float16 array of shape {src.shape}")
    if not out.flags.writeable:
        raise ValueError("out is read-only: the float16 conversion needs a writable array")
    if np.may_share_memory(src, out):  # (bounds only: at worst one copy too many)
        src = src.copy()
    return src, out
