"""The bytes of a large STAR file in memory the reader can hand back as it goes (the read side of :mod:`cryodesk.io.star`).

On this kind of machine (a VM whose free memory the host takes back) every
megabyte a process touches for the first time costs ~1-3 ms of system time,
so a 561 MB particle file read into ``bytes`` and then split into a 560 MB
column buffer paid for both.  A large file is read instead into private
anonymous memory (huge pages where the kernel offers them) and the splitter
releases each stretch of it once its tokens are in the columns
(:meth:`RawText.release`): the column buffer's pages are then mostly the ones
just released, not fresh ones (what costs is the peak: pages given back and
taken again within moments are the guest's own, not the host's).  Anonymous memory, not a mapping of the file:
a file truncated by another process while it is read cannot kill the reader
(SIGBUS); it is read again as ``bytes`` if its size changed.

API summary
-----------
``read_raw(path) -> bytes | RawText``   (``RawText`` for a file of :data:`RAW_BYTES` or more)
``RawText``: an ``mmap`` with the ``bytes`` methods the reader uses (``count``, ``decode``) and ``release(lo, hi)``
``zeroed(size) -> ndarray[uint8]``        zeros in such memory (the splitter's column buffer of a large body)
``release_array(arr) -> bool``            give back the memory of ``arr`` when it lies in such memory
``owner_of(arr) -> RawText | None``       the memory ``arr`` lies in

The same holds for the column buffer of a large body (:func:`zeroed`): the
STAR import (``star_to_cs(..., consume=True)``) gives back each column once it
has what it needs from it (:func:`release_array`), so that what it builds next
reuses those pages.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path

import numpy as np

try:
    from numpy.lib.array_utils import byte_bounds
except ImportError:  # pragma: no cover - numpy < 2
    from numpy import byte_bounds

__all__ = ["read_raw", "RawText", "RAW_BYTES", "zeroed", "release_array", "owner_of"]

#: files at least this big are read into a :class:`RawText`
RAW_BYTES = 1 << 24
#: released stretches are whole huge pages (a partial one would be split, and its pages not reused as one)
_HUGE = 1 << 21


class RawText(mmap.mmap):
    """A file's bytes in private anonymous memory: ``find``, ``rfind``, slicing, ``re`` and the buffer protocol
    of ``mmap``, ``count`` and ``decode`` as ``bytes`` has them, and :meth:`release`."""

    def count(self, sub: bytes, start: int = 0, end: int | None = None) -> int:
        end = len(self) if end is None else min(end, len(self))
        step = 1 << 24
        return sum(self[a:min(a + step + len(sub) - 1, end)].count(sub) for a in range(start, end, step))

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self[:].decode(encoding, errors)

    def release(self, lo: int, hi: int) -> None:
        """Give the whole huge pages inside ``[lo, hi)`` back to the system; they read as zeros afterwards.

        Only for bytes nothing reads again (the caller's promise).
        """
        base = np.frombuffer(self, dtype=np.uint8).ctypes.data
        a = -(-(base + lo) // _HUGE) * _HUGE - base
        b = (base + hi) // _HUGE * _HUGE - base
        if b > a and hasattr(mmap, "MADV_DONTNEED"):  # (elsewhere the memory simply stays until freed)
            self.madvise(mmap.MADV_DONTNEED, a, b - a)


def _anonymous(size: int) -> RawText:
    """Private anonymous memory of ``size`` bytes (zeros); OSError/ValueError/TypeError where none can be made
    (TypeError: a platform whose ``mmap`` has no ``flags``)."""
    raw = RawText(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    if hasattr(mmap, "MADV_HUGEPAGE"):
        try:
            raw.madvise(mmap.MADV_HUGEPAGE)
        except OSError:
            pass
    return raw


def zeroed(size: int) -> np.ndarray:
    """``np.zeros(size, uint8)`` in private anonymous memory (see :func:`release_array`); ``np.zeros`` when
    smaller than :data:`RAW_BYTES` or when no such mapping can be made."""
    if size < RAW_BYTES:
        return np.zeros(size, dtype=np.uint8)
    try:
        return np.frombuffer(_anonymous(size), dtype=np.uint8)
    except (OSError, ValueError, TypeError, AttributeError):
        return np.zeros(size, dtype=np.uint8)


def owner_of(arr) -> RawText | None:
    """The :class:`RawText` whose memory ``arr`` is a view of, or None."""
    owner = arr
    while isinstance(owner, (np.ndarray, memoryview)):
        owner = owner.base if isinstance(owner, np.ndarray) else owner.obj
    return owner if isinstance(owner, RawText) else None


def release_array(arr: np.ndarray) -> bool:
    """Give back the whole huge pages under ``arr`` when it is a view of :func:`zeroed` or :func:`read_raw`
    memory (True), else do nothing (False).  ``arr`` and every view of those bytes read as zeros afterwards:
    only for data nothing reads again (the caller's promise)."""
    owner = owner_of(arr)
    if owner is None or owner.closed or arr.size == 0:
        return False
    start = np.frombuffer(owner, dtype=np.uint8).ctypes.data
    lo, hi = byte_bounds(arr)
    owner.release(lo - start, hi - start)
    return True


def read_raw(path: Path) -> bytes | RawText:
    """The bytes of the file at ``path``: a :class:`RawText` when it has :data:`RAW_BYTES` or more (and its size
    does not change while it is read), else ``bytes``.  OSError as ``open`` and ``read`` raise it."""
    with open(path, "rb", buffering=0) as fh:
        size = os.fstat(fh.fileno()).st_size
        if size < RAW_BYTES:
            return fh.read()
        try:
            raw = _anonymous(size)
        except (OSError, ValueError, TypeError, AttributeError):  # no such mapping here: read as before
            return fh.read()
        view = memoryview(raw)
        try:
            got = 0
            while got < size:
                k = fh.readinto(view[got:])
                if not k:
                    break
                got += k
            grew = got == size and fh.read(1) != b""
        finally:
            view.release()
        if got == size and not grew:
            return raw
        raw.close()  # the file changed size while it was read: read it again, as it is now
        fh.seek(0)
        return fh.read()
