"""Runs of equal values in a column, and its distinct values in first-seen order.

API summary
-----------
``run_starts(values) -> ndarray[bool]``
    True where a row differs from the row before it (and at row 0): what
    ``values[1:] != values[:-1]`` gives, fast for fixed-width strings.
``unique_first(values) -> (distinct values in first-seen order, inverse)``
    Fast for columns whose values come in runs (stack paths): one compare
    pass, then a sort of the run heads only.
"""

from __future__ import annotations

import numpy as np

__all__ = ["run_starts", "unique_first"]

#: rows compared at a time by the word-wise string compare (a few hundred kB of scratch)
_CHUNK_ROWS = 1 << 13


def run_starts(values) -> np.ndarray:
    """``True`` at row 0 and wherever a row's value differs from the previous row's.

    A fixed-width string (``S``/``U``) column is compared as 64-bit words of
    its bytes: numpy compares such strings a character at a time (~0.5 s for
    a million ``S139`` paths), the words take a few tens of milliseconds.  Two
    fixed-width strings of one dtype are equal exactly when their bytes are
    (numpy pads a value with NULs to the width, and strips only trailing
    NULs), so the answer is numpy's.
    """
    arr = np.asarray(values)
    n = len(arr)
    starts = np.empty(n, dtype=bool)
    if n == 0:
        return starts
    starts[0] = True
    dt = arr.dtype
    if arr.ndim != 1 or dt.kind not in "SU" or dt.itemsize < 16 or n < 2:
        np.not_equal(arr[1:], arr[:-1], out=starts[1:])
        return starts
    width = dt.itemsize
    words = np.zeros((min(n, _CHUNK_ROWS + 1), -(-width // 8)), dtype=np.uint64)  # the tail word zero-padded
    as_str = words.view(np.uint8)[:, :width].view(dt)[:, 0]  # the same memory, one string a row
    for a in range(0, n - 1, _CHUNK_ROWS):
        b = min(n, a + _CHUNK_ROWS + 1)  # rows a..b-1: the pairs (a, a+1) .. (b-2, b-1)
        m = b - a
        as_str[:m] = arr[a:b]
        diff = starts[a + 1:b]
        np.not_equal(words[1:m, 0], words[:m - 1, 0], out=diff)
        for j in range(1, words.shape[1]):  # (a column at a time: faster than any() over short rows)
            diff |= words[1:m, j] != words[:m - 1, j]
    return starts


def unique_first(values) -> tuple[np.ndarray, np.ndarray]:
    """Distinct values of a 1-D column in first-seen order, and each row's index into them.

    Particle columns such as ``blob/path`` come in runs (a stack's particles
    together): one vectorised compare finds the runs (:func:`run_starts`),
    and only the run heads are sorted, so a million rows of a few thousand
    paths cost a few milliseconds instead of a string sort of the whole
    column.  Any order of values is handled (a shuffled column just has as
    many runs as rows).
    """
    arr = np.asarray(values)
    n = len(arr)
    if n == 0:
        return arr[:0], np.zeros(0, dtype=np.int64)
    starts = run_starts(arr)
    heads = np.flatnonzero(starts)
    uniq, first, inv_heads = np.unique(arr[heads], return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # first-seen order
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    run_of_row = np.cumsum(starts) - 1
    return uniq[order], rank[np.asarray(inv_heads).ravel()][run_of_row]
