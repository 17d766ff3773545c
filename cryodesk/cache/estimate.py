"""How much SSD a particle set needs: the guide's formula, or exactly from its files."""

from __future__ import annotations

import os

import numpy as np

from cryodesk.base.errors import DataError, UsageError
from cryodesk.core.units import decimal_bytes, human_bytes
from cryodesk.io.cs import ParticleSet

from .subset import subset_spec

__all__ = ["describe_formula", "estimate_formula", "estimate_particles"]


#: the guide's formula: Dataset Size = (4·box_size² + nsymbt + header_length)·num_particles, with
#: nsymbt = 128 and header_length = 1024 in its examples (1,000,000 of box 256 -> 263,296,000,000 bytes)
GUIDE_NSYMBT = 128
GUIDE_HEADER = 1024


def estimate_formula(n: int, box: int, *, nsymbt: int = GUIDE_NSYMBT, header: int = GUIDE_HEADER,
                     bytes_per_pixel: int = 4) -> dict:
    """``(bytes_per_pixel·box² + nsymbt + header)·N`` — the SSD caching guide's dataset size.

    The defaults are the guide's (``nsymbt`` 128, ``header`` 1024), so its
    examples come out exactly: 1,000,000 particles of box 256 are
    263,296,000,000 bytes (263.3 GB), 2,000,000 of box 432 1,495,296,000,000
    bytes (1.5 TB).  ``decimal`` and ``binary`` are the same number in units.
    """
    if n < 0 or box <= 0 or nsymbt < 0 or header < 0 or bytes_per_pixel <= 0:
        raise UsageError("estimate needs N >= 0, box > 0 and non-negative header sizes")
    total = int((bytes_per_pixel * box * box + nsymbt + header) * n)
    return {"method": "formula", "particles": int(n), "box": int(box), "nsymbt": int(nsymbt),
            "header": int(header), "bytes_per_pixel": int(bytes_per_pixel), "bytes": total,
            "decimal": decimal_bytes(total), "binary": human_bytes(total)}


def describe_formula(res: dict) -> str:
    """The one line the CLI and the GUI's calculator print: exact bytes, decimal units first, binary beside."""
    return (f"{res['particles']:,} particles of box {res['box']}: {res['bytes']:,} bytes "
            f"({res['decimal']}; {res['binary']}) = ({res['bytes_per_pixel']}·{res['box']}² + {res['nsymbt']} + "
            f"{res['header']}) × {res['particles']:,}")


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

