"""Check that a particle dataset's stacks exist and agree with it.

API summary
-----------
``validate_stacks(pset, check_cancel=None, progress=None, max_report=20) -> dict[Path, StackInfo]``
    Read every referenced stack's header once; check every ``blob/idx`` is in
    range and all images share one shape (and match ``blob/shape`` when set).
    All problems are collected and raised together as one DataError.
``read_stack_headers(paths) -> list[StackInfo | None]``
    :func:`~cryodesk.io.mrc.read_header` of many stacks at once: one open
    (non-blocking, ``fstat``: regular files only), one 1 KiB ``pread`` each,
    the headers parsed and checked together; ``None`` where a stack is not
    certainly good (``read_header`` then says what is wrong).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Callable

import numpy as np
from mrcfile.dtypes import HEADER_DTYPE

from cryodesk.base.errors import DataError
from cryodesk.base.nofollow import require_regular
from cryodesk.io.cs import ParticleSet
from cryodesk.io.mrc import _MAX_DIM, HEADER_BYTES, MODES, StackInfo, read_header

__all__ = ["validate_stacks", "read_stack_headers"]

_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC  # as require_regular: a FIFO never blocks the open


def read_stack_headers(paths: list[Path], check_cancel: Callable[[], None] | None = None,
                       progress: Callable[[float, str], None] | None = None) -> list[StackInfo | None]:
    """The :class:`StackInfo` of each stack, as :func:`read_header` gives it, or None.

    None: the stack is missing, not a regular file, unreadable, or its header
    fails one of ``read_header``'s checks; call ``require_regular`` and
    ``read_header`` on it for the error.  Every check of ``read_header`` is
    made here on all headers at once (tests hold the two to the same answers).
    """
    n = len(paths)
    raw = np.zeros((n, HEADER_BYTES), dtype=np.uint8)
    size = np.zeros(n, dtype=np.int64)
    got = np.zeros(n, dtype=bool)
    ids: list[tuple[int, int] | None] = [None] * n
    for k, path in enumerate(paths):
        if k % 256 == 0:
            if check_cancel is not None:
                check_cancel()
            if progress is not None:
                progress(k / max(n, 1), f"checking {path.name}")
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except OSError:
            continue
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                continue
            head = os.pread(fd, HEADER_BYTES, 0)
        except OSError:
            continue
        finally:
            os.close(fd)
        if len(head) == HEADER_BYTES:
            raw[k] = np.frombuffer(head, dtype=np.uint8)
            size[k] = st.st_size
            ids[k] = (st.st_dev, st.st_ino)
            got[k] = True
    modes = np.array(sorted(MODES), dtype=np.int64)
    out: list[StackInfo | None] = [None] * n
    if not n:
        return out
    little = np.frombuffer(raw, dtype=HEADER_DTYPE.newbyteorder("<"))
    big = np.frombuffer(raw, dtype=HEADER_DTYPE.newbyteorder(">"))

    def plausible(h):  # read_header's choice of byte order: the mode is known and nx sane
        return np.isin(h["mode"].astype(np.int64), modes) & (h["nx"] > 0) & (h["nx"] < _MAX_DIM)

    is_little = plausible(little)
    swapped = ~is_little & plausible(big)
    usable = got & (is_little | swapped)
    fields = {}
    for name in ("nx", "ny", "nz", "nsymbt", "mode", "mx"):
        fields[name] = np.where(is_little, little[name].astype(np.int64), big[name].astype(np.int64))
    cella_x = np.where(is_little, little["cella"]["x"].astype(np.float64), big["cella"]["x"].astype(np.float64))
    nx, ny, nz, nsymbt, mode, mx = (fields[k] for k in ("nx", "ny", "nz", "nsymbt", "mode", "mx"))
    usable &= (nx > 0) & (nx < _MAX_DIM) & (ny > 0) & (ny < _MAX_DIM) & (nz >= 0) & (nz < (1 << 31))
    usable &= (nsymbt >= 0) & (HEADER_BYTES + nsymbt <= size)
    itemsize = np.zeros(n, dtype=np.int64)
    for m, dt in MODES.items():
        itemsize[mode == m] = dt.itemsize
    # not truncated; a product past int64 (a corrupt header) is left to read_header's Python integers
    huge = nz.astype(np.float64) * nx * ny * itemsize + nsymbt >= 2.0**62
    usable &= ~huge & (size >= HEADER_BYTES + nsymbt + np.where(huge, 0, nz) * nx * ny * itemsize)
    with np.errstate(divide="ignore", invalid="ignore"):
        vs = np.where(mx > 0, cella_x / np.where(mx > 0, mx, 1), 0.0)
    vs = np.where(np.isfinite(vs) & (vs > 0), vs, 0.0)
    dtypes = {(m, o): (dt.newbyteorder(o) if dt.itemsize > 1 else dt) for m, dt in MODES.items() for o in "<>"}
    for k in np.flatnonzero(usable).tolist():
        m = int(mode[k])
        out[k] = StackInfo(paths[k], int(nx[k]), int(ny[k]), int(nz[k]), m, dtypes[m, "<" if is_little[k] else ">"],
                           HEADER_BYTES + int(nsymbt[k]), float(vs[k]), int(size[k]), ids[k])
    return out


def _packed_shapes(data: np.ndarray) -> np.ndarray | None:
    """``blob/shape`` of each row as one uint64 (``ny | nx << 32``) when it is CryoSPARC's ``<u4 (2,)``, else None."""
    dt, offset = data.dtype.fields["blob/shape"][:2]
    if dt != np.dtype(("<u4", (2,))) or data.ndim != 1:
        return None
    # the 8 bytes of the field read as one little-endian integer, in place (no per-row copy)
    view = np.dtype({"names": ["s"], "formats": ["<u8"], "offsets": [offset], "itemsize": data.dtype.itemsize})
    try:
        return data.view(view)["s"]
    except (ValueError, TypeError):  # a non-contiguous selection of rows: the general way
        return None


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
    fast = read_stack_headers(paths, check_cancel, progress)
    for k, path in enumerate(paths):
        try:
            info = fast[k]
            if info is None:  # what is wrong with it, in read_header's words
                if check_cancel is not None:
                    check_cancel()
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
        col = data["blob/shape"]
        packed = _packed_shapes(data)
        if packed is not None:  # CryoSPARC's 2 x uint32: one 64-bit compare a row against its stack's shape
            stack_packed = (shape_of[:, 1].astype(np.uint64) << np.uint64(32)) | shape_of[:, 0].astype(np.uint64)
            wrong = row_ok & (packed != 0) & (packed != stack_packed[inv])
        else:
            want = col.reshape(len(data), -1).astype(np.int64)
            wrong = (row_ok & want.any(axis=1) & np.any(want != shape_of[inv], axis=1)) if want.shape[1] == 2 \
                else None
        if wrong is not None and wrong.any():
            rows = np.flatnonzero(wrong)
            _, first_bad = np.unique(inv[rows], return_index=True)
            for r in rows[np.sort(first_bad)].tolist():
                k = int(inv[r])
                said = tuple(int(v) for v in np.asarray(col[r]).reshape(-1))
                problems.append(f"{paths[k]}: images are {int(shape_of[k][0])}x{int(shape_of[k][1])} but the "
                                f"metadata says {said} (row {r})")
    if len(shapes) > 1:
        desc = ", ".join(f"{s[0]}x{s[1]} in {p}" for s, p in shapes.items())
        problems.append(f"particle stacks have different image shapes: {desc}")
    if problems:
        more = f"\n... and {len(problems) - max_report} more problems" if len(problems) > max_report else ""
        raise DataError(f"{pset.meta_path}: {len(problems)} problem(s) with the particle stacks:\n  "
                        + "\n  ".join(problems[:max_report]) + more)
    return infos
