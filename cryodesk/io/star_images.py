"""RELION's image names (``000123@path/stack.mrcs``): parsed into 0-based indices and paths, and written.

Split from :mod:`cryodesk.io.star` (the STAR format itself): whole columns at once, never per row in Python.

``parse_image_names(values, source) -> (idx0: ndarray[int64], paths: ndarray[str])`` (``parse_image_names_numpy``:
its reference)
``parse_image_names_coded(values, source) -> (idx0, table, inverse)``  the paths as ``unique_first`` of them,
without a path per row (the reference: ``parse_image_names_numpy`` then ``unique_first``)
``format_image_names(idx0, paths) -> ndarray[str]`` (``000001@path``, 1-based)
``image_name_bytes(idx0, paths | (table, index)) -> ndarray[S]`` (the same, vectorised, as bytes)
"""

from __future__ import annotations

import numpy as np

from cryodesk.base.errors import DataError
from cryodesk.io import star_numbers
from cryodesk.io.runs import unique_first
from cryodesk.io.star import _utf8

__all__ = ["parse_image_names", "parse_image_names_numpy", "parse_image_names_coded", "format_image_names",
           "image_name_bytes"]


#: the largest image index an MRC stack can hold (its header counts sections in a 32-bit integer)
_MAX_INDEX = 2**31 - 1


def _ascii_ints(texts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(value, ok)`` of fixed-width str ``texts`` that should be ASCII decimal numbers (vectorised).

    ``ok`` is False for an empty text, any character but ``0-9``, or more than
    18 digits (beyond int64); ``value`` is 0 there.
    """
    texts = np.asarray(texts)
    if texts.dtype.kind not in "US":
        texts = texts.astype(str)
    unit = np.uint32 if texts.dtype.kind == "U" else np.uint8
    width = max(texts.dtype.itemsize // np.dtype(unit).itemsize, 1)
    n = len(texts)
    codes = np.ascontiguousarray(texts).view(unit).reshape(n, -1) if texts.dtype.itemsize else \
        np.zeros((n, 1), unit)
    length = np.count_nonzero(codes, axis=1)
    digit = (codes >= 48) & (codes <= 57)
    ok = (length > 0) & (length <= 18) & (np.count_nonzero(digit, axis=1) == length)
    # trailing NULs pad a fixed-width str; a NUL inside would be caught by the count above
    value = np.zeros(n, dtype=np.int64)
    vals = np.where(digit, codes.astype(np.int64) - 48, 0)
    for j in range(min(width, 18)):
        col = vals[:, j]
        value = np.where(j < length, value * 10 + col, value)
    return np.where(ok, value, 0), ok


def _kernel_scan(vals: np.ndarray):
    """``(kernels, chars, idx0, start, length, width)`` of a large ``S`` column the compiled kernel accepts, else None."""
    if not (vals.dtype.kind == "S" and vals.ndim == 1 and vals.dtype.itemsize and len(vals) >= star_numbers.MIN_SIZE
            and star_numbers.implementation() == "numba"):
        return None
    from cryodesk.io import _star_read_kernels as rk

    chars = np.ascontiguousarray(vals).view(np.uint8).reshape(len(vals), vals.dtype.itemsize)
    ok, idx0, start, length, width = rk._image_names(chars)
    return (rk, chars, idx0, start, length, width) if ok and width else None


def parse_image_names(values, source: str = "STAR file") -> tuple[np.ndarray, np.ndarray]:
    """Split ``"<n>@<path>"`` names into 0-based indices and paths (vectorised).

    A name without ``@`` is a single-image file (index 0).  The index must be
    a whole number >= 1 (``5.5@x.mrcs`` is refused, not read as image 5).
    A large ``S`` column (a bulk-read STAR file) is split by a compiled kernel
    in one pass; anything it does not accept goes to :func:`parse_image_names_numpy`
    (the reference, which words the errors), so the result is the same.
    """
    vals = np.asarray(values)
    scan = _kernel_scan(vals)
    if scan is not None:
        rk, chars, idx0, start, length, width = scan
        out = np.zeros((len(vals), width), dtype=np.uint8)
        rk._copy_paths(chars, start, length, out)
        return idx0, out.view(f"S{width}").ravel()
    return parse_image_names_numpy(vals, source)


def parse_image_names_coded(values, source: str = "STAR file") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`parse_image_names` with the paths as ``unique_first(paths)``: ``(idx0, table, inverse)``.

    For a large ``S`` column the kernels find where the path changes from
    row to row in place and copy only those rows' paths (a million rows of
    ~140-byte paths are never copied one by one, nor compared again), then
    the run heads give the distinct paths exactly as :func:`unique_first`
    does (its code, on the same heads); anything else is
    ``unique_first`` of :func:`parse_image_names` (the same errors).
    """
    vals = np.asarray(values)
    scan = _kernel_scan(vals)
    if scan is not None:
        rk, chars, idx0, start, length, width = scan
        starts = rk._path_runs(chars, start, length)
        heads = np.flatnonzero(starts)
        out = np.zeros((len(heads), width), dtype=np.uint8)
        rk._copy_paths(chars[heads], start[heads], length[heads], out)
        return (idx0, *_unique_of_runs(out.view(f"S{width}").ravel(), starts))
    idx0, paths = parse_image_names(vals, source)
    return (idx0, *unique_first(paths))


def _unique_of_runs(head_values: np.ndarray, starts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``unique_first(values)`` from the values at the run heads and ``starts = run_starts(values)``
    (``runs.unique_first``'s own steps after its compare pass)."""
    uniq, first, inv_heads = np.unique(head_values, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # first-seen order
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    run_of_row = np.cumsum(starts) - 1
    return uniq[order], rank[np.asarray(inv_heads).ravel()][run_of_row]


def parse_image_names_numpy(values, source: str = "STAR file") -> tuple[np.ndarray, np.ndarray]:
    """The numpy reference of :func:`parse_image_names`."""
    vals = np.asarray(values)
    if vals.dtype.kind not in "US":
        vals = vals.astype(str)
    if len(vals) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=vals.dtype)
    head, at, tail = np.strings.partition(vals, "@" if vals.dtype.kind == "U" else b"@")
    no_at = np.strings.str_len(at) == 0
    paths = np.where(no_at, head, tail)
    number, ok = _ascii_ints(head)
    number = np.where(no_at, 1, number)
    ok = (ok | no_at) & (number >= 1) & (number <= _MAX_INDEX) & (np.strings.str_len(paths) > 0)
    if paths.dtype.itemsize:  # a NUL inside a path (fixed-width arrays pad with NULs only at the end)
        unit = np.uint32 if paths.dtype.kind == "U" else np.uint8
        codes = np.ascontiguousarray(paths).view(unit).reshape(len(paths), -1)
        ok &= np.count_nonzero(codes, axis=1) == np.strings.str_len(paths)
    if not ok.all():
        k = int(np.argmin(ok))
        bad = vals[k].decode("utf-8", "replace") if isinstance(vals[k], bytes) else str(vals[k])
        raise DataError(f"{source}: bad image name {bad!r} in row {k + 1} "
                        f"(expected <1-based index up to {_MAX_INDEX}>@<path>)")
    return number - 1, paths


def format_image_names(idx0, paths) -> np.ndarray:
    """``000001@path`` names from 0-based ``idx0`` and ``paths`` (str)."""
    return np.char.decode(image_name_bytes(idx0, paths), "utf-8")


def image_name_bytes(idx0, paths) -> np.ndarray:
    """``000001@path`` names as UTF-8 bytes; ``paths`` per row, or ``(table, index)`` (vectorised)."""
    if isinstance(paths, tuple):
        table, index = np.asarray(paths[0]), np.asarray(paths[1])
    else:
        table, index = np.asarray(paths), None
    table = np.strings.add(_utf8(table), b"")
    numbers = (np.asarray(idx0).astype(np.int64) + 1).astype("S")
    names = np.strings.add(np.strings.add(np.strings.zfill(numbers, 6), b"@"),
                           table[index] if index is not None else table)
    return names
