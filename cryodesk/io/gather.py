"""Planned, coalesced, threaded copy of particle images into new MRC stacks.

Restacking is I/O bound: per-particle ``mrcfile`` access reaches a tenth of
what the disk can do.  This module gets close to ``cp`` speed by

* **planning** every read up front (:func:`plan_gather`, in :mod:`cryodesk.io.gather_plan`): headers are
  validated once per source (or given, :func:`plan_sources`), items are cut into output files and into
  batches of about ``batch_bytes``, and within a batch the reads are sorted
  by source file and offset;
* **coalescing** particles that are adjacent both in the source and in the
  output into a single ``preadv`` straight into the batch buffer (no copy);
* **overlapping** reading and writing: two worker threads each read, check,
  transform and ``pwrite`` a whole batch of their own (batches are claimed in
  order and written into their place, in whatever order they finish; the
  system calls release the GIL).  One thread's reads and checks run while the
  other writes, each writes what is still in its own CPU cache, and no third
  thread competes for the two cores: on a hot cache the copy then costs about
  what ``cp`` costs (a writing thread apart, fed by two readers, spent as long
  in its ``pwrite`` calls alone as ``cp`` took for the whole copy);
* writing each output stack with **one header** and large ``pwrite`` calls,
  into blocks **reserved up front** (``fallocate``, where the file system has
  it): ext4 then skips its per-block delayed-allocation bookkeeping in every
  ``pwrite`` (about a third of the writing thread's CPU time on a hot cache),
  and a disk too full for a stack says so before any of it is written.

* **reading ahead**: the reader asks the kernel (``POSIX_FADV_WILLNEED``) for
  the images of the next ``readahead_bytes`` (256 MiB) of batches, so that on
  a cold cache the disk has a deep queue of requests it can merge and order,
  instead of one synchronous read at a time.

Memory stays bounded by ``workers × batch_bytes`` (and as much again of
scratch for a transform) whatever the input size (4 MiB batches, 2 workers by
default: ~8 MiB); the read-ahead lives in the
page cache, not in the process.
A failed, cancelled or interrupted copy removes every file it created; the
outputs appear under their final names only when all of them are complete.
"""

from __future__ import annotations

import errno
import os
import queue
import stat
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Callable, Iterable, Protocol

import numpy as np

from cryodesk.base.errors import DataError
from cryodesk.base.fsio import AtomicFile
from cryodesk.io.gather_plan import (
    BATCH_BYTES,
    Batch,
    GatherPlan,
    OutputStack,
    SourceError,
    _source_error,
    plan_gather,
    plan_sources,
)
from cryodesk.io.mrc import HEADER_BYTES, StackInfo, make_header, mode_for_dtype

__all__ = ["SourceError", "Batch", "OutputStack", "GatherPlan", "BatchTransform",
           "plan_gather", "plan_sources", "execute_plan", "gather"]

_MiB = 1 << 20
_FD_CACHE = 64  # open source files kept; stacks can number in the thousands
#: Images of the batches this far ahead of the reader are requested from the disk (WILLNEED).
READAHEAD_BYTES = 256 * _MiB
#: Largest single ``pwrite``: a batch is written in pieces of this size.  Measured on a hot 2 GB
#: float32 restack (0.40 GB moved, 16 interleaved rounds in fresh processes, Linux 6.18, ext4, a VM):
#: whole 4 MiB batches 0.70 s (CPU 0.63 s), 2 MiB pieces 0.26 s, 1 MiB 0.24 s (CPU 0.24 s), 512 KiB
#: 0.24 s, 256 KiB 0.33-0.43 s.  Probably the page cache folios: the kernel sizes them by the write
#: (ext4's large folios: up to 2 MiB from a 4 MiB write), and fresh 2 MiB blocks of memory cost more
#: (in a VM whose free memory is handed back to the host, their first touch faults in the host).
WRITE_BYTES = 1 * _MiB


class BatchTransform(Protocol):
    """What :func:`execute_plan` needs from a transform (see ParticleTransform).

    ``__call__(src, dst, first)`` runs on a worker thread once per batch, after ``inspect``, and returns
    the array to write: ``(len(src), *out_shape)`` of ``out_dtype`` (else TypeError).  An optional
    ``inspect(images, first)`` runs once per batch right after its reads (all its images, items
    ``first..``), while they are still in the CPU cache: the place for read-only checks.  Both may run
    on two threads at once, on distinct items (and distinct ``dst``): they must be thread-safe.
    """

    out_shape: tuple[int, int]
    out_dtype: np.dtype

    def __call__(self, src: np.ndarray, dst: np.ndarray, first: int) -> np.ndarray: ...


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
        try:  # O_NONBLOCK: a FIFO put there after planning would block open(2) for ever (no effect on files)
            fd = os.open(self.sources[sid].path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise _source_error(self.sources[sid], exc.strerror or str(exc), index, item) from None
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            os.close(fd)
            raise _source_error(self.sources[sid], "not a regular file any more (a FIFO, device or directory)",
                                index, item)
        known = self.sources[sid].file_id
        if known is not None and (st.st_dev, st.st_ino) != known:
            # renamed over (or removed and written again) since its header was read: the plan's offsets,
            # shape and pixel type describe the other file; its images are not the particles planned
            os.close(fd)
            raise _source_error(self.sources[sid], "the stack was replaced by another file after its header "
                                "was read (a rename over it, or a new file of that name); nothing was "
                                "read from the new file", index, item)
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
        if info.dtype != plan.in_dtype:  # the other byte order (a plan of mixed stacks reads native order)
            np.frombuffer(buf[pos * frame: pos * frame + want], dtype=plan.in_dtype).byteswap(inplace=True)
    if inspect is not None:  # once per batch: its images are items batch.first.. in buffer order
        images = np.frombuffer(buf[: batch.count * frame], dtype=plan.in_dtype)
        inspect(images.reshape(batch.count, *plan.in_shape), batch.first)


def _advise(plan: GatherPlan, batch: Batch, files: _SourceFiles) -> None:
    """Ask the kernel to start fetching a batch's images (helps cold caches).

    Only advice: a source it cannot open (gone, unreadable) is skipped, and the
    batch's own read reports it, in batch order (the advice runs up to
    ``readahead_bytes`` ahead, before an earlier batch may fail).
    """
    frame = plan.in_image_bytes
    for sid, sidx, pos, count in batch.runs.tolist():
        try:
            fd = files.fd(sid, sidx, batch.first + pos)
            os.posix_fadvise(fd, plan.sources[sid].data_offset + sidx * frame, count * frame,
                             os.POSIX_FADV_WILLNEED)
        except (OSError, DataError):
            continue


class _Feed:
    """Hands the batches to the worker threads, in batch order (each worker has a buffer of its own).

    The claimer also asks the kernel to read ahead (``POSIX_FADV_WILLNEED``).
    """

    def __init__(self, plan: GatherPlan, stop: threading.Event, readahead: int):
        self.plan, self.stop, self.readahead = plan, stop, readahead
        self.lock = threading.Lock()
        self.next = 0  # next batch to claim
        self.last = len(plan.batches)  # claims stop here (lowered when a batch fails)
        self.advised = self.ahead = 0  # batches handed to the kernel's read-ahead; their bytes not read yet
        self.can_advise = hasattr(os, "posix_fadvise") and readahead > 0
        self.files = _SourceFiles(plan.sources)  # for the advice only (used under the lock)

    def claim(self) -> int | None:
        """The next batch; None when there is nothing left (or a stop)."""
        plan = self.plan
        with self.lock:
            if self.next >= self.last or self.stop.is_set():
                return None
            b = self.next
            self.next += 1
            if self.can_advise:
                while self.advised < len(plan.batches) and (self.advised <= b or self.ahead < self.readahead):
                    _advise(plan, plan.batches[self.advised], self.files)
                    self.ahead += plan.batches[self.advised].count * plan.in_image_bytes
                    self.advised += 1
                self.ahead -= plan.batches[b].count * plan.in_image_bytes
            return b

    def failed(self, b: int) -> None:
        """Batch ``b`` failed: no later batch is claimed (the writer stops at ``b``)."""
        with self.lock:
            self.last = min(self.last, b + 1)

    def close(self) -> None:
        with self.lock:
            self.files.close()


def _worker(run: "_Run", finished: threading.Event) -> None:
    """One worker: claims batches in order, and reads, checks, transforms and writes each.

    Messages on ``run.ready``: ``(b, None)`` for a batch written, ``(b, exception)``
    for a batch that failed (raised by the caller once every earlier batch is
    done, so the error is the first in batch order whatever the timing),
    ``(-1, exception)`` for any other failure (raised at once), and
    ``(None, None)`` when this thread is done; ``finished`` is set last of all.
    """
    feed, plan = run.feed, run.plan
    files = _SourceFiles(plan.sources)
    buf = scratch = None
    try:  # (nothing above can fail: the caller waits for this thread's last message and ``finished``)
        while True:
            b = feed.claim()
            if b is None:
                break
            try:
                if buf is None:  # on demand and uninitialised: zero-filling would delay the first read
                    buf = memoryview(np.empty(plan.batch_items * plan.in_image_bytes, np.uint8))
                batch = plan.batches[b]
                _read_batch(plan, batch, buf, files, run.inspect)
                if run.needs_scratch and scratch is None:
                    scratch = np.empty((plan.batch_items, *plan.out_shape), dtype=plan.out_dtype)
                run.write_batch(batch, buf, scratch)
            except BaseException as exc:
                feed.failed(b)
                run.ready.put((b, exc))
                break
            run.ready.put((b, None))
    except BaseException as exc:  # outside a batch (the read-ahead advice, a buffer): handed over at once
        feed.failed(-1)
        run.ready.put((-1, exc))
    finally:
        try:
            files.close()
        finally:
            run.ready.put((None, None))
            finished.set()


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

    ``fallocate(2)`` itself, not ``os.posix_fallocate``: where the file system lacks it, glibc's emulation
    would write a byte into every block first.  There the stack is written as before (delayed allocation).
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


class _Run:
    """One execution of a plan: what the workers share (the feed, the output files, the transform)."""

    def __init__(self, plan: GatherPlan, transform, feed: _Feed, on_write, drop_written: bool, preallocate: bool):
        self.plan, self.transform, self.feed = plan, transform, feed
        self.inspect = getattr(transform, "inspect", None)
        self.needs_scratch = transform is not None or plan.out_dtype != plan.in_dtype
        self.on_write, self.preallocate = on_write, preallocate
        self.drop_written = drop_written and hasattr(os, "posix_fadvise")
        self.ready: queue.Queue = queue.Queue()
        # a worker waiting for the kernel's inode lock spins on its core (perf: rwsem_spin_on_owner, 7 % of a
        # hot restack's CPU); waiting for this lock it sleeps
        self.write_lock = threading.Lock()
        self.lock = threading.Lock()  # the output files and the pages lagging behind
        self.files: dict[int, AtomicFile] = {}  # output number -> its temp file; published at the very end
        self.left = [0] * len(plan.outputs)  # batches of each output not yet written
        for batch in plan.batches:
            self.left[batch.out] += 1
        self.lagging: list[tuple[int, int, int]] = []  # (fd, offset, nbytes) written, pages not dropped yet

    def _output_fd(self, batch: Batch) -> int:
        """The descriptor of the batch's output stack, created (reserved, with its header) on first use."""
        with self.lock:
            f = self.files.get(batch.out)
            if f is None:
                plan, out = self.plan, self.plan.outputs[batch.out]
                # Not durable here: a caller that needs it syncs the batch (the SSD cache).
                f = self.files[batch.out] = AtomicFile(out.path, durable=False)  # (removed by abort() if what follows fails)
                if self.preallocate:
                    _preallocate(f.fh.fileno(), HEADER_BYTES + out.count * plan.out_image_bytes, out)
                header = make_header(plan.out_shape[1], plan.out_shape[0], out.count,
                                     mode_for_dtype(plan.out_dtype), out.voxel_size or plan.voxel_size,
                                     dmin=0.0, dmax=-1.0, dmean=-2.0, rms=-1.0)  # "not computed"
                _write_all(f.fh.fileno(), header, 0, out, batch.first)
            return f.fh.fileno()

    def write_batch(self, batch: Batch, buf: memoryview, scratch: np.ndarray | None) -> None:
        """Transform a batch read into ``buf`` and write it into its place in its output stack."""
        plan = self.plan
        ny, nx = plan.in_shape
        src = np.frombuffer(buf, dtype=plan.in_dtype, count=batch.count * ny * nx).reshape(batch.count, ny, nx)
        if self.transform is not None:
            data = self.transform(src, scratch[:batch.count], batch.first)
            want = (batch.count, *plan.out_shape)
            if not isinstance(data, np.ndarray) or data.shape != want or data.dtype != plan.out_dtype:
                # written as it is, it would spill into the next batch's place (in a file that looks fine)
                raise TypeError(f"gather: the transform {type(self.transform).__name__} returned "
                                f"{getattr(data, 'shape', type(data).__name__)} {getattr(data, 'dtype', '')} "
                                f"for particles {batch.first}..; the plan writes {want} {plan.out_dtype}")
            data = np.ascontiguousarray(data)  # (a view, e.g. a flip: copied)
        elif scratch is not None:
            data = scratch[:batch.count]
            data[...] = src
        else:
            data = src
        out = plan.outputs[batch.out]
        fd = self._output_fd(batch)
        offset = HEADER_BYTES + (batch.first - out.first) * plan.out_image_bytes
        nbytes = batch.count * plan.out_image_bytes
        # one writer at a time: the kernel serialises writes into a file anyway (the inode lock)
        with self.write_lock:
            _write_all(fd, data, offset, out, batch.first)
        if self.on_write is not None:
            self.on_write(fd, offset, nbytes)
        with self.lock:
            if self.drop_written:
                _drop_behind(self.lagging, fd, offset, nbytes)
            self.left[batch.out] -= 1
            if self.left[batch.out] == 0:  # complete: free its descriptor (outputs can be many)
                for entry in [x for x in self.lagging if x[0] == fd]:  # before the descriptor closes
                    self.lagging.remove(entry)
                    os.posix_fadvise(*entry, os.POSIX_FADV_DONTNEED)
                self.files[batch.out].close()

    def abort(self) -> None:
        """Remove every temp file (only once no worker runs)."""
        for f in self.files.values():
            f.abort()


def _remove_if(path: Path, inode: int) -> None:  # if it is the file we renamed there (else it stays)
    try:
        if os.stat(path).st_ino == inode:
            path.unlink()
    except OSError:
        pass


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
        ``transform(src, dst, first) -> array to write``, called on a
        worker thread once per batch, after its optional ``inspect`` method
        (see :class:`BatchTransform`).
    depth : int
        At most this many batch buffers (batches in flight): the workers are
        ``min(readers, depth)``.
    readers : int
        Worker threads, each reading, checking, transforming and writing a
        batch of its own.  Two by default: one's reads and checks overlap
        with the other's writes (the writes into one file are serialised by
        the kernel anyway), and on a cold cache two reads keep the disk
        busier.  Batches are claimed in order; the transform and its
        ``inspect`` may run on two threads at once, on distinct items.
    readahead_bytes : int
        How far ahead of the reader the kernel is asked to fetch images (0: not at all).
    progress : callable, optional
        ``progress(particles_done, particles_total, bytes_done, bytes_total)``
        after each batch; bytes count what was written.
    check_cancel : callable, optional
        Called between batches; whatever it raises aborts the copy.
    on_write : callable, optional
        ``on_write(fd, offset, nbytes)`` on the worker thread after each batch
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
    stop = threading.Event()
    n_workers = max(1, min(int(readers), max(1, int(depth)), len(plan.batches)))
    feed = _Feed(plan, stop, int(readahead_bytes))
    run = _Run(plan, transform, feed, on_write, drop_written, preallocate)
    finished = [threading.Event() for _ in range(n_workers)]
    threads = [threading.Thread(target=_worker, name=f"gather-worker-{k}", daemon=True, args=(run, finished[k]))
               for k in range(n_workers)]

    def halt() -> None:
        """No batch is claimed any more, and every worker has stopped (each finishes its batch first).

        A second Ctrl-C meanwhile is raised once they have (the temp files go only then: a running worker
        could write through a closed, reused descriptor).  Their own events, not ``join``: an interrupted
        ``Thread.join`` marks a running thread stopped (CPython 3.11), and later joins return at once.
        """
        pending = None
        while True:
            try:
                stop.set()
                feed.failed(-1)
                for thread, done in zip(threads, finished):
                    if thread.ident is not None:
                        done.wait()
                for thread in threads:
                    if thread.ident is not None:
                        thread.join()  # (their last few bytecodes)
                break
            except BaseException as exc:
                pending = pending or exc
        if pending is not None:
            raise pending

    renamed: list[Path] = []
    committing: tuple[Path, int] | None = None
    complete = False
    done_items = done_bytes = written = 0
    failures: dict[int, BaseException] = {}  # batch -> its error; the first in batch order is raised
    running = n_workers
    try:
        for thread in threads:
            thread.start()
        while running:
            try:
                got, payload = run.ready.get(timeout=0.1)
            except queue.Empty:
                if check_cancel is not None:
                    check_cancel()
                continue
            if got is None:
                running -= 1
            elif got < 0:
                raise payload
            elif payload is not None:
                failures[got] = payload
            else:
                batch = plan.batches[got]
                written += 1
                done_items += batch.count
                done_bytes += batch.count * plan.out_image_bytes
                if progress is not None:
                    progress(done_items, plan.n_items, done_bytes, plan.n_items * plan.out_image_bytes)
                if check_cancel is not None:
                    check_cancel()
        if failures:
            raise failures[min(failures)]
        if written != len(plan.batches):  # every worker is done, and a batch was never written (cannot happen)
            raise RuntimeError(f"gather: {len(plan.batches) - written} of {len(plan.batches)} batches were never written")
        for k in sorted(run.files):
            f = run.files[k]
            committing = (f.path, os.stat(f.tmp).st_ino)  # an interrupt right after its rename: ours to remove
            renamed.append(f.commit())
            committing = None
        complete = True
        return renamed
    finally:  # (one finally, not an except clause too: an interrupt on the way in cannot skip a step)
        try:
            halt()  # before any temp file is removed: no worker writes into it afterwards
        finally:  # (also when halt() raises a second interrupt: the workers are stopped by then)
            if not complete:
                run.abort()
                for path in renamed:  # all outputs or none
                    path.unlink(missing_ok=True)
                if committing is not None:
                    _remove_if(*committing)
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
