"""Check that a particle dataset's stacks exist and agree with it.

API summary
-----------
``validate_stacks(pset, check_cancel=None, progress=None, max_report=20) -> dict[Path, StackInfo]``
    Read every referenced stack's header once; check every ``blob/idx`` is in
    range and all images share one shape (and match ``blob/shape`` when set).
    All problems are collected and raised together as one DataError.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np

from cryodesk.base.errors import DataError
from cryodesk.base.nofollow import require_regular
from cryodesk.io.cs import ParticleSet
from cryodesk.io.mrc import StackInfo, read_header

__all__ = ["validate_stacks"]


def validate_stacks(pset: ParticleSet, check_cancel: Callable[[], None] | None = None,
                    progress: Callable[[float, str], None] | None = None,
                    max_report: int = 20) -> dict[Path, StackInfo]:
    """Validate every stack ``pset`` refers to; returns ``{path: StackInfo}``.

    Raises
    ------
    DataError
        Listing (up to ``max_report``) problems: missing/corrupt/truncated
        stacks, particle indices out of range, disagreeing image shapes.
    """
    problems: list[str] = []
    infos: dict[Path, StackInfo] = {}
    data = pset.data
    paths, inv = pset.stack_index()
    n_paths = len(paths)
    # one header read per stack; every per-particle check below is one vectorised pass
    nz = np.zeros(n_paths, dtype=np.int64)
    ok = np.zeros(n_paths, dtype=bool)
    shape_of = np.zeros((n_paths, 2), dtype=np.int64)
    counts = np.bincount(inv, minlength=n_paths)
    first_row = np.full(n_paths, -1, dtype=np.int64)
    if len(inv):
        first_row[inv[::-1]] = np.arange(len(inv) - 1, -1, -1)
    shapes: dict[tuple[int, int], Path] = {}
    for k, path in enumerate(paths):
        if check_cancel is not None and k % 64 == 0:
            check_cancel()
        if progress is not None and k % 64 == 0:
            progress(k / max(n_paths, 1), f"checking {path.name}")
        try:
            require_regular(path, "particle stack")  # a FIFO would block read_header's open, uncancellable
            info = read_header(path)
        except DataError as exc:
            problems.append(f"{exc} (used by {int(counts[k])} particle(s), first at row {int(first_row[k])})")
            continue
        infos[path] = info
        nz[k], ok[k], shape_of[k] = info.nz, True, info.shape
        shapes.setdefault(info.shape, path)
    row_ok = ok[inv]
    idx = data["blob/idx"]
    idx = idx.astype(np.int64) if idx.dtype.kind != "i" or idx.dtype.itemsize != 8 else idx
    out_of_range = row_ok & ((idx < 0) | (idx >= nz[inv]))
    if out_of_range.any():
        rows = np.flatnonzero(out_of_range)
        per_stack = np.bincount(inv[rows], minlength=n_paths)
        _, first_bad = np.unique(inv[rows], return_index=True)
        for r in rows[np.sort(first_bad)].tolist():
            k = int(inv[r])
            more = int(per_stack[k]) - 1
            problems.append(f"{paths[k]}: particle index {int(idx[r])} (row {r}) is out of range: "
                            f"the stack has {int(nz[k])} images"
                            + (f"; {more} more rows out of range" if more else ""))
    if "blob/shape" in data.dtype.names:
        want = data["blob/shape"].reshape(len(data), -1).astype(np.int64)
        if want.shape[1] == 2:
            wrong = row_ok & want.any(axis=1) & np.any(want != shape_of[inv], axis=1)
            if wrong.any():
                rows = np.flatnonzero(wrong)
                _, first_bad = np.unique(inv[rows], return_index=True)
                for r in rows[np.sort(first_bad)].tolist():
                    k = int(inv[r])
                    problems.append(f"{paths[k]}: images are {int(shape_of[k][0])}x{int(shape_of[k][1])} but the "
                                    f"metadata says {tuple(int(v) for v in want[r])} (row {r})")
    if len(shapes) > 1:
        desc = ", ".join(f"{s[0]}x{s[1]} in {p}" for s, p in shapes.items())
        problems.append(f"particle stacks have different image shapes: {desc}")
    if problems:
        more = f"\n... and {len(problems) - max_report} more problems" if len(problems) > max_report else ""
        raise DataError(f"{pset.meta_path}: {len(problems)} problem(s) with the particle stacks:\n  "
                        + "\n  ".join(problems[:max_report]) + more)
    return infos
