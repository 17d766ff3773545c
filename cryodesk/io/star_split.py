"""A large STAR loop body split into columns by two threads (the read side of :mod:`cryodesk.io.star`).

The same columns as :func:`cryodesk.io.star_numbers.split_columns` (one pass
of ``_scan`` and one of ``_fill`` over the whole body): the body is cut at a
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
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from cryodesk.io import star_numbers

__all__ = ["split_body", "find_body_end", "THREADS", "MIN_PARALLEL"]

#: threads (and parts of a body)
THREADS = 2
#: bodies smaller than this are split by one thread
MIN_PARALLEL = 1 << 22
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
    cuts = [0] + [_cut(buf, n * q // parts) for q in range(1, parts)] + [n]
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:])]


def split_body(buf: np.ndarray, ncols: int) -> tuple[list[np.ndarray] | None, int | None]:
    """What ``star_numbers.split_columns(buf, ncols)`` gives, the work shared by :data:`THREADS` threads.

    Also the number of newlines in ``buf`` when the threads counted them (None when not).
    """
    ks = _kernels()
    if ks is None or THREADS < 2 or len(buf) < MIN_PARALLEL:
        return star_numbers.split_columns(buf, ncols), None
    _, rk = ks
    ranges = _parts(len(buf), buf, THREADS)
    sn = star_numbers
    with ThreadPoolExecutor(THREADS, thread_name_prefix="star-split") as pool:
        scans = list(pool.map(lambda r: rk._scan_part(buf, r[0], r[1], ncols, sn._SPECIAL, sn._KEYWORDS,
                                                      sn._KEYLEN), ranges))
        if any(scan[0] for scan in scans):
            return None, None
        firsts = np.cumsum([0] + [scan[1] for scan in scans]).tolist()
        total = firsts[-1]
        if total % ncols:
            return None, None
        widths = np.zeros(ncols, dtype=np.int64)
        for (_, _, w, _), first in zip(scans, firsts):
            cols = (first + np.arange(ncols)) % ncols  # the column of the part's token r is (first + r) % ncols
            np.maximum.at(widths, cols, w)
        rows = total // ncols
        widths = np.maximum(widths, 1)
        offsets = np.concatenate([[0], np.cumsum(widths * rows)]).astype(np.int64)
        out = np.zeros(int(offsets[-1]), dtype=np.uint8)
        list(pool.map(lambda a: rk._fill_part(buf, a[0][0], a[0][1], ncols, a[1], widths, offsets, out),
                      zip(ranges, firsts)))
    return [out[offsets[j]:offsets[j + 1]].view(f"S{widths[j]}") for j in range(ncols)], sum(s[3] for s in scans)


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
