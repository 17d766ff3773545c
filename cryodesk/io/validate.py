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
    groups = pset.groups()
    has_shape = "blob/shape" in data.dtype.names
    shapes: dict[tuple[int, int], Path] = {}
    for k, (path, rows) in enumerate(groups.items()):
        if check_cancel is not None:
            check_cancel()
        if progress is not None:
            progress(k / max(len(groups), 1), f"checking {path.name}")
        try:
            require_regular(path, "particle stack")  # a FIFO would block read_header's open, uncancellable
            info = read_header(path)
        except DataError as exc:
            problems.append(f"{exc} (used by {len(rows)} particle(s), first at row {int(rows[0])})")
            continue
        infos[path] = info
        idx = data["blob/idx"][rows].astype(np.int64)
        bad = np.flatnonzero((idx < 0) | (idx >= info.nz))
        if bad.size:
            r = int(rows[bad[0]])
            problems.append(f"{path}: particle index {int(idx[bad[0]])} (row {r}) is out of range: "
                            f"the stack has {info.nz} images"
                            + (f"; {bad.size - 1} more rows out of range" if bad.size > 1 else ""))
        shapes.setdefault(info.shape, path)
        if has_shape:
            want = data["blob/shape"][rows].astype(np.int64)
            set_rows = np.flatnonzero(want.any(axis=1))
            wrong = set_rows[np.any(want[set_rows] != np.array(info.shape), axis=1)]
            if wrong.size:
                r = int(rows[wrong[0]])
                problems.append(f"{path}: images are {info.ny}x{info.nx} but the metadata says "
                                f"{tuple(int(v) for v in want[wrong[0]])} (row {r})")
    if len(shapes) > 1:
        desc = ", ".join(f"{s[0]}x{s[1]} in {p}" for s, p in shapes.items())
        problems.append(f"particle stacks have different image shapes: {desc}")
    if problems:
        more = f"\n... and {len(problems) - max_report} more problems" if len(problems) > max_report else ""
        raise DataError(f"{pset.meta_path}: {len(problems)} problem(s) with the particle stacks:\n  "
                        + "\n  ".join(problems[:max_report]) + more)
    return infos
