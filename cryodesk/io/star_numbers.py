"""STAR numbers at memory speed: shortest exact float text, exact parsing, token splitting.

The reference behaviour is numpy's own: ``values.astype("S")`` writes a float
in its shortest round-trip form (Dragon4: float64 as Python's ``repr``,
float32 in its own shortest form, positional for 1e-4 <= |x| < 1e16 resp. 1e6)
and ``np.asarray(texts, float64)`` parses with correct rounding.  Both cost
~1 µs a value; the numba kernels here give the same bytes and the same
values in a few tens of ns, and hand every case they cannot decide exactly
back to numpy (``flag`` rows), so the result is always numpy's:

* formatting: the value is scaled to 17 digits exactly (a double-double
  product with an exact power of ten), then the largest power of ten whose
  nearest multiple lies inside the value's rounding interval is found with
  integer arithmetic (that multiple *is* the shortest, closest digit string).
  NaN, ±inf, ±0 are written directly; magnitudes outside [1e-6, 1e17),
  float32 subnormals, mantissas that are powers of two (asymmetric
  interval), ties and anything within 1e-9 of an interval bound are
  flagged.
* parsing: ``[+-]digits[.digits][(e|E)[+-]digits]`` of at most 18
  significant digits; exact by Clinger's fast path (< 2^53, |exp| <= 22) or,
  for 16-18 digits with a negative exponent, by checking the candidate
  double against its rounding interval with an exact product; anything else
  (``inf``, ``nan``, blanks, more digits, large exponents) is flagged.

API summary
-----------
``implementation() -> str``              ``"numba"`` or ``"numpy"`` (numba is imported on first use)
``format_numbers(values) -> ndarray[S]``   what ``values.astype("S")`` gives (ints, floats; bool as 0/1)
``parse_floats(texts) -> ndarray[float64]``  what ``np.asarray(texts, float64)`` gives (``S`` texts); ValueError
``needs_quote(col) -> ndarray[bool] | None``, ``compact(buf) -> bytes``  for the STAR writer's loops
``number_chars(values) -> ndarray[uint8] (n, w)``, ``join_rows(columns) -> bytes | None``  rows without a padded table
``parse_uints(texts) -> ndarray[uint64] | None``  decimal ids (None: let numpy decide)
``split_columns(buf, ncols) -> list[ndarray[S]] | None``  the bare tokens of a loop body as columns
"""

from __future__ import annotations

import numpy as np

__all__ = ["implementation", "format_numbers", "number_chars", "join_rows", "parse_floats", "parse_uints",
           "split_columns", "needs_quote", "compact", "body_end", "format_numbers_numpy", "parse_floats_numpy"]

_kernels = None  # the compiled kernels module once loaded; False without numba
#: fewer values (or bytes / 512) than this are left to numpy: small files never load numba
MIN_SIZE = 2048


def _k():
    """The compiled kernels (numba is imported with them, on first use only: not at application start)."""
    global _kernels
    if _kernels is None:
        from cryodesk.io import _star_kernels

        _kernels = _star_kernels if _star_kernels.HAVE_NUMBA else False
    return _kernels or None


def implementation() -> str:
    """``"numba"`` when the compiled kernels are used, else ``"numpy"``."""
    return "numba" if _k() is not None else "numpy"

#: output width of a formatted number (``-1.2345678901234567e-300`` is 24 bytes)
_WIDTH = 25


def format_numbers_numpy(values: np.ndarray) -> np.ndarray:
    """The reference: numpy's own text of each value."""
    arr = np.asarray(values)
    if arr.dtype.kind == "b":
        arr = arr.astype(np.int8)
    return arr.astype("S")


def parse_floats_numpy(texts: np.ndarray) -> np.ndarray:
    """The reference: numpy's parse (ValueError on a bad text)."""
    return np.asarray(texts, dtype=np.float64)


def format_numbers(values: np.ndarray) -> np.ndarray:
    """What ``values.astype("S")`` gives (bool as ``0``/``1``), computed by the kernels when possible."""
    arr = np.asarray(values)
    kind = arr.dtype.kind
    if arr.ndim != 1 or kind not in "biuf" or len(arr) < MIN_SIZE or (
            kind == "f" and arr.dtype.itemsize not in (4, 8)) or _k() is None:
        return format_numbers_numpy(arr)
    if kind == "f":
        out = np.zeros((len(arr), _WIDTH), dtype=np.uint8)
        flag = _k()._format_floats(arr, arr.dtype.itemsize == 4, out)
        text = out.view(f"S{_WIDTH}").ravel()
        if flag.any():
            text[flag] = arr[flag].astype("S")
        return text.astype(f"S{max(int(np.strings.str_len(text).max()), 1)}")
    out = np.zeros((len(arr), 21), dtype=np.uint8)
    ok = _k()._format_uints(arr, out) if arr.dtype == np.uint64 else _k()._format_ints(arr.astype(np.int64), out)
    if not ok:
        return format_numbers_numpy(arr)
    text = out.view("S21").ravel()
    return text.astype(f"S{max(int(np.strings.str_len(text).max()), 1)}")


def number_chars(values: np.ndarray) -> np.ndarray:
    """The text of :func:`format_numbers` as NUL-padded rows of a uint8 ``(n, width)`` array (no shrinking copy)."""
    arr = np.asarray(values)
    kind = arr.dtype.kind
    if arr.ndim == 1 and len(arr) >= MIN_SIZE and _k() is not None and (
            kind in "biu" or (kind == "f" and arr.dtype.itemsize in (4, 8))):
        if kind == "f":
            out = np.zeros((len(arr), _WIDTH), dtype=np.uint8)
            flag = _k()._format_floats(arr, arr.dtype.itemsize == 4, out)
            if flag.any():
                out.view(f"S{_WIDTH}").ravel()[flag] = arr[flag].astype("S")
            return out
        out = np.zeros((len(arr), 21), dtype=np.uint8)
        ok = _k()._format_uints(arr, out) if arr.dtype == np.uint64 else _k()._format_ints(arr.astype(np.int64), out)
        if ok:
            return out
    text = format_numbers(arr)
    return _chars(text)


def _chars(text: np.ndarray) -> np.ndarray:
    """An ``S`` column as a uint8 ``(n, itemsize)`` array (a view when contiguous)."""
    width = max(text.dtype.itemsize, 1)
    if text.dtype.itemsize == 0:
        return np.zeros((len(text), 1), dtype=np.uint8)
    return np.ascontiguousarray(text).view(np.uint8).reshape(len(text), width)


def join_rows(columns: list[np.ndarray]) -> bytes | None:
    """The rows of ``columns`` (``S`` arrays or uint8 ``(n, w)`` rows of NUL-padded text) as one text.

    Each row's values, NUL bytes dropped, joined by one space and ended by a
    newline: ``compact`` of the padded table the STAR writer builds, without
    building it.  None without the kernels or for a small chunk (the caller
    builds the table then).
    """
    n = len(columns[0]) if columns else 0
    if n < MIN_SIZE or _k() is None:
        return None
    chars = [c if c.dtype == np.uint8 else _chars(c) for c in columns]
    rowlen = np.zeros(n, dtype=np.int64)
    for c in chars:
        _k()._row_lengths(c, rowlen)
    pos = np.zeros(n, dtype=np.int64)
    np.cumsum(rowlen[:-1], out=pos[1:])
    total = int(pos[-1] + rowlen[-1])
    out = np.empty(total + 1, dtype=np.uint8)  # one byte of room for the last NUL written branch-free
    last = len(chars) - 1
    for j, c in enumerate(chars):
        _k()._place(c, out, pos, 10 if j == last else 32)
    return out[:total].tobytes()


def parse_floats(texts: np.ndarray) -> np.ndarray:
    """What ``np.asarray(texts, float64)`` gives for an ``S`` column (ValueError on a bad text)."""
    arr = np.asarray(texts)
    if arr.dtype.kind == "U" and arr.ndim == 1 and len(arr) >= MIN_SIZE:
        try:  # str columns (the token parser's, optics values spread over the particles): as ASCII bytes
            arr = arr.astype("S")
        except UnicodeEncodeError:
            return parse_floats_numpy(arr)
    if arr.dtype.kind != "S" or arr.ndim != 1 or arr.dtype.itemsize == 0 or len(arr) < MIN_SIZE or _k() is None:
        return parse_floats_numpy(arr)
    chars = np.ascontiguousarray(arr).view(np.uint8).reshape(len(arr), arr.dtype.itemsize)
    out, flag = _k()._parse_floats(chars)
    if flag.any():
        out[flag] = parse_floats_numpy(arr[flag])
    return out


def parse_uints(texts: np.ndarray) -> np.ndarray | None:
    """``texts`` (``S``) as uint64 when every one is 1+ ASCII digits below 2^64, else None (numpy decides)."""
    arr = np.asarray(texts)
    if arr.dtype.kind != "S" or arr.ndim != 1 or arr.dtype.itemsize == 0 or len(arr) < MIN_SIZE or _k() is None:
        return None
    chars = np.ascontiguousarray(arr).view(np.uint8).reshape(len(arr), arr.dtype.itemsize)
    out, ok = _k()._parse_uints(chars)
    return out if ok else None


_QUOTE_FIRST = np.frombuffer(b"_#'\";$", dtype=np.uint8).copy()


def needs_quote(col: np.ndarray) -> np.ndarray | None:
    """Rows of an ``S`` column that ``star._quote`` may change (the rules of ``star._needs_quote``), or None."""
    if col.dtype.kind != "S" or col.dtype.itemsize == 0 or col.ndim != 1 or len(col) < MIN_SIZE or _k() is None:
        return None
    chars = np.ascontiguousarray(col).view(np.uint8).reshape(len(col), col.dtype.itemsize)
    return _k()._needs_quote(chars, _QUOTE_FIRST, _KEYWORDS, _KEYLEN)


def compact(buf: np.ndarray) -> bytes:
    """``buf[buf != 0].tobytes()`` of a uint8 array (compiled when numba is there)."""
    if buf.size < 512 * MIN_SIZE or _k() is None:
        return buf[buf != 0].tobytes()
    flat = buf.ravel()
    out = np.empty(len(flat) + 1, dtype=np.uint8)
    return out[:_k()._compact(flat, out)].tobytes()


_KEYS = [b"data_", b"loop_", b"save_", b"stop_", b"global_"]
_KEYWORDS = np.zeros((len(_KEYS), 7), dtype=np.uint8)
for _row, _w in enumerate(_KEYS):
    _KEYWORDS[_row, :len(_w)] = np.frombuffer(_w, dtype=np.uint8)
_KEYLEN = np.array([len(w) for w in _KEYS], dtype=np.int64)


def body_end(raw: bytes, pos: int) -> int:
    """``min`` of ``raw.find(w, pos)`` for ``w`` in ``\\n_``, ``\\ndata_``, ``\\nloop_`` (-1 when none): one pass."""
    if len(raw) - pos < 512 * MIN_SIZE or _k() is None:
        ends = [e for e in (raw.find(w, pos) for w in (b"\n_", b"\ndata_", b"\nloop_")) if e >= 0]
        return min(ends) if ends else -1
    return int(_k()._body_end(np.frombuffer(raw, dtype=np.uint8), pos))


def split_columns(buf: np.ndarray, ncols: int) -> list[np.ndarray] | None:
    """The values of a loop body (uint8 ``buf``) as ``ncols`` ``S<n>`` columns, or None when not plain.

    Plain means what :func:`cryodesk.io.star._split_columns` (the numpy
    reference) accepts: printable ASCII tokens separated by space, tab, CR or
    LF, none starting with ``_ # ' " ;`` or with a STAR keyword (any case), a
    whole number of rows.  None also when numba is not available (the numpy
    splitter is used then).  The columns are views of one buffer.
    """
    if _k() is None:
        return None
    from cryodesk.io._star_read_kernels import _fill_part, _scan_part  # (numba is loaded already)

    status, ntok, widths, _lines, _stop = _scan_part(buf, 0, len(buf), ncols, _KEYWORDS, _KEYLEN, 0, False)
    if status or ntok % ncols:
        return None
    rows = ntok // ncols
    widths = np.maximum(widths, 1)
    offsets = np.concatenate([[0], np.cumsum(widths * rows)]).astype(np.int64)
    out = np.zeros(int(offsets[-1]), dtype=np.uint8)
    _fill_part(buf, 0, len(buf), ncols, 0, widths, offsets, out)
    return [out[offsets[j]:offsets[j + 1]].view(f"S{widths[j]}") for j in range(ncols)]
