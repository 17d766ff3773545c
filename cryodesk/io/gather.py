"""Planned, coalesced, threaded copy of particle images into new MRC stacks.

Restacking is I/O bound: per-particle ``mrcfile`` access reaches a tenth of
what the disk can do.  This module gets close to ``cp`` speed by

* **planning** every read up front (:func:`plan_gather`): headers are
  validated once per source (or given, :func:`plan_sources`), items are cut into output files and into
  batches of about ``batch_bytes``, and within a batch the reads are sorted
  by source file and offset;
* **coalescing** particles that are adjacent both in the source and in the
  output into a single ``preadv`` straight into the batch buffer (no copy);
* **overlapping** reading and writing: two reader threads fill a small pool
  of batch buffers (each reads and checks its own batch; batches are claimed
  in order) while the calling thread transforms and ``pwrite``\\ s the
  previous batch, in order (the system calls release the GIL);
* writing each output stack with **one header** and large ``pwrite`` calls,
  into blocks **reserved up front** (``fallocate``, where the file system has
  it): ext4 then skips its per-block delayed-allocation bookkeeping in every
  ``pwrite`` (about a third of the writing thread's CPU time on a hot cache),
  and a disk too full for a stack says so before any of it is written.

* **reading ahead**: the reader asks the kernel (``POSIX_FADV_WILLNEED``) for
  the images of the next ``readahead_bytes`` (256 MiB) of batches, so that on
  a cold cache the disk has a deep queue of requests it can merge and order,
  instead of one synchronous read at a time.

Memory stays bounded by ``(depth + 1) × batch_bytes`` whatever the input size
(4 MiB batches, 4 in flight by default: ~20 MiB); the read-ahead lives in the
page cache, not in the process.
A failed, cancelled or interrupted copy removes every file it created; the
outputs appear under their final names only when all of them are complete.
"""

from __future__ import annotations

import bisect
import errno
import os
import queue
import threading
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterable, Protocol

import numpy as np

from cryodesk.base.errors import DataError
from cryodesk.base.fsio import AtomicFile
from cryodesk.io.mrc import HEADER_BYTES, StackInfo, make_header, mode_for_dtype, read_header

__all__ = ["SourceError", "Batch", "OutputStack", "GatherPlan", "BatchTransform",
           "plan_gather", "plan_sources", "execute_plan", "gather"]

_MiB = 1 << 20
_FD_CACHE = 64  # open source files kept; stacks can number in the thousands
#: Default batch size: large enough that a batch is a few big reads and writes, small enough
#: that the buffers in flight stay a few tens of MB whatever the input (bigger gains nothing here).
BATCH_BYTES = 4 * _MiB
#: Images of the batches this far ahead of the reader are requested from the disk (WILLNEED).
READAHEAD_BYTES = 256 * _MiB
#: Largest single ``pwrite``: a batch is written in pieces of this size.  Measured on a hot 2 GB
#: float32 restack (0.40 GB moved, 16 interleaved rounds in fresh processes, Linux 6.18, ext4, a VM):
#: whole 4 MiB batches 0.70 s (CPU 0.63 s), 2 MiB pieces 0.26 s, 1 MiB 0.24 s (CPU 0.24 s), 512 KiB
#: 0.24 s, 256 KiB 0.33-0.43 s.  Probably the page cache folios: the kernel sizes them by the write
#: (ext4's large folios: up to 2 MiB from a 4 MiB write), and fresh 2 MiB blocks of memory cost more
#: (in a VM whose free memory is handed back to the host, their first touch faults in the host).
WRITE_BYTES = 1 * _MiB


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


class BatchTransform(Protocol):
    """What :func:`execute_plan` needs from a transform (see ParticleTransform).

    ``__call__(src, dst, first)`` runs on the writing thread once per batch
    and returns the array to write.  An optional ``inspect(images, first)``
    runs on the reading thread once per batch, right after the batch's reads
    (all its images, items ``first..``), while they are still in the CPU
    cache: the place for read-only checks.
    """

    out_shape: tuple[int, int]
    out_dtype: np.dtype

    def __call__(self, src: np.ndarray, dst: np.ndarray, first: int) -> np.ndarray: ...


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
        outputs, batches = [], []
        for g_start, g_count, vox in spans:
            for start in range(g_start, g_start + g_count, ppf):
                k = len(outputs)
                count = min(ppf, g_start + g_count - start)
                outputs.append(OutputStack(out_dir / f"{prefix}{k:03d}.mrc", start, count, vox))
                for b in range(start, start + count, per_batch):
                    e = min(b + per_batch, start + count)
                    batches.append(Batch(k, b, e - b, _runs(self.src_id[b:e], self.src_idx[b:e])))
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


def _runs(sid: np.ndarray, sidx: np.ndarray) -> np.ndarray:
    """Coalesced reads for one batch whose items are at positions 0..n-1."""
    pos = np.lexsort((sidx, sid))
    s, i = sid[pos], sidx[pos]
    brk = np.ones(pos.size, dtype=bool)
    brk[1:] = (s[1:] != s[:-1]) | (i[1:] != i[:-1] + 1) | (pos[1:] != pos[:-1] + 1)
    starts = np.flatnonzero(brk)
    counts = np.diff(np.append(starts, pos.size))
    return np.stack([s[starts], i[starts], pos[starts], counts], axis=1).astype(np.int64)


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


class _SourceFiles:
    """Open source descriptors, least recently used closed first."""

    def __init__(self, sources: list[StackInfo]):
        self.sources = sources
        self._fds: OrderedDict[int, int] = OrderedDict()

    def fd(self, sid: int, index: int, item: int) -> int:
        fd = self._fds.get(sid)
        if fd is not None:
            self._fds.move_to_end(sid)
            return fd
        if len(self._fds) >= _FD_CACHE:
            os.close(self._fds.popitem(last=False)[1])
        try:
            fd = os.open(self.sources[sid].path, os.O_RDONLY)
        except OSError as exc:
            raise _source_error(self.sources[sid], exc.strerror or str(exc), index, item) from None
        self._fds[sid] = fd
        return fd

    def close(self) -> None:
        while self._fds:
            os.close(self._fds.popitem()[1])


def _read_batch(plan: GatherPlan, batch: Batch, buf: memoryview, files: _SourceFiles,
                inspect: Callable[[np.ndarray, int], None] | None = None) -> None:
    frame = plan.in_image_bytes
    for sid, sidx, pos, count in batch.runs.tolist():
        info = plan.sources[sid]
        fd = files.fd(sid, sidx, batch.first + pos)
        want, got = count * frame, 0
        offset = info.data_offset + sidx * frame
        while got < want:
            bad = sidx + got // frame
            try:
                n = os.preadv(fd, [buf[pos * frame + got: pos * frame + want]], offset + got)
            except OSError as exc:
                raise _source_error(info, exc.strerror or str(exc), bad,
                                    batch.first + pos + got // frame) from None
            if n == 0:  # the file shrank after planning
                raise _source_error(info, "unexpected end of file (truncated stack)", bad,
                                    batch.first + pos + got // frame)
            got += n
    if inspect is not None:  # once per batch: its images are items batch.first.. in buffer order
        images = np.frombuffer(buf[: batch.count * frame], dtype=plan.in_dtype)
        inspect(images.reshape(batch.count, *plan.in_shape), batch.first)


def _advise(plan: GatherPlan, batch: Batch, files: _SourceFiles) -> None:
    """Ask the kernel to start fetching a batch's images (helps cold caches)."""
    frame = plan.in_image_bytes
    for sid, sidx, pos, count in batch.runs.tolist():
        fd = files.fd(sid, sidx, batch.first + pos)
        os.posix_fadvise(fd, plan.sources[sid].data_offset + sidx * frame, count * frame,
                         os.POSIX_FADV_WILLNEED)


class _Feed:
    """Hands the batches, each with a buffer, to the reading threads, in batch order.

    A batch gets its buffer when it is claimed, and batches are claimed in
    order: the batch the writer waits for always holds a buffer, whatever
    the later ones hold, so the pool (``depth`` buffers) never deadlocks.
    The claimer also asks the kernel to read ahead (``POSIX_FADV_WILLNEED``).
    """

    def __init__(self, plan: GatherPlan, depth: int, free: queue.Queue, stop: threading.Event,
                 readahead: int):
        self.plan, self.depth, self.free, self.stop, self.readahead = plan, depth, free, stop, readahead
        self.lock = threading.Lock()
        self.next = 0  # next batch to claim
        self.last = len(plan.batches)  # claims stop here (lowered when a batch fails)
        self.allocated = 0
        self.advised = self.ahead = 0  # batches handed to the kernel's read-ahead; their bytes not read yet
        self.can_advise = hasattr(os, "posix_fadvise") and readahead > 0
        self.files = _SourceFiles(plan.sources)  # for the advice only (used under the lock)

    def claim(self) -> tuple[int, memoryview] | None:
        """The next batch and a buffer for it; None when there is nothing left (or a stop)."""
        plan = self.plan
        with self.lock:
            if self.next >= self.last:
                return None
            buf = None
            while buf is None:
                if self.stop.is_set():
                    return None
                if self.allocated < self.depth and self.free.empty():
                    # Allocated here, on demand and uninitialised: zero-filling
                    # the whole pool up front would delay the first read.
                    buf = memoryview(np.empty(plan.batch_items * plan.in_image_bytes, np.uint8))
                    self.allocated += 1
                    continue
                try:
                    buf = self.free.get(timeout=0.05)
                except queue.Empty:
                    pass
            b = self.next
            self.next += 1
            if self.can_advise:
                while self.advised < len(plan.batches) and (self.advised <= b or self.ahead < self.readahead):
                    _advise(plan, plan.batches[self.advised], self.files)
                    self.ahead += plan.batches[self.advised].count * plan.in_image_bytes
                    self.advised += 1
                self.ahead -= plan.batches[b].count * plan.in_image_bytes
            return b, buf

    def failed(self, b: int) -> None:
        """Batch ``b`` failed: no later batch is claimed (the writer stops at ``b``)."""
        with self.lock:
            self.last = min(self.last, b + 1)

    def close(self) -> None:
        with self.lock:
            self.files.close()


def _reader(feed: _Feed, inspect, ready: queue.Queue) -> None:
    """One reading thread: claims batches, reads (and inspects) them, hands them to the writer.

    Messages on ``ready``: ``(b, buffer)`` for a batch read, ``(b, exception)``
    for a batch whose read failed (raised by the writer when it reaches ``b``,
    so the error is the first in batch order whatever the timing),
    ``(-1, exception)`` for any other failure (raised at once), and
    ``(None, None)`` when this thread is done.
    """
    files = _SourceFiles(feed.plan.sources)
    try:
        while True:
            claimed = feed.claim()
            if claimed is None:
                break
            b, buf = claimed
            try:
                _read_batch(feed.plan, feed.plan.batches[b], buf, files, inspect)
            except BaseException as exc:
                feed.failed(b)
                feed.free.put(buf)
                ready.put((b, exc))
                break
            ready.put((b, buf))
    except BaseException as exc:  # outside a read (the read-ahead advice, a buffer): handed over at once
        feed.failed(-1)
        ready.put((-1, exc))
    finally:
        files.close()
        ready.put((None, None))


def _write_all(fd: int, data, offset: int, out: OutputStack, item: int) -> None:
    mv = memoryview(data).cast("B")
    done = 0
    while done < len(mv):
        try:
            done += os.pwrite(fd, mv[done:done + WRITE_BYTES], offset + done)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise DataError(f"disk full while writing {out.path} (particle {item} of the "
                                f"restack); the partial output was removed") from None
            raise DataError(f"cannot write {out.path} (particle {item}): "
                            f"{exc.strerror or exc}") from None


_DROP_LAG = 4  # batches between starting a batch's writeback and dropping its pages


def _drop_behind(lagging: list, fd: int, offset: int, nbytes: int) -> None:
    """Start writeback of what was just written; drop the pages of what was written a few batches ago."""
    os.posix_fadvise(fd, offset, nbytes, os.POSIX_FADV_DONTNEED)  # dirty: starts their writeback only
    lagging.append((fd, offset, nbytes))
    while len(lagging) > _DROP_LAG:
        os.posix_fadvise(*lagging.pop(0), os.POSIX_FADV_DONTNEED)  # clean by now: dropped


_fallocate = None  # fallocate(2) through ctypes, loaded on first use; False where there is none


def _load_fallocate():
    global _fallocate
    if _fallocate is None:
        try:
            import ctypes

            fn = ctypes.CDLL(None, use_errno=True).fallocate
            fn.argtypes = (ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64)
            fn.restype = ctypes.c_int
            _fallocate = (fn, ctypes.get_errno)
        except (OSError, AttributeError):  # pragma: no cover - not Linux/glibc
            _fallocate = False
    return _fallocate


def _preallocate(fd: int, nbytes: int, out: OutputStack) -> None:
    """Reserve the blocks of a whole output stack before writing it, where the file system can.

    ``fallocate(2)`` itself, not ``os.posix_fallocate``: where the file system
    lacks it, glibc's emulation would write a byte into every block first.
    There the stack is written as before (delayed allocation).
    """
    loaded = _load_fallocate()
    if not loaded:
        return
    fn, get_errno = loaded
    if fn(fd, 0, 0, nbytes) == 0:
        return
    err = get_errno()
    if err in (errno.ENOSPC, errno.EDQUOT):
        raise DataError(f"disk full while writing {out.path} (particle {out.first} of the "
                        f"restack); the partial output was removed")
    # EOPNOTSUPP, ENOSYS, EINVAL, EPERM...: this file system writes it without reservation


def _check_space(plan: GatherPlan) -> None:
    out_dir = plan.outputs[0].path.parent
    st = os.statvfs(out_dir)
    free = st.f_bavail * st.f_frsize
    if free < plan.out_bytes:
        raise DataError(f"not enough disk space in {out_dir}: the restack needs "
                        f"{plan.out_bytes / 1e9:.2f} GB, {free / 1e9:.2f} GB are free")


def execute_plan(plan: GatherPlan, transform: BatchTransform | None = None, *, depth: int = 4,
                 readers: int = 2, readahead_bytes: int = READAHEAD_BYTES,
                 progress: Callable[[int, int, int, int], None] | None = None,
                 check_cancel: Callable[[], None] | None = None,
                 on_write: Callable[[int, int, int], None] | None = None,
                 drop_written: bool = False, preallocate: bool = True) -> list[Path]:
    """Copy (and transform) every planned image into the output stacks.

    Parameters
    ----------
    plan : GatherPlan
    transform : callable, optional
        ``transform(src, dst, first) -> array to write``, called on the
        writing thread once per batch; its optional ``inspect`` method on
        the reading thread per read (see :class:`BatchTransform`).
    depth : int
        Batch buffers in flight (memory is about ``(depth + 1) × batch``);
        at least ``readers + 1``.
    readers : int
        Reading threads.  Two by default: the reads and the checks of one
        batch overlap with those of the next (on a hot cache the reading
        side, a copy out of the page cache and the checks, costs more than
        the writing side; on a cold one two reads keep the disk busier).
        Batches are claimed and written in order; the transform's
        ``inspect`` may run on two threads at once, on distinct items.
    readahead_bytes : int
        How far ahead of the reader the kernel is asked to fetch images (0: not at all).
    progress : callable, optional
        ``progress(particles_done, particles_total, bytes_done, bytes_total)``
        after each batch; bytes count what was written.
    check_cancel : callable, optional
        Called between batches; whatever it raises aborts the copy.
    on_write : callable, optional
        ``on_write(fd, offset, nbytes)`` on the writing thread after each batch
        is written to the (temporary) output ``fd``: e.g. to start writeback
        early so that a final ``fsync`` finds the data already on its way.
    drop_written : bool
        Keep the written stacks out of the page cache: each batch's writeback
        starts as soon as it is written and its pages are dropped a few batches
        later (``POSIX_FADV_DONTNEED``, which never waits).  Dirty data then
        stays at a few batches instead of the whole output, so a later
        ``fsync`` (of anything on that disk) does not stall behind gigabytes
        of it; the copy itself competes with that writeback for the disk.
    preallocate : bool
        Reserve each output stack's blocks (``fallocate``) when it is created,
        where the file system supports it (ext4, XFS, btrfs, tmpfs...): cheaper
        writes, and a full disk is reported before the stack is written.  The
        bytes written are the same either way.

    Returns
    -------
    list of Path
        The output stacks, complete and under their final names.

    Raises
    ------
    DataError
        Unreadable source (:class:`SourceError`), disk full, or write error.
        Every file created so far is removed before it propagates, as for
        any other exception (cancellation included).
    """
    plan.outputs[0].path.parent.mkdir(parents=True, exist_ok=True)
    _check_space(plan)
    ny, nx = plan.in_shape
    free: queue.Queue = queue.Queue()
    scratch = None
    if transform is not None or plan.out_dtype != plan.in_dtype:
        scratch = np.empty((plan.batch_items, *plan.out_shape), dtype=plan.out_dtype)
    ready: queue.Queue = queue.Queue()
    stop = threading.Event()
    inspect = getattr(transform, "inspect", None)
    n_readers = max(1, min(int(readers), len(plan.batches)))
    feed = _Feed(plan, max(n_readers + 1, depth), free, stop, int(readahead_bytes))
    threads = [threading.Thread(target=_reader, name=f"gather-reader-{k}", daemon=True,
                                args=(feed, inspect, ready)) for k in range(n_readers)]
    files: dict[int, AtomicFile] = {}  # output number -> its temp file; published at the very end
    lagging: list[tuple[int, int, int]] = []  # (fd, offset, nbytes) written, whose pages are not dropped yet
    renamed: list[Path] = []
    done_items = done_bytes = 0
    arrived: dict[int, object] = {}  # batches read (or failed) ahead of the one to write next
    running = n_readers
    try:
        for thread in threads:
            thread.start()
        for b in range(len(plan.batches)):
            while b not in arrived:
                if running == 0:  # every reader is done, and batch b never came (cannot happen)
                    raise RuntimeError(f"gather: batch {b} of {len(plan.batches)} was never read")
                try:
                    got, payload = ready.get(timeout=0.1)
                except queue.Empty:
                    if check_cancel is not None:
                        check_cancel()
                    continue
                if got is None:
                    running -= 1
                elif got < 0:
                    raise payload
                else:
                    arrived[got] = payload
            buf = arrived.pop(b)
            if isinstance(buf, BaseException):
                raise buf
            if check_cancel is not None:
                check_cancel()
            batch = plan.batches[b]
            out = plan.outputs[batch.out]
            src = np.frombuffer(buf, dtype=plan.in_dtype, count=batch.count * ny * nx)
            src = src.reshape(batch.count, ny, nx)
            if transform is not None:
                data = transform(src, scratch[:batch.count], batch.first)
            elif scratch is not None:
                data = scratch[:batch.count]
                data[...] = src
            else:
                data = src
            if batch.out not in files:
                # Not durable here: a caller that needs it syncs the batch (the SSD cache).
                files[batch.out] = AtomicFile(out.path, durable=False)
                if preallocate:
                    _preallocate(files[batch.out].fh.fileno(), HEADER_BYTES + out.count * plan.out_image_bytes, out)
                header = make_header(plan.out_shape[1], plan.out_shape[0], out.count,
                                     mode_for_dtype(plan.out_dtype), out.voxel_size or plan.voxel_size,
                                     dmin=0.0, dmax=-1.0, dmean=-2.0, rms=-1.0)  # "not computed"
                _write_all(files[batch.out].fh.fileno(), header, 0, out, batch.first)
            fd = files[batch.out].fh.fileno()
            offset = HEADER_BYTES + (batch.first - out.first) * plan.out_image_bytes
            _write_all(fd, data, offset, out, batch.first)
            if on_write is not None:
                on_write(fd, offset, batch.count * plan.out_image_bytes)
            if drop_written and hasattr(os, "posix_fadvise"):
                _drop_behind(lagging, fd, offset, batch.count * plan.out_image_bytes)
            del src, data
            free.put(buf)
            if batch.first + batch.count == out.first + out.count:
                for entry in [x for x in lagging if x[0] == fd]:  # before its descriptor closes
                    lagging.remove(entry)
                    os.posix_fadvise(*entry, os.POSIX_FADV_DONTNEED)
                files[batch.out].close()  # complete: free its descriptor (outputs can be many)
            done_items += batch.count
            done_bytes += batch.count * plan.out_image_bytes
            if progress is not None:
                progress(done_items, plan.n_items, done_bytes, plan.n_items * plan.out_image_bytes)
        for k in sorted(files):
            renamed.append(files[k].commit())
        return renamed
    except BaseException:
        for f in files.values():
            f.abort()
        for path in renamed:  # all outputs or none
            path.unlink(missing_ok=True)
        raise
    finally:
        stop.set()
        feed.failed(-1)  # nothing more is claimed
        for thread in threads:
            if thread.ident is not None:
                thread.join()
        feed.close()


def gather(items: Iterable[tuple[Path | str, int]], out_dir: Path | str, *,
           transform: BatchTransform | None = None, particles_per_file: int = 10000,
           voxel_size: float | None = None, prefix: str = "batch_", batch_bytes: int = BATCH_BYTES,
           progress: Callable[[int, int, int, int], None] | None = None,
           check_cancel: Callable[[], None] | None = None, readahead_bytes: int = READAHEAD_BYTES,
           drop_written: bool = False) -> GatherPlan:
    """Plan and execute a gather in one call; returns the executed plan.

    See :func:`plan_gather` and :func:`execute_plan` for the parameters.
    """
    plan = plan_gather(items, out_dir, particles_per_file=particles_per_file,
                       out_shape=getattr(transform, "out_shape", None),
                       out_dtype=getattr(transform, "out_dtype", None), voxel_size=voxel_size,
                       prefix=prefix, batch_bytes=batch_bytes)
    execute_plan(plan, transform, progress=progress, check_cancel=check_cancel, readahead_bytes=readahead_bytes,
                 drop_written=drop_written)
    return plan
