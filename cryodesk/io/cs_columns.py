"""A dataset kept as its columns: what :func:`cryodesk.io.cs.from_columns` builds, without building it.

The STAR import converts a million rows into ~60 columns and writes them once
as a ``.cs``; building the structured array first (553 MB at 1M rows of a
refinement) and then streaming it out doubled the memory that conversion
needed at its peak, and on this kind of VM every megabyte touched for the first
time costs ~1-3 ms of system time.  :class:`Columns` holds the columns (each
per-row column already in its field's dtype, as filling the array would make
it: the same casts, so the same values and the same ``FloatingPointError``
under ``np.errstate(over="raise")``) and fills a block of rows on request;
:func:`cryodesk.io.cs.write_cs_replacing` streams it like an array.

API summary
-----------
``plan_columns(columns, n=None) -> (dtype, arrays, per_row, n)``   what from_columns builds, and from what
``fill_rows(out, arrays, per_row, start=0)``                      fill ``out`` (rows ``start...``) a block at a time
``Columns(columns, n=None, consume=False)``: ``dtype``, ``ndim`` (1), ``len()``, ``[field]`` (that field of the
  dataset, read-only for broadcast values), ``fill(buf, start)``, ``to_array()`` (= ``from_columns(columns, n)``);
  a text column may be given coded, ``(table, index)``, for ``table[index]``
"""

from __future__ import annotations

import numpy as np

from cryodesk.io.cs_fields import _S, FIELD_DTYPES, _encode, new_uids

__all__ = ["plan_columns", "fill_rows", "Columns", "FILL_ROWS"]

#: rows per block when a dataset is filled from columns
FILL_ROWS = 1 << 14


def plan_columns(columns: dict, n: int | None = None) -> tuple[np.dtype, dict, dict, int]:
    """The dtype of ``from_columns(columns, n)``, the value of each field (text encoded), which ones have a row
    per particle (the others are broadcast), and ``n``."""
    if n is None:
        n = next((len(v) for v in columns.values() if np.ndim(v) > 0), 0)
    cols = dict(columns)
    if "uid" not in cols:
        cols = {"uid": new_uids(n), **cols}
    descr, arrays = [], {}
    for name, values in cols.items():
        base, shape = FIELD_DTYPES.get(name, (None, None))
        arr = np.asarray(values)
        if arr.dtype.kind in "OU" or base == _S:
            if arr.dtype.kind != "S":
                arr = _encode(arr)
            base = f"S{max(arr.dtype.itemsize, 1)}"
        if shape is None:
            base, shape = arr.dtype, (arr.shape[1:] if arr.ndim >= 1 else ())
        arrays[name] = arr
        descr.append((name, base, shape))
    dtype = np.dtype(descr)
    per_row = {name: arr.ndim == 1 + len(dtype[name].shape) and arr.shape[0] == n for name, arr in arrays.items()}
    return dtype, arrays, per_row, n


def fill_rows(out: np.ndarray, arrays: dict, per_row: dict, start: int = 0) -> None:
    """``out[k][name] = arrays[name][start + k]`` (or the broadcast value), a block of rows at a time.

    Every field per block: one field at a time is a strided pass over the whole
    (wide) array for each field.  A value with a row axis goes in by slices;
    anything else (a scalar, one vector for every row) is broadcast, as numpy would.
    """
    for at in range(0, len(out), FILL_ROWS):
        rows = out[at:at + FILL_ROWS]
        lo = start + at
        for name, arr in arrays.items():
            rows[name] = arr[lo:lo + len(rows)] if per_row[name] else arr


class Columns:
    """``from_columns(columns, n)`` as its columns (see the module doc); ``consume``: the entries of
    ``columns`` are removed as they are taken (each cast column's source then goes at once)."""

    def __init__(self, columns: dict, n: int | None = None, consume: bool = False):
        # a text column may come coded, as (table, index): the field is table[index] (never built per row)
        self._index = {name: np.asarray(v[1]) for name, v in columns.items() if isinstance(v, tuple)}
        plain = {name: (v[0] if isinstance(v, tuple) else v) for name, v in columns.items()}
        if n is None and self._index:
            n = len(next(iter(self._index.values())))
        self.dtype, arrays, self._per_row, self._n = plan_columns(plain, n)
        del plain
        for name, index in self._index.items():
            if len(index) != self._n or self.dtype[name].base.kind != "S" or arrays[name].ndim != 1:
                raise ValueError(f"{name}: a coded column is a 1-D text table and an index per row")
            self._per_row[name] = True
        self._arrays: dict[str, np.ndarray] = {}
        for name in list(arrays):
            arr = arrays.pop(name)
            field = self.dtype[name]
            if name in self._index:
                pass  # the table, its values as they are (S of the field's width)
            elif self._per_row[name]:
                if arr.dtype != field.base:
                    arr = arr.astype(field.base)  # what the fill's assignment does (unsafe casting, same rounding)
            else:  # one row, filled as the array's rows would be; every row is a broadcast of it
                one = np.zeros(1, dtype=np.dtype([(name, field)]))
                one[name] = arr
                arr = one[name]
            self._arrays[name] = arr
            if consume:
                columns.pop(name, None)
            del arr

    def __len__(self) -> int:
        return self._n

    #: (a one-dimensional set of rows, as the array; it has no memory layout of its own: see :meth:`view`)
    ndim = 1

    def view(self, *args, **kwargs):
        """TypeError: the rows are not one block of memory (callers that reinterpret an array's records, such
        as ``validate._packed_shapes``, take their general way, as for a non-contiguous selection of rows)."""
        raise TypeError("a Columns dataset has no record layout to view")

    def __getitem__(self, name: str) -> np.ndarray:
        arr = self._arrays[name]
        if name in self._index:
            return arr[self._index[name]]
        if self._per_row[name]:
            return arr
        return np.broadcast_to(arr, (self._n, *self.dtype[name].shape))

    def fill(self, buf: np.ndarray, start: int) -> None:
        """Rows ``start .. start + len(buf)`` into ``buf`` (a structured array with these fields)."""
        for name, arr in self._arrays.items():
            if name in self._index:
                buf[name] = arr[self._index[name][start:start + len(buf)]]
            else:
                buf[name] = arr[start:start + len(buf)] if self._per_row[name] else arr

    def to_array(self) -> np.ndarray:
        """The dataset itself (``from_columns(columns, n)``)."""
        out = np.zeros(self._n, dtype=self.dtype)
        for at in range(0, self._n, FILL_ROWS):
            self.fill(out[at:at + FILL_ROWS], at)
        return out
