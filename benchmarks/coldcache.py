"""The benchmarks' cold mode: evict only the benchmark's own files from the page cache; and their hot mode.

Cold: ``fsync`` first (``POSIX_FADV_DONTNEED`` skips dirty pages), then drop the
file's pages; never the whole system's caches.  Links are not followed and
files that vanished or cannot be opened are skipped.

Hot: :func:`warm` reads the files into the page cache right before a timed run and says how much of them
was still there (``mincore``).  Data read a minute ago is not necessarily still in memory: this VM's
DAMON (``kdamond``, action ``pageout``) drops page-cache pages that were not accessed for 60 s, up to
128 MB/s, and a restack of a 20 % subset touches only a fifth of each source's pages.
"""

from __future__ import annotations

import ctypes
import mmap
import os
from pathlib import Path
from typing import Iterable

__all__ = ["evict", "evict_tree", "warm", "resident"]


def evict(paths: Iterable[Path | str]) -> None:
    """Write back and drop the pages of these files."""
    for p in paths:
        try:
            fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def evict_tree(root: Path | str) -> None:
    """:func:`evict` every regular file below ``root``."""
    evict(os.path.join(d, f) for d, _, files in os.walk(root) for f in files)


_libc = None


def _mincore():
    global _libc
    if _libc is None:
        lib = ctypes.CDLL(None, use_errno=True)
        lib.mmap.restype, lib.mmap.argtypes = ctypes.c_void_p, (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                                                                ctypes.c_int, ctypes.c_int, ctypes.c_long)
        lib.munmap.argtypes = (ctypes.c_void_p, ctypes.c_size_t)
        lib.mincore.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p)
        _libc = lib
    return _libc


def resident(paths: Iterable[Path | str]) -> tuple[int, int]:
    """(bytes in the page cache, bytes in all) of these files (``mincore`` of a read-only mapping, which
    faults nothing in); files that cannot be opened or mapped count as not resident."""
    lib, page = _mincore(), mmap.PAGESIZE
    have = total = 0
    for p in paths:
        try:
            fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            size = os.fstat(fd).st_size
            total += size
            if not size:
                continue
            addr = lib.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
            if addr in (None, ctypes.c_void_p(-1).value):
                continue
            try:
                vec = ctypes.create_string_buffer((size + page - 1) // page)
                if lib.mincore(addr, size, vec) == 0:
                    have += min(size, sum(b & 1 for b in vec.raw) * page)
            finally:
                lib.munmap(addr, size)
        finally:
            os.close(fd)
    return have, total


def warm(paths: Iterable[Path | str]) -> float:
    """Read these files into the page cache; the fraction of their bytes that was there already."""
    paths = list(paths)
    have, total = resident(paths)
    for p in paths:
        with open(p, "rb", buffering=0) as fh:
            while fh.read(16 << 20):
                pass
    return have / total if total else 1.0
