"""The rows of a large STAR loop written by one kernel, a chunk at a time (the bytes of ``star._loop_bytes``).

:func:`star.write_star <cryodesk.io.star.write_star>` hands a loop here first;
:func:`loop_chunks` returns None (the column-at-a-time path writes it then)
without numba, for a small loop, or for a column it does not take (not one
dimension, empty text).  The columns are sorted once into kinds: floats
(float32/float64, written in their shortest exact form by
:mod:`cryodesk.io._star_write_kernels`), integers, uint64, text (``S``, with
the writer's quoting rules), and constant number columns (formatted once by
numpy).  Each chunk of rows is copied into a few row-major tables and written
by :func:`_write_rows` straight into one buffer; a value the kernel cannot
decide exactly (a float numpy must write, a text that needs quotes) comes back
to Python, which puts numpy's or ``star._quote``'s bytes in the override table
and resumes the kernel at that row, so the file is byte for byte what the
column-at-a-time path writes.  Chunks are formatted by two threads (the kernel
releases the GIL) while the previous one is written.

API summary
-----------
``loop_chunks(columns, quote, text_of, chunk_rows=32768) -> iterator[bytes-like] | None``
``warm()``   numba's first load of the row kernel, now
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator

import numpy as np

from cryodesk.io import star_columns, star_numbers

__all__ = ["loop_chunks"]

_kernels = None


def _k():
    global _kernels
    if _kernels is None:
        from cryodesk.io import _star_write_kernels

        _kernels = _star_write_kernels if _star_write_kernels.HAVE_NUMBA else False
    return _kernels or None


class _Plan:
    """How each column of a loop is written: its kind, its place in the chunk tables."""

    def __init__(self, columns: list, text_of: Callable[[np.ndarray], np.ndarray],
                 quote_text: Callable[[bytes], bytes] | None = None):
        from cryodesk.io._star_write_kernels import CONST, FLOAT, IMAGE, INT, TABLE, TEXT, UINT

        self.n = len(columns[0])
        self.kinds, self.index = [], []
        self.floats, self.f32, self.ints, self.uints = [], [], [], []
        self.texts, self.quote, self.consts = [], [], []
        self.coded, self.ccol, self.cbase, self.entries, self.coded_max = [], [], [], [], []
        self.ncc = 0
        self.ok = True
        for col in columns:
            if star_columns.is_coded(col):
                if quote_text is not None and len(col) == self.n and self._add_coded(col, text_of, quote_text):
                    continue
                col = np.asarray(col)  # (its rows, written as any text column)
            arr = np.asarray(col)
            if arr.dtype.kind == "b":
                arr = arr.astype(np.int8)
            kind = arr.dtype.kind
            if arr.ndim != 1 or len(arr) != self.n:
                self.ok = False
                return
            if kind in "iuf" and arr.dtype.itemsize in (1, 2, 4, 8) and self.n > 64:
                bits = arr.view(f"u{arr.dtype.itemsize}")
                # a constant column: numpy's text of its one value (most columns differ in their first rows: no
                # pass over a million)
                if np.all(bits[:64] == bits[0]) and np.all(bits == bits[0]):
                    self._add(CONST, self.consts, star_numbers.format_numbers_numpy(arr[:1])[0])
                    continue
            if kind == "f" and arr.dtype.itemsize in (4, 8):
                self.f32.append(arr.dtype.itemsize == 4)
                self._add(FLOAT, self.floats, arr)
            elif kind == "u" and arr.dtype.itemsize == 8:
                self._add(UINT, self.uints, arr)
            elif kind in "iu":
                self._add(INT, self.ints, arr)
            else:
                text = text_of(arr)  # (float16 and the like: numpy's text; numbers never need quotes)
                if text.dtype.itemsize == 0:
                    self.ok = False
                    return
                self.quote.append(kind not in "biuf")
                self._add(TEXT, self.texts, text)
        self.widths = np.array([t.dtype.itemsize for t in self.texts], dtype=np.int64)
        self.const = np.frombuffer(b"".join(self.consts) or b"\0", dtype=np.uint8)
        self.clen = np.array([len(c) for c in self.consts], dtype=np.int64)
        self.coff = np.concatenate([[0], np.cumsum(self.clen)[:-1]]).astype(np.int64) if self.consts else \
            np.zeros(0, np.int64)
        self.ccol_arr = np.array(self.ccol or [0], dtype=np.int64)
        self.cbase_arr = np.array(self.cbase or [0], dtype=np.int64)
        self.elen = np.array([len(e) for e in self.entries], dtype=np.int64)
        self.eoff = np.concatenate([[0], np.cumsum(self.elen)[:-1]]).astype(np.int64) if self.entries else \
            np.zeros(1, np.int64)
        self.ebytes = np.frombuffer(b"".join(self.entries) or b"\0", dtype=np.uint8)
        if not self.entries:
            self.elen = np.zeros(1, np.int64)
        per_kind = {FLOAT: 25, INT: 21, UINT: 20, CONST: 0, TEXT: 0, TABLE: 0, IMAGE: 21}
        self.row_max = int(sum(per_kind[k] for k in self.kinds) + (self.widths + 2).sum() + self.clen.sum()
                           + sum(self.coded_max) + len(self.kinds))

    def _add_coded(self, col, text_of, quote_text) -> bool:
        """A coded column's table entries written once (False: not this way, e.g. an entry needs quotes)."""
        from cryodesk.io._star_write_kernels import IMAGE, TABLE

        index, table = col.index, col.table
        if len(index) and (int(index.min()) < 0 or int(index.max()) >= len(table)):
            return False
        image = isinstance(col, star_columns.ImageNames)
        if image:
            idx0 = col.idx0
            if idx0.dtype.kind not in "iu" or (len(idx0) and (int(idx0.min()) < 0 or int(idx0.max()) >= 2**62)):
                return False
            table = np.strings.add(b"1@", table)  # the quoting of n@path never depends on n (a digit first)
        if table.dtype.kind != "S" or table.dtype.itemsize == 0 or not len(table):
            return False
        sub = _Plan([table], text_of)
        if not sub.ok:
            return False
        written = bytes(_chunk(sub, 0, len(table), quote_text)).split(b"\n")[:-1]  # (no value holds one)
        if len(written) != len(table):
            return False
        if image:
            if not all(w.startswith(b"1@") for w in written):
                return False
            written = [w[2:] for w in written]
        self._add(IMAGE if image else TABLE, self.coded, col)
        self.ccol.append(self.ncc)
        self.ncc += 2 if image else 1
        self.cbase.append(len(self.entries))
        self.entries.extend(written)
        self.coded_max.append(max(len(w) for w in written))
        return True

    def _add(self, kind: int, table: list, value) -> None:
        self.kinds.append(kind)
        self.index.append(len(table))
        table.append(value)


def _chunk(plan: _Plan, start: int, stop: int, quote_text: Callable[[bytes], bytes]) -> memoryview:
    """Rows ``start:stop`` as text (a view of a new buffer)."""
    k = _k()
    m = stop - start
    fvals = np.empty((m, max(len(plan.floats), 1)), dtype=np.float64)
    for t, col in enumerate(plan.floats):
        fvals[:, t] = col[start:stop]
    ivals = np.empty((m, max(len(plan.ints), 1)), dtype=np.int64)
    for t, col in enumerate(plan.ints):
        ivals[:, t] = col[start:stop]
    uvals = np.empty((m, max(len(plan.uints), 1)), dtype=np.uint64)
    for t, col in enumerate(plan.uints):
        uvals[:, t] = col[start:stop]
    toff = np.concatenate([[0], np.cumsum(plan.widths * m)]).astype(np.int64)
    text = np.empty(max(int(toff[-1]), 1), dtype=np.uint8)
    for t, col in enumerate(plan.texts):
        text[toff[t]:toff[t + 1]] = np.ascontiguousarray(col[start:stop]).view(np.uint8)
    cvals = np.empty((m, max(plan.ncc, 1)), dtype=np.int64)
    for t, col in enumerate(plan.coded):
        c = plan.ccol[t]
        if isinstance(col, star_columns.ImageNames):
            np.add(col.idx0[start:stop], 1, out=cvals[:, c], casting="unsafe")
            c += 1
        cvals[:, c] = col.index[start:stop]
    out = np.empty(m * plan.row_max + 1, dtype=np.uint8)
    kinds = np.array(plan.kinds, dtype=np.int64)
    index = np.array(plan.index, dtype=np.int64)
    f32 = np.array(plan.f32 or [False], dtype=np.bool_)
    tquote = np.array(plan.quote or [False], dtype=np.bool_)
    nf = max(len(plan.floats), 1)
    last_bits = np.zeros(nf, dtype=np.uint64)
    last_pos = np.zeros(nf, dtype=np.int64)
    last_len = np.full(nf, -1, dtype=np.int64)
    ov = _Overrides()
    cursor = np.zeros(1, dtype=np.int64)
    row, pos = 0, 0
    while True:
        status, row, col, pos = k._write_rows(
            row, m, pos, out, kinds, index, fvals, fvals.view(np.uint64), f32, ivals, uvals, text, toff,
            plan.widths, tquote, plan.const, plan.coff, plan.clen, ov.row, ov.col, ov.off, ov.len, ov.bytes,
            ov.n, cursor, last_bits, last_pos, last_len, star_numbers._QUOTE_FIRST, star_numbers._KEYWORDS,
            star_numbers._KEYLEN, cvals, plan.ccol_arr, plan.cbase_arr, plan.eoff, plan.elen, plan.ebytes)
        if status == 0:
            return memoryview(out)[:pos]
        # the value at (row, col) is numpy's (a float) or _quote's (a text): the kernel resumes at its row
        t = plan.index[col]
        if plan.kinds[col] == 0:
            value = star_numbers.format_numbers_numpy(plan.floats[t][start + row:start + row + 1])[0]
        else:
            value = quote_text(bytes(plan.texts[t][start + row]))
        ov.add(row, col, value)


class _Overrides:
    """The bytes to write for the values the kernel handed back, in row-major order (grown by doubling)."""

    def __init__(self) -> None:
        self.n = 0
        self.row = np.zeros(16, np.int64)
        self.col = np.zeros(16, np.int64)
        self.off = np.zeros(16, np.int64)
        self.len = np.zeros(16, np.int64)
        self.bytes = np.zeros(1024, np.uint8)
        self.used = 0

    def add(self, row: int, col: int, value: bytes) -> None:
        if self.n == len(self.row):
            for name in ("row", "col", "off", "len"):
                setattr(self, name, np.concatenate([getattr(self, name), np.zeros(self.n, np.int64)]))
        while self.used + len(value) > len(self.bytes):
            self.bytes = np.concatenate([self.bytes, np.zeros(len(self.bytes), np.uint8)])
        self.row[self.n], self.col[self.n] = row, col
        self.off[self.n], self.len[self.n] = self.used, len(value)
        self.bytes[self.used:self.used + len(value)] = np.frombuffer(value, dtype=np.uint8)
        self.used += len(value)
        self.n += 1


def warm() -> None:
    """Load the row kernel now (numba's first load; the chunk tables' types do not depend on the data)."""
    if _k() is not None:
        n = 4
        cols = [np.arange(n, dtype=np.float64) + 0.5, np.arange(n), np.arange(n, dtype=np.uint64),
                np.array([b"a", b"b", b"c", b"d"])]
        _chunk(_Plan(cols, lambda a: np.asarray(a, dtype="S")), 0, n, lambda v: v)


def loop_chunks(columns: list[np.ndarray], quote_text: Callable[[bytes], bytes],
                text_of: Callable[[np.ndarray], np.ndarray], chunk_rows: int = 1 << 15) -> Iterator | None:
    """The rows of a loop as chunks of text, or None when this path does not take the loop.

    ``quote_text`` gives a text value as written (``star._quote`` of it, as UTF-8);
    ``text_of`` a non-number column as ``S`` bytes (``star._text``).
    """
    if not columns or len(columns[0]) < star_numbers.MIN_SIZE or _k() is None:
        return None
    plan = _Plan(columns, text_of, quote_text)
    if not plan.ok:
        return None
    return _run(plan, quote_text, chunk_rows)


def _run(plan: _Plan, quote_text, chunk_rows: int) -> Iterator[memoryview]:
    bounds = [(s, min(plan.n, s + chunk_rows)) for s in range(0, plan.n, chunk_rows)]
    pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="star-rows")
    try:
        pending = [pool.submit(_chunk, plan, s, e, quote_text) for s, e in bounds[:2]]
        nxt = 2
        while pending:
            chunk = pending.pop(0).result()
            if nxt < len(bounds):  # at most two chunks formatted ahead of the one being written
                pending.append(pool.submit(_chunk, plan, *bounds[nxt], quote_text))
                nxt += 1
            yield chunk
    finally:  # (closed early: the chunks not started are dropped, the threads end before this returns)
        pool.shutdown(wait=True, cancel_futures=True)
