"""Copying one file into the cache so that a half-copied file is never used.

The copy goes to a temporary name beside the destination, gets the source's
mtime (the cache's validity test is size + mtime), is made durable and only
then renamed into place: a reader sees either nothing or the complete file,
even after a crash or ``kill -9`` of the copier.  Durability is ``fsync`` for
a single file; a stage's many files are made durable in batches with one
``syncfs`` each (:func:`sync_filesystem`, called by the acquire loop), with
writeback started while copying (:func:`start_writeback`), because a journal
commit per file costs more than the copy on ext4/xfs.

The bytes move in the kernel (``copy_file_range``, else ``sendfile``), in
chunks so cancellation and progress stay responsive; several files are
copied at once by the caller's thread pool (the system calls release the GIL).
"""

from __future__ import annotations

import ctypes
import errno
import os
import threading
from pathlib import Path
from typing import Callable

from cryodesk.base.errors import DataError
from cryodesk.base.fsio import AtomicFile, replace_from
from cryodesk.base.syncfs import sync_filesystem

__all__ = ["CacheFullError", "SourceChanged", "part_name", "part_dir", "copy_into_cache", "commit_copy",
           "sync_filesystem", "start_writeback", "WritebackPacer", "prefetch"]

CHUNK = 64 << 20
_fadvise = hasattr(os, "posix_fadvise")
_SYNC_FILE_RANGE_WRITE = 2
try:
    _libc = ctypes.CDLL(None, use_errno=True)
    _sfr = _libc.sync_file_range
    _sfr.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
except (OSError, AttributeError):  # not Linux/glibc: the final fsync does all the work
    _sfr = None


def start_writeback(fd: int, offset: int = 0, nbytes: int = 0) -> None:
    """Ask the kernel to start writing dirty pages of ``fd`` to disk now, without waiting.

    The fsync before the rename then finds most data already written:
    writing to the disk overlaps with copying instead of following it.
    """
    if _sfr is not None:
        _sfr(fd, offset, nbytes, _SYNC_FILE_RANGE_WRITE)


class WritebackPacer:
    """A thread starting writeback of every file below ``directory`` every ``interval`` s.

    For copies written by code we do not control (the subset gather).
    """

    def __init__(self, directory: Path, interval: float = 0.1):
        self.directory, self.interval = Path(directory), interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cache-writeback", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                names = os.listdir(self.directory)
            except OSError:
                return
            for name in names:
                try:
                    fd = os.open(self.directory / name, os.O_RDONLY)
                except OSError:
                    continue
                try:
                    start_writeback(fd)
                finally:
                    os.close(fd)

    def __enter__(self):
        if _sfr is not None:
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()


class CacheFullError(DataError):
    """The SSD cannot take the files (quota, reserve or a really full disk)."""


class SourceChanged(DataError):
    """The source changed while it was copied: the copy is dropped, the job reads the source."""


def part_name(dest: Path) -> Path:
    """The temporary name a copy to ``dest`` is written under (one copier per entry: the lock)."""
    return dest.with_name(f".{dest.name}.cryodesk-part")


def part_dir(dest: Path) -> Path:
    """The temporary directory a packed subset for ``dest`` is built in, then renamed to ``dest``."""
    return dest.with_name(dest.name + ".part")


def _kernel_copy(fin: int, fout: int, size: int, on_bytes: Callable[[int], None],
                 check_cancel: Callable[[], None] | None, writeback: bool = False) -> None:
    done = 0
    use_cfr = hasattr(os, "copy_file_range")
    while done < size:
        if check_cancel is not None:
            check_cancel()
        want = min(CHUNK, size - done)
        if _fadvise and done + want < size:
            # the next chunk is read from the disk while this one is written (cold sources)
            os.posix_fadvise(fin, done + want, min(CHUNK, size - done - want), os.POSIX_FADV_WILLNEED)
        n = 0
        if use_cfr:
            try:
                n = os.copy_file_range(fin, fout, want, done, done)
            except OSError as exc:
                if exc.errno not in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP):
                    raise
                use_cfr = False
        if not use_cfr:
            os.lseek(fout, done, os.SEEK_SET)
            n = os.sendfile(fout, fin, done, want)
        if n == 0:
            raise SourceChanged("the source file shrank while it was being copied")
        if writeback:
            start_writeback(fout, done, n)
        done += n
        on_bytes(n)


def prefetch(src: Path | str, size: int) -> None:
    """Ask the kernel to read the first :data:`CHUNK` bytes of ``src`` into the page cache, without waiting.

    Best effort (errors are the copy's to report); ``O_NONBLOCK``: a FIFO
    put where a stack was never blocks.
    """
    if not _fadvise:
        return
    try:
        fd = os.open(src, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return
    try:
        os.posix_fadvise(fd, 0, min(CHUNK, size), os.POSIX_FADV_WILLNEED)
    except OSError:
        pass
    finally:
        os.close(fd)


def copy_into_cache(src: Path | str, dest: Path, size: int, mtime_ns: int, *,
                    on_bytes: Callable[[int], None] = lambda n: None,
                    check_cancel: Callable[[], None] | None = None, fsync: bool = True,
                    defer: bool = False, prefetched: bool = False) -> int:
    """Copy ``src`` to ``dest`` atomically; returns the bytes written.

    ``prefetched``: the caller asked for the first :data:`CHUNK` already (:func:`prefetch`).

    With ``defer`` the complete copy stays under its temporary name
    (:func:`part_name`): the caller makes a batch durable with
    :func:`sync_filesystem` and then renames each (:func:`commit_copy`).

    Raises
    ------
    CacheFullError
        The SSD ran out of space (the partial copy is removed).
    DataError
        The source cannot be read or changed during the copy.
    """
    try:
        fin = os.open(src, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise DataError(f"cannot read {src} to cache it: {exc.strerror or exc}") from None
    try:
        if _fadvise:  # (a second WILLNEED of the same pages would walk them again: CPU per file)
            os.posix_fadvise(fin, 0, 0, os.POSIX_FADV_SEQUENTIAL)
            if not prefetched:
                os.posix_fadvise(fin, 0, min(CHUNK, size), os.POSIX_FADV_WILLNEED)
        # The fixed temp name lets the store count a copy's bytes in flight and
        # remove what a dead copier left (one copier per entry: the entry lock).
        tmp = part_name(dest)
        try:
            out = AtomicFile(dest, durable=fsync and not defer, tmp=tmp, buffered=False)
        except FileNotFoundError:  # the first copy into this directory (no mkdir per file: it locks the parent)
            dest.parent.mkdir(parents=True, exist_ok=True)
            out = AtomicFile(dest, durable=fsync and not defer, tmp=tmp, buffered=False)
        try:
            fout = out.fh.fileno()
            try:
                _kernel_copy(fin, fout, size, on_bytes, check_cancel, writeback=fsync)
            except SourceChanged:  # (the kernel copy does not know the name)
                raise SourceChanged(f"{src} shrank while it was being copied to the cache") from None
            st = os.fstat(fin)
            if st.st_size != size or st.st_mtime_ns != mtime_ns:
                raise SourceChanged(f"{src} changed while it was being copied to the cache")
            os.utime(fout, ns=(st.st_atime_ns, mtime_ns))
            if defer:
                out.close()  # complete under its temp name: commit_copy publishes it
            else:
                out.commit()
        except BaseException:
            out.abort()
            raise
        return size
    except OSError as exc:
        part_name(dest).unlink(missing_ok=True)  # AtomicFile could not even open it
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            raise CacheFullError(f"the SSD is full: copying {src} to {dest.parent} failed "
                                 f"({exc.strerror})") from None
        raise DataError(f"cannot copy {src} to the cache: {exc.strerror or exc}") from None
    finally:
        os.close(fin)


def commit_copy(dest: Path) -> None:
    """Rename a deferred copy into place (after :func:`sync_filesystem`); removed if that fails."""
    replace_from(part_name(dest), dest)
