"""A large STAR loop body split into columns by two threads (the read side of :mod:`cryodesk.io.star`).

The same columns as :func:`cryodesk.io.star_numbers.split_columns` (the same
two kernels, ``_scan_part`` and ``_fill_part``, in one pass each over the whole body): the body is cut at a
blank byte into parts, each part is checked and measured by its own thread
(``_scan_part``: token count, widths by token position), the parts' widths are
combined once the token count before each part is known, and each thread
fills its part's tokens into the one shared column buffer (``_fill_part``).
The kernels release the GIL, so on two cores the split takes about half the time.
Whether a body is plain (else None: the token parser decides) is decided by
the same rules, so the result is the same in every case.

API summary
-----------
``split_body(buf, ncols) -> (list[ndarray[S]] | None, newlines | None)``   (uint8 ``buf``: a loop body)
``find_body_end(raw, pos) -> int``                      (:func:`cryodesk.io.star_numbers.body_end`)
``prescan(raw, pos, ncols) -> Prescan | None``          the body's end found while it is checked (one pass less)
``warm(size) -> Thread | None``                          numba and the read kernels loaded while a large file is read
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable

import numpy as np

from cryodesk.base.preload import preload
from cryodesk.io import star_numbers
from cryodesk.io.star_raw import zeroed

__all__ = ["split_body", "find_body_end", "prescan", "Prescan", "warm", "THREADS", "MIN_PARALLEL"]

#: threads (and parts of a body)  (the cores this process may use, at most 4: each thread streams memory)
THREADS = max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))
#: bodies smaller than this are split by one thread
MIN_PARALLEL = 1 << 22
#: a large body is scanned (and filled, and released) in parts of about this size, :data:`THREADS` at a time
PART_BYTES = 1 << 24
_BLANK = np.zeros(256, dtype=bool)
_BLANK[[32, 9, 10, 13]] = True


def _kernels():
    if star_numbers.implementation() != "numba":
        return None
    from cryodesk.io import _star_kernels, _star_read_kernels

    return _star_kernels, _star_read_kernels


def _cut(buf: np.ndarray, at: int) -> int:
    """The first blank byte (space, tab, LF, CR) at or after ``at`` (``len(buf)`` if none)."""
    n = len(buf)
    step = 4096
    while at < n:
        hits = np.flatnonzero(_BLANK[buf[at:at + step]])
        if hits.size:
            return at + int(hits[0])
        at += step
    return n


def _parts(n: int, buf: np.ndarray, parts: int) -> list[tuple[int, int]]:
    cuts = [0]
    for q in range(1, parts):  # (a cut never before the one before it: a token longer than a part)
        cuts.append(max(cuts[-1], _cut(buf, n * q // parts)))
    cuts.append(n)
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:])]


def split_body(buf: np.ndarray, ncols: int, pre: Prescan | None = None,
               release: Callable[[int, int], None] | None = None) -> tuple[list[np.ndarray] | None, int | None]:
    """What ``star_numbers.split_columns(buf, ncols)`` gives, the work shared by :data:`THREADS` threads.

    Also the number of newlines in ``buf`` when the threads counted them (None
    when not).  ``pre``: the body's scan, already done by :func:`prescan`.
    ``release(lo, hi)``: called (with ``pre``) once the tokens of ``buf[lo:hi]``
    are in the columns, for each part in turn (the caller frees those bytes:
    the columns' memory is then mostly theirs, see :mod:`cryodesk.io.star_raw`).
    """
    ks = _kernels()
    if ks is None or (pre is None and (THREADS < 2 or len(buf) < MIN_PARALLEL)):
        return star_numbers.split_columns(buf, ncols), None
    _, rk = ks
    sn = star_numbers
    with ThreadPoolExecutor(THREADS, thread_name_prefix="star-split") as pool:
        if pre is not None:
            ranges, scans = pre.ranges, pre.scans
        else:
            ranges = _parts(len(buf), buf, THREADS)
            scans = list(pool.map(lambda r: rk._scan_part(buf, r[0], r[1], ncols, sn._KEYWORDS, sn._KEYLEN, 0,
                                                          False), ranges))
            if any(scan[0] for scan in scans):
                return None, None
        firsts = np.cumsum([0] + [scan[1] for scan in scans]).tolist()
        total = firsts[-1]
        if total % ncols:
            return None, None
        widths = np.zeros(ncols, dtype=np.int64)
        for scan, first in zip(scans, firsts):
            cols = (first + np.arange(ncols)) % ncols  # the column of the part's token r is (first + r) % ncols
            np.maximum.at(widths, cols, scan[2])
        rows = total // ncols
        widths = np.maximum(widths, 1)
        offsets = np.concatenate([[0], np.cumsum(widths * rows)]).astype(np.int64)
        out = zeroed(int(offsets[-1]))  # (memory its columns can give back one by one: star_raw)

        def fill(part: tuple) -> None:
            (lo, hi), first = part
            rk._fill_part(buf, lo, hi, ncols, first, widths, offsets, out)
            if release is not None and pre is not None:
                release(lo, hi)

        list(pool.map(fill, zip(ranges, firsts)))
    lines = pre.lines if pre is not None else sum(scan[3] for scan in scans)
    return [out[offsets[j]:offsets[j + 1]].view(f"S{widths[j]}") for j in range(ncols)], lines


@dataclass
class Prescan:
    """A large loop body checked and measured while its end was looked for (see :func:`prescan`).

    ``first``: what ``body_end(raw, pos)`` gives; ``ranges`` (relative to the
    body's start) and ``scans``: its parts, for :func:`split_body`; ``lines``:
    the newlines of the body once :meth:`trim` has been told where it ends.
    """

    pos: int
    first: int
    stop: int
    ranges: list
    scans: list
    lines: int

    def trim(self, raw: bytes, end: int) -> Prescan | None:
        """This scan for the body ``raw[pos:end]`` (``end`` after trailing blank and comment lines), or None.

        None when a comment line that stopped the scan is not trailing (rows
        follow it): the body is not plain then, as the one-pass scan would find.
        """
        if self.stop >= 0 and end > self.stop:
            return None
        upto = self.stop if self.stop >= 0 else (self.first + 1 if self.first >= 0 else len(raw))
        lines = self.lines - raw.count(b"\n", end, upto)
        ranges = [(a, min(b, end - self.pos)) for a, b in self.ranges]
        return Prescan(self.pos, self.first, self.stop, ranges, self.scans, lines)


def prescan(raw: bytes, pos: int, ncols: int) -> Prescan | None:
    """The end of the loop body at ``pos`` (as ``body_end``) found while its tokens are checked and measured.

    None when a token is not plain (the one-pass path decides then) or without
    the kernels or for a small remainder.  The text is scanned a window first
    (a small body, e.g. ``data_optics``, ends there), the rest by two threads.
    """
    ks = _kernels()
    n = len(raw)
    if ks is None or THREADS < 2 or ncols < 1 or n - pos < MIN_PARALLEL:
        return None
    _, rk = ks
    buf = np.frombuffer(raw, dtype=np.uint8)
    sn = star_numbers
    near = _cut(buf, pos + MIN_PARALLEL)
    parts = THREADS * max(1, -(-(n - near) // (THREADS * PART_BYTES)))
    rest = [(a + near, b + near) for a, b in _parts(n - near, buf[near:], parts) if b > a] if near < n else []
    scans = [rk._scan_part(buf, pos, near, ncols, sn._KEYWORDS, sn._KEYLEN, pos, True)]
    ranges = [(pos, near)]
    if scans[0][0] == 0 and rest:
        with ThreadPoolExecutor(THREADS, thread_name_prefix="star-scan") as pool:
            scans += pool.map(lambda r: rk._scan_part(buf, r[0], r[1], ncols, sn._KEYWORDS, sn._KEYLEN, pos, True),
                              rest)
        ranges += rest
    used, used_ranges = [], []
    first = stop = -1
    for (status, ntok, widths, lines, at), (a, b) in zip(scans, ranges):
        if status == 1:
            return None
        used.append((status, ntok, widths, lines))
        used_ranges.append((a - pos, (at if status else b) - pos))
        if status == 2:
            first = at
            break
        if status == 3:  # a comment line: where the body ends is body_end's answer from there
            stop = at
            first = sn.body_end(raw, at)
            break
    return Prescan(pos, first, stop, used_ranges, used, sum(u[3] for u in used))


def find_body_end(raw: bytes, pos: int) -> int:
    """``star_numbers.body_end(raw, pos)``, the two halves searched at once for a large text."""
    ks = _kernels()
    n = len(raw)
    if ks is None or THREADS < 2 or n - pos < MIN_PARALLEL:
        return star_numbers.body_end(raw, pos)
    k, _ = ks
    buf = np.frombuffer(raw, dtype=np.uint8)
    near = pos + MIN_PARALLEL  # a small body first (the optics table before the particles): one thread
    hit = int(k._body_end(buf[:near + 6], pos))
    if 0 <= hit < near:
        return hit
    pos = near
    mid = pos + (n - pos) // 2
    # the first half sees 6 bytes past mid, so a match at t < mid is found with its whole word
    with ThreadPoolExecutor(2, thread_name_prefix="star-end") as pool:
        first, second = pool.map(lambda a: int(k._body_end(buf[:a[1]], a[0])), ((pos, mid + 6), (mid, n)))
    return first if 0 <= first < mid else second


def warm(size: int) -> threading.Thread | None:
    """Load numba and the read kernels (each from its cache) in a thread, for a STAR file of ``size`` bytes.

    Their first load costs 1-2 s of CPU in every process; started before a
    large file is read, it overlaps the read (which releases the GIL).  The
    kernels are called on tiny inputs of the types the reader gives them, so
    what is loaded is what the reader then calls.  None for a small file.
    """
    if size < MIN_PARALLEL or THREADS < 2:
        return None
    from cryodesk.io import poses_from_star  # the pose pass of the STAR import
    from cryodesk.io.star_raw import RAW_BYTES

    return preload("star-warm", lambda: _warm(size >= RAW_BYTES), poses_from_star.warm)


def _warm(writable: bool = False) -> None:
    ks = _kernels()
    if ks is None:
        return
    k, rk = ks
    sn = star_numbers
    # read-only, as a file's bytes; writable, as star_raw.read_raw's memory for a large file (another type)
    buf = np.frombuffer(bytearray(b"1 2\n") if writable else b"1 2\n", dtype=np.uint8)
    rk._scan_part(buf, 0, len(buf), 2, sn._KEYWORDS, sn._KEYLEN, 0, True)
    rk._fill_part(buf, 0, len(buf), 2, 0, np.ones(2, np.int64), np.arange(3, dtype=np.int64),
                  np.zeros(2, np.uint8))
    chars = np.frombuffer(b"1@ab", dtype=np.uint8).copy().reshape(1, 4)
    k._parse_floats(chars)
    k._parse_uints(chars)
    ok, idx0, start, length, width = rk._image_names(chars)
    rk._copy_paths(chars, start, length, np.zeros((1, 4), np.uint8))
    rk._path_runs(chars, start, length)
