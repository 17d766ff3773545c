"""The plan of a gather (the planning side of :mod:`cryodesk.io.gather`): every read and write decided first.

:func:`plan_gather` (source paths and image indices; the headers read and
checked once per source) and :func:`plan_sources` (headers given) cut the items
into output stacks and into batches of about ``batch_bytes``, each batch a list
of coalesced reads sorted by source and offset (:class:`Batch` ``runs``).
:class:`GatherPlan` holds it all; :func:`cryodesk.io.gather.execute_plan` carries
it out.  :class:`SourceError` names the particle a source cannot deliver.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable

import numpy as np

from cryodesk.base.errors import DataError
from cryodesk.io.mrc import HEADER_BYTES, StackInfo, mode_for_dtype, read_header

__all__ = ["SourceError", "Batch", "OutputStack", "GatherPlan", "plan_gather", "plan_sources", "BATCH_BYTES"]

_MiB = 1 << 20
#: Default batch size: large enough that a batch is a few big reads and writes, small enough
#: that the buffers in flight stay a few tens of MB whatever the input (bigger gains nothing here).
BATCH_BYTES = 4 * _MiB


class SourceError(DataError):
    """A source stack cannot deliver a particle.

    Attributes
    ----------
    path : Path
        The source stack.
    index : int
        0-based image index in that stack.
    item : int
        Position of the particle in the gather's item list.
    """

    def __init__(self, message: str, path: Path, index: int, item: int):
        super().__init__(message)
        self.path, self.index, self.item = Path(path), int(index), int(item)


@dataclass(frozen=True)
class OutputStack:
    """One output stack: items ``first .. first + count - 1``, in order.

    ``voxel_size``: Å/pixel for this stack's header (None: the plan's).
    """

    path: Path
    first: int
    count: int
    voxel_size: float | None = None


@dataclass(frozen=True)
class Batch:
    """Consecutive items of one output stack, read and written together.

    ``runs`` rows are ``(source id, source index, position in batch, count)``:
    each row is one read of ``count`` adjacent images.
    """

    out: int
    first: int
    count: int
    runs: np.ndarray


@dataclass
class GatherPlan:
    """Everything :func:`execute_plan` does, decided before any byte is written."""

    sources: list[StackInfo]
    src_id: np.ndarray
    src_idx: np.ndarray
    outputs: list[OutputStack]
    batches: list[Batch]
    in_shape: tuple[int, int]
    in_dtype: np.dtype
    out_shape: tuple[int, int]
    out_dtype: np.dtype
    voxel_size: float
    particles_per_file: int
    batch_items: int = field(default=1)

    @property
    def n_items(self) -> int:
        return int(self.src_id.size)

    @property
    def in_image_bytes(self) -> int:
        return self.in_shape[0] * self.in_shape[1] * self.in_dtype.itemsize

    @property
    def out_image_bytes(self) -> int:
        return self.out_shape[0] * self.out_shape[1] * self.out_dtype.itemsize

    @property
    def out_bytes(self) -> int:
        """Bytes the output stacks will occupy, headers included."""
        return self.n_items * self.out_image_bytes + HEADER_BYTES * len(self.outputs)

    @property
    def n_reads(self) -> int:
        return sum(len(b.runs) for b in self.batches)

    def with_output(self, out_dir: Path | str | None = None, *, out_shape=None, out_dtype=None,
                    voxel_size: float | None = None, prefix: str = "batch_",
                    batch_bytes: int = BATCH_BYTES, groups=None) -> "GatherPlan":
        """The same sources and items laid out for another output geometry.

        Lets a caller validate the sources first (:func:`plan_gather`), look
        at their shape and type, then decide what to write without reading
        every header again.  Parameters as in :func:`plan_gather`, and

        groups : sequence of (count, voxel_size), optional
            Consecutive runs of items (counts summing to the number of items)
            that never share a stack; each run's stacks get its voxel size in
            their headers (None: ``voxel_size``).  A particle set with several
            pixel sizes is written like this, so that every header is right.
        """
        out_dir = Path(out_dir) if out_dir is not None else self.outputs[0].path.parent
        shape = tuple(int(v) for v in (out_shape or self.in_shape))
        dtype = np.dtype(out_dtype) if out_dtype is not None else self.in_dtype.newbyteorder("=")
        mode_for_dtype(dtype)
        ppf = self.particles_per_file
        frame = max(self.in_image_bytes, shape[0] * shape[1] * dtype.itemsize)
        per_batch = max(1, min(ppf, int(batch_bytes) // frame))
        spans, start = [], 0
        for count, vox in (groups if groups is not None else [(self.n_items, None)]):
            spans.append((start, int(count), float(vox) if vox else None))
            start += int(count)
        if start != self.n_items:
            raise DataError(f"output groups cover {start} items, the plan has {self.n_items}")
        outputs, cuts = [], []  # cuts: (output, first item, count) of each batch
        for g_start, g_count, vox in spans:
            for start in range(g_start, g_start + g_count, ppf):
                k = len(outputs)
                count = min(ppf, g_start + g_count - start)
                outputs.append(OutputStack(out_dir / f"{prefix}{k:03d}.mrc", start, count, vox))
                cuts.extend((k, b, min(b + per_batch, start + count) - b) for b in range(start, start + count, per_batch))
        runs = _runs(self.src_id, self.src_idx, np.array([c[2] for c in cuts], dtype=np.int64))
        batches = [Batch(k, b, n, r) for (k, b, n), r in zip(cuts, runs)]
        return replace(self, outputs=outputs, batches=batches, out_shape=shape, out_dtype=dtype,
                       voxel_size=float(voxel_size) if voxel_size else self.voxel_size,
                       batch_items=per_batch)

    def destination(self, item: int) -> tuple[Path, int]:
        """Output stack and 0-based index of ``item``."""
        k = bisect.bisect_right([o.first for o in self.outputs], int(item)) - 1
        return self.outputs[k].path, int(item) - self.outputs[k].first

    def destinations(self) -> tuple[np.ndarray, np.ndarray]:
        """Output stack number and 0-based index of every item, as arrays."""
        stack = np.repeat(np.arange(len(self.outputs)), [o.count for o in self.outputs])
        firsts = np.array([o.first for o in self.outputs], dtype=np.int64)
        return stack, np.arange(self.n_items, dtype=np.int64) - firsts[stack]


def _source_error(info_or_path, why: str, index: int, item: int) -> SourceError:
    path = Path(getattr(info_or_path, "path", info_or_path))
    return SourceError(f"cannot read particle {item} (image {index} of {path}): {why}", path, index, item)


def _runs(sid: np.ndarray, sidx: np.ndarray, counts: np.ndarray) -> list[np.ndarray]:
    """Coalesced reads of each batch: the items, in order, cut into batches of ``counts`` items.

    One array per batch, its rows ``(source id, source index, position in the batch, count)``: within a
    batch the reads are in source order (id, then index; the same item twice in batch order), and one
    row reads images that are adjacent both in the source and in the batch.  All batches in one pass
    (a plan of a million items has ~60,000 batches).
    """
    n, first = sid.size, np.cumsum(counts) - counts
    batch = np.repeat(np.arange(counts.size), counts)
    order = _batch_source_order(batch, sid, sidx)
    s, i, bt = (sid, sidx, batch) if order is None else (sid[order], sidx[order], batch[order])
    item = np.arange(n) if order is None else order
    brk = np.ones(n, dtype=bool)
    brk[1:] = (bt[1:] != bt[:-1]) | (s[1:] != s[:-1]) | (i[1:] != i[:-1] + 1) | (item[1:] != item[:-1] + 1)
    starts = np.flatnonzero(brk)
    rows = np.empty((starts.size, 4), dtype=np.int64)
    rows[:, 0], rows[:, 1] = s[starts], i[starts]
    rows[:, 2] = item[starts] - first[bt[starts]]
    rows[:-1, 3] = np.diff(starts)
    rows[-1:, 3] = n - starts[-1:]
    cut = [0, *np.searchsorted(bt[starts], np.arange(1, counts.size)).tolist(), starts.size]
    return [rows[a:b] for a, b in zip(cut[:-1], cut[1:])]


def _batch_source_order(batch: np.ndarray, sid: np.ndarray, sidx: np.ndarray) -> np.ndarray | None:
    """The items sorted by (batch, source id, source index, position), stably; None when already in that
    order (a particle set grouped by stack in image order, the usual case: no sort at all)."""
    bits = [max(1, int(a.max()).bit_length()) if a.size else 1 for a in (batch, sid, sidx)]
    if min(int(sid.min()), int(sidx.min())) >= 0 and sum(bits) <= 62:  # one int64 key
        key = (batch << (bits[1] + bits[2])) | (sid << bits[2]) | sidx
        if bool((key[1:] >= key[:-1]).all()):
            return None
        return np.argsort(key, kind="stable")
    return np.lexsort((sidx, sid, batch))  # (stable: the same item twice keeps its batch order)


def plan_gather(items: Iterable[tuple[Path | str, int]], out_dir: Path | str, *,
                particles_per_file: int = 10000, out_shape: tuple[int, int] | None = None,
                out_dtype=None, voxel_size: float | None = None, prefix: str = "batch_",
                batch_bytes: int = BATCH_BYTES) -> GatherPlan:
    """Validate the sources and plan every read and write.

    Parameters
    ----------
    items : iterable of (path, index)
        Source stack and 0-based image index of each particle, in output order.
    out_dir : path-like
        Where the stacks ``<prefix>000.mrc``, ``<prefix>001.mrc``... go.
    particles_per_file : int
        Images per output stack (the last one may hold fewer).
    out_shape, out_dtype : optional
        Geometry of the written images (default: the source's, native byte order).
    voxel_size : float, optional
        Å/pixel for the output headers (default: the first source's).
    batch_bytes : int
        Target size of one read/write batch; memory use is a few times this.

    Raises
    ------
    SourceError
        A source is missing, corrupt or truncated, an index is out of range,
        or the sources disagree on image shape or pixel type.
    """
    ids: dict[Path, int] = {}
    seen, sid_list, idx_list = {}, [], []  # seen: the caller's path objects (one Path() each, not one per item)
    for path, index in items:
        sid_list.append(seen[path] if path in seen else seen.setdefault(path, ids.setdefault(Path(path), len(ids))))
        idx_list.append(index)
    src_id = np.asarray(sid_list, dtype=np.int64)
    src_idx = np.asarray(idx_list, dtype=np.int64)
    if src_id.size == 0:
        raise DataError("nothing to restack: the particle set is empty")
    first_item = _first_items(src_id, len(ids))
    sources: list[StackInfo] = []
    for path, k in ids.items():
        try:
            sources.append(read_header(path))
        except DataError as exc:
            item = int(first_item[k])
            raise _source_error(path, str(exc), int(src_idx[item]), item) from None
    return plan_sources(sources, src_id, src_idx, out_dir, particles_per_file=particles_per_file,
                        out_shape=out_shape, out_dtype=out_dtype, voxel_size=voxel_size,
                        prefix=prefix, batch_bytes=batch_bytes)


def _first_items(src_id: np.ndarray, n_sources: int) -> np.ndarray:
    first_item = np.full(n_sources, -1, dtype=np.int64)
    first_item[src_id[::-1]] = np.arange(src_id.size)[::-1]
    return first_item


def plan_sources(sources: list[StackInfo], src_id, src_idx, out_dir: Path | str, *,
                 particles_per_file: int = 10000, out_shape: tuple[int, int] | None = None,
                 out_dtype=None, voxel_size: float | None = None, prefix: str = "batch_",
                 batch_bytes: int = BATCH_BYTES) -> GatherPlan:
    """Like :func:`plan_gather`, for a caller that has already read the headers.

    Item ``i`` is image ``src_idx[i]`` of ``sources[src_id[i]]``: arrays, no
    per-particle Python objects, so planning millions of items is cheap.
    Shapes, pixel types and index ranges are still checked (SourceError).
    """
    src_id = np.ascontiguousarray(src_id, dtype=np.int64)
    src_idx = np.ascontiguousarray(src_idx, dtype=np.int64)
    if src_id.size == 0 or not sources:
        raise DataError("nothing to restack: the particle set is empty")
    if src_id.shape != src_idx.shape or src_id.min() < 0 or src_id.max() >= len(sources):
        raise DataError("invalid gather items: source ids and indices do not match the sources")
    first_item = None
    ref = sources[0]
    for k, info in enumerate(sources):
        if info.shape != ref.shape or info.dtype.newbyteorder("=") != ref.dtype.newbyteorder("="):
            first_item = _first_items(src_id, len(sources)) if first_item is None else first_item
            item = int(first_item[k])
            raise _source_error(info, f"its images are {info.ny}x{info.nx} {info.dtype}, but "
                                f"{ref.path} has {ref.ny}x{ref.nx} {ref.dtype}; a stack needs one "
                                f"shape and pixel type", int(src_idx[item]), item)
    nz = np.array([s.nz for s in sources], dtype=np.int64)
    bad = np.flatnonzero((src_idx < 0) | (src_idx >= nz[src_id]))
    if bad.size:
        item = int(bad[0])
        info = sources[src_id[item]]
        raise _source_error(info, f"index out of range (the stack has {info.nz} images)",
                            int(src_idx[item]), item)
    # Mixed byte orders would make the raw bytes ambiguous; use one per plan.
    in_dtype = ref.dtype if all(s.dtype == ref.dtype for s in sources) else ref.dtype.newbyteorder("=")
    ppf = int(particles_per_file)
    if ppf < 1:
        raise DataError(f"particles_per_file must be at least 1, got {ppf}")
    plan = GatherPlan(list(sources), src_id, src_idx, [], [], ref.shape, in_dtype, ref.shape,
                      in_dtype.newbyteorder("="), ref.voxel_size or 1.0, ppf)
    return plan.with_output(Path(out_dir), out_shape=out_shape, out_dtype=out_dtype,
                            voxel_size=voxel_size, prefix=prefix, batch_bytes=batch_bytes)
