"""Subset-aware caching: copy only the particles a job uses into packed stacks.

A 20 % subset of a particle set should not put 100 % of its stacks on the
SSD.  The particles used, as unique ``(source stack, index)`` pairs in a
canonical order (sources by real path, indices ascending), are gathered with
:mod:`cryodesk.io.gather` into ``subsets/<hash>/stack_NNN.mrc``; the hash is
over that list and each source's size and mtime, so two jobs on the same
subset share one entry and a changed source makes a new one.  Reads go
through :class:`SubsetMap`: canonical position ``k`` lives at image
``k % per_file`` of stack ``k // per_file``.  Pixels are copied bit for bit.

Speed: the gather is planned from the spec's arrays and the headers read
for it (no per-particle Python objects, no second header pass); writeback
of each written batch starts at once (``sync_file_range``), so the fsync
before the rename mostly waits for data already on its way to the disk;
many stacks are made durable with one file-system sync.  The entry appears
only by renaming its complete, durable directory.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cryodesk.base.errors import DataError
from cryodesk.base.fsio import replace_from
from cryodesk.io.gather import execute_plan, plan_sources
from cryodesk.io.mrc import HEADER_BYTES, StackInfo, read_header

from .copy import CacheFullError, SourceChanged, part_dir, start_writeback, sync_filesystem
from .store import Cache, Item, stat_matches

__all__ = ["SubsetSpec", "SubsetMap", "subset_spec", "subset_spec_grouped", "subset_item"]

MANIFEST = "subset.json"


@dataclass
class SubsetSpec:
    sources: list[str]                 # real paths, sorted
    stats: list[tuple[int, int]]       # (size, mtime_ns) of each source
    idx: list[np.ndarray]              # sorted unique indices used, per source
    image_bytes: int
    per_file: int
    key: str
    #: the validated headers of ``sources`` (the gather plan reuses them instead of reading them again)
    infos: list[StackInfo] = field(default_factory=list, repr=False, compare=False)

    @property
    def n(self) -> int:
        return int(sum(a.size for a in self.idx))

    @property
    def n_stacks(self) -> int:
        return -(-self.n // self.per_file)

    @property
    def bytes(self) -> int:
        """Bytes of the packed stacks (what the entry occupies)."""
        return self.n * self.image_bytes + HEADER_BYTES * self.n_stacks

    @property
    def source_bytes(self) -> int:
        """Bytes of the whole source stacks (what whole-file caching would copy)."""
        return sum(s for s, _ in self.stats)


def subset_spec(real_paths: np.ndarray, idx: np.ndarray, per_file: int = 10000) -> SubsetSpec:
    """The canonical subset of the particles ``(real_paths[i], idx[i])``.

    Raises DataError when a source is unreadable or the sources' images differ
    in size (the caller then caches whole files).
    """
    uniq, inv = np.unique(np.asarray(real_paths).astype(str), return_inverse=True)
    return _spec(uniq.tolist(), np.asarray(inv).ravel(), idx, per_file)


def subset_spec_grouped(sources, inv: np.ndarray, idx: np.ndarray, per_file: int = 10000) -> SubsetSpec:
    """:func:`subset_spec` of the particles ``(sources[inv[i]], idx[i])`` (same spec, same key).

    For callers that already have each particle's stack as an index into a
    short list of real paths (duplicates allowed): no per-particle strings
    are built or sorted.
    """
    inv = np.asarray(inv, dtype=np.int64).ravel()
    sources = np.asarray(list(sources), dtype=str)
    used = np.bincount(inv, minlength=sources.size) > 0  # as subset_spec: only stacks with particles
    uniq, remap = np.unique(sources[used], return_inverse=True)
    where = np.full(sources.size, -1, dtype=np.int64)
    where[used] = np.asarray(remap).ravel()
    return _spec(uniq.tolist(), where[inv], idx, per_file)


def _unique_per_source(inv: np.ndarray, idx: np.ndarray, n_sources: int) -> list[np.ndarray]:
    """Sorted unique indices of each source, in one sort for all of them."""
    order = np.lexsort((idx, inv))
    s_inv, s_idx = inv[order], idx[order]
    keep = np.ones(s_inv.size, dtype=bool)
    keep[1:] = (s_inv[1:] != s_inv[:-1]) | (s_idx[1:] != s_idx[:-1])
    s_inv, s_idx = s_inv[keep], s_idx[keep]
    return np.split(s_idx, np.cumsum(np.bincount(s_inv, minlength=n_sources))[:-1])


def _spec(uniq: list[str], inv: np.ndarray, idx, per_file: int) -> SubsetSpec:
    """The spec of particles ``(uniq[inv[i]], idx[i])``; ``uniq`` sorted and distinct."""
    idx = np.asarray(idx, dtype=np.int64).ravel()
    inv = np.asarray(inv, dtype=np.int64).ravel()
    groups = _unique_per_source(inv, idx, len(uniq))
    sources, stats, per_src, infos = [], [], [], []
    h = hashlib.sha1(f"per_file={per_file}".encode())
    image_bytes = first = None
    for src, sel in zip(uniq, groups):
        info = read_header(src)
        if first is None:
            first, image_bytes = info, info.image_bytes
        elif info.shape != first.shape or info.dtype.newbyteorder("=") != first.dtype.newbyteorder("="):
            raise DataError(f"{src} has {info.ny}x{info.nx} {info.dtype} images but {first.path} has "
                            f"{first.ny}x{first.nx} {first.dtype}; a packed subset needs one kind")
        st = os.stat(src)
        if sel.size and (sel[0] < 0 or sel[-1] >= info.nz):
            info.check_index(int(sel[0] if sel[0] < 0 else sel[-1]))
        sources.append(src)
        stats.append((st.st_size, st.st_mtime_ns))
        per_src.append(sel)
        infos.append(info)
        h.update(f"\0{src}\0{st.st_size}\0{st.st_mtime_ns}\0".encode("utf-8", "surrogateescape"))
        h.update(sel.astype("<i8").tobytes())
    return SubsetSpec(sources, stats, per_src, int(image_bytes or 0), int(per_file), h.hexdigest(), infos)


class SubsetMap:
    """Where each particle of a subset lives in the packed stacks."""

    def __init__(self, spec: SubsetSpec, directory: Path):
        self.spec = spec
        self.directory = Path(directory)
        self._src = {s: k for k, s in enumerate(spec.sources)}
        sizes = [a.size for a in spec.idx]
        self._offset = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
        self.stacks = [self.directory / f"stack_{k:03d}.mrc" for k in range(spec.n_stacks)]

    def locate_many(self, real_paths: np.ndarray, idx: np.ndarray) -> tuple[list[Path], np.ndarray]:
        """Packed stack and index of each ``(real path, index)``; DataError if not in the subset."""
        uniq, inv = np.unique(np.asarray(real_paths).astype(str), return_inverse=True)
        return self.locate_grouped(uniq.tolist(), np.asarray(inv).ravel(), idx)

    def locate_grouped(self, sources, inv: np.ndarray, idx: np.ndarray) -> tuple[list[Path], np.ndarray]:
        """:meth:`locate_many` of ``(sources[inv[i]], idx[i])`` (real paths; duplicates allowed)."""
        idx = np.asarray(idx, dtype=np.int64).ravel()
        inv = np.asarray(inv, dtype=np.int64).ravel()
        sources = list(sources)
        pos = np.empty(idx.size, dtype=np.int64)
        order = np.argsort(inv, kind="stable")
        splits = np.split(order, np.cumsum(np.bincount(inv, minlength=len(sources)))[:-1])
        for src, rows in zip(sources, splits):
            if not rows.size:
                continue
            k = self._src.get(src)
            if k is None:
                raise DataError(f"{src} is not part of the cached subset")
            sel = self.spec.idx[k]
            j = np.searchsorted(sel, idx[rows])
            if np.any(j >= sel.size) or np.any(sel[np.minimum(j, sel.size - 1)] != idx[rows]):
                raise DataError(f"a particle of {src} is not part of the cached subset")
            pos[rows] = self._offset[k] + j
        stack, new = np.divmod(pos, self.spec.per_file)
        return [self.stacks[s] for s in stack.tolist()], new


def _valid(spec: SubsetSpec, dest: Path) -> bool:
    try:
        doc = json.loads((dest / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    if doc.get("key") != spec.key:
        return False
    sizes = doc.get("stack_sizes", [])
    if len(sizes) != spec.n_stacks:
        return False
    return all(os.path.isfile(dest / f"stack_{k:03d}.mrc") and
               os.path.getsize(dest / f"stack_{k:03d}.mrc") == size for k, size in enumerate(sizes)) and \
        all(stat_matches(Path(s), *st) for s, st in zip(spec.sources, spec.stats))


#: Above this many packed stacks one file-system sync replaces the per-file fsyncs
#: (each fsync is a journal commit; the whole-file fill batches the same way).
SYNCFS_STACKS = 4


def _plan(spec: SubsetSpec, part: Path):
    """The gather plan, from the spec's arrays and headers: no per-particle Python objects."""
    infos = spec.infos if len(spec.infos) == len(spec.sources) else [read_header(s) for s in spec.sources]
    sizes = np.fromiter((a.size for a in spec.idx), dtype=np.int64, count=len(spec.idx))
    src_id = np.repeat(np.arange(len(spec.idx), dtype=np.int64), sizes)
    src_idx = np.concatenate(spec.idx) if spec.idx else np.empty(0, np.int64)
    return plan_sources(infos, src_id, src_idx, part, particles_per_file=spec.per_file, prefix="stack_")


def _make_durable(stacks: list[Path], manifest: Path) -> None:
    """Get the stacks' bytes and the manifest onto the disk (before the rename that publishes them)."""
    if len(stacks) > SYNCFS_STACKS:
        sync_filesystem(manifest.parent)
        return
    for p in [*stacks, manifest]:  # writeback already started while copying: mostly a wait
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _build(spec: SubsetSpec, dest: Path, on_bytes, check_cancel, fsync: bool = True) -> int:
    part = part_dir(dest)
    shutil.rmtree(part, ignore_errors=True)
    part.mkdir(parents=True)
    last = [0]

    def progress(done, total, done_bytes, total_bytes):
        on_bytes(done_bytes - last[0])
        last[0] = done_bytes

    def writeback(fd, offset, nbytes):
        # Start writing each batch to the disk now: the final fsync then finds it on its way.
        start_writeback(fd, offset, nbytes)

    try:
        plan = _plan(spec, part)
        stacks = execute_plan(plan, None, progress=progress, check_cancel=check_cancel,
                              on_write=writeback if fsync else None)
        changed = [s for s, st in zip(spec.sources, spec.stats) if not stat_matches(Path(s), *st)]
        if changed:
            # The headers were read when the spec was made: a source changed since.
            more = f" (and {len(changed) - 1} more)" if len(changed) > 1 else ""
            raise SourceChanged(f"{changed[0]}{more} changed while its particles were being cached")
        sizes = [os.path.getsize(p) for p in stacks]
        doc = {"key": spec.key, "n": spec.n, "particles_per_file": spec.per_file,
               "sources": [[s, sz, mt] for s, (sz, mt) in zip(spec.sources, spec.stats)],
               "stack_sizes": sizes}
        # A plain write: nothing in ``part`` is visible until the directory is renamed.
        with open(part / MANIFEST, "w") as fh:
            json.dump(doc, fh)
        if fsync:
            _make_durable(stacks, part / MANIFEST)
    except DataError as exc:
        shutil.rmtree(part, ignore_errors=True)
        text = str(exc)
        if text.startswith("disk full") or text.startswith("not enough disk space"):
            raise CacheFullError(f"the SSD is full: {text}") from None
        raise
    except OSError as exc:
        shutil.rmtree(part, ignore_errors=True)
        raise DataError(f"cannot write the cached subset in {part}: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(part, ignore_errors=True)
        raise
    if dest.exists():
        shutil.rmtree(dest)
    replace_from(part, dest)  # the whole directory appears at once
    return sum(sizes)


def subset_item(cache: Cache, spec: SubsetSpec) -> Item:
    dest = cache.subsets / spec.key
    return Item(key=f"subset:{spec.key}", kind="subset", dest=dest, size=spec.bytes,
                src_size=spec.source_bytes, src_mtime_ns=0, check=lambda: _valid(spec, dest),
                build=lambda on_bytes, cc: _build(spec, dest, on_bytes, cc, cache.config.fsync))
