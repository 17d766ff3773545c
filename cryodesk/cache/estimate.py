"""How much SSD a particle set needs: the guide's formula, or exactly from its files."""

from __future__ import annotations

import os

import numpy as np

from cryodesk.base.errors import DataError, UsageError
from cryodesk.io.cs import ParticleSet

from .subset import subset_spec

__all__ = ["estimate_formula", "estimate_particles"]


def estimate_formula(n: int, box: int, *, nsymbt: int = 0, header: int = 1024,
                     bytes_per_pixel: int = 4) -> dict:
    """``(bytes_per_pixel·box² + nsymbt + header)·N`` — the SSD caching guide's estimate.

    Per particle it counts a float32 image plus one header and extended
    header, i.e. one stack per particle: an upper bound for real stacks.
    """
    if n < 0 or box <= 0 or nsymbt < 0 or header < 0 or bytes_per_pixel <= 0:
        raise UsageError("estimate needs N >= 0, box > 0 and non-negative header sizes")
    total = (bytes_per_pixel * box * box + nsymbt + header) * n
    return {"method": "formula", "particles": int(n), "box": int(box), "nsymbt": int(nsymbt),
            "header": int(header), "bytes_per_pixel": int(bytes_per_pixel), "bytes": int(total)}


def estimate_particles(pset: ParticleSet, threshold: float = 0.5, per_file: int = 10000) -> dict:
    """Exact bytes to cache ``pset``: whole stacks, and as a packed subset; which one ``auto`` picks."""
    paths = pset.stack_paths()
    if not paths:
        raise DataError(f"{pset.meta_path}: the particle set is empty")
    real = np.asarray([os.path.realpath(p) for p in paths])
    files = sorted(set(real.tolist()))
    whole = 0
    for f in files:
        try:
            whole += os.stat(f).st_size
        except OSError as exc:
            raise DataError(f"{f}: {exc.strerror or exc}") from None
    out = {"method": "exact", "particles": len(pset), "stacks": len(files), "whole_stacks_bytes": whole}
    try:
        spec = subset_spec(real, np.asarray(pset.data["blob/idx"], dtype=np.int64), per_file)
    except DataError as exc:
        out.update(subset_bytes=None, fraction=1.0, auto_mode="files", bytes=whole, note=str(exc))
        return out
    frac = spec.bytes / max(whole, 1)
    mode = "subset" if frac <= threshold else "files"
    out.update(subset_bytes=spec.bytes, unique_particles=spec.n, fraction=round(frac, 4),
               threshold=threshold, auto_mode=mode, bytes=spec.bytes if mode == "subset" else whole)
    return out

