"""Text columns of a STAR loop kept coded: a table of values and each row's index into it.

A particle export's long texts repeat: ``rlnMicrographName`` holds a few
thousand distinct paths over a million rows, ``rlnImageName`` is ``n@path``
with a few thousand paths, a carried vector (``_csparc/ctf/tilt_A``) a value
per exposure group.  Built row by row they are hundreds of MB of fixed-width
bytes, scanned again by the writer for quoting.  Kept coded, the row writer
(:mod:`cryodesk.io.star_write`) decides each table entry's text once and
copies it per row.  Anything else that reads the column gets the rows as
numpy gives them (``np.asarray(column)``): exactly the array the coded form
stands for.

API summary
-----------
``CodedText(table, index)``          rows ``table[index]`` (``S`` bytes)
``ImageNames(idx0, table, index)``   rows ``%06d@path``: ``star_images.image_name_bytes(idx0, (table, index))``
                                     (``table`` UTF-8 bytes)
``is_coded(column) -> bool``;  ``materialise(columns) -> dict``  (every coded column as its array)
"""

from __future__ import annotations

import numpy as np

__all__ = ["CodedText", "ImageNames", "is_coded", "materialise"]


class _Coded:
    index: np.ndarray
    table: np.ndarray
    ndim = 1

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple[int]:
        return (len(self.index),)

    def __array__(self, dtype=None, copy=None):
        rows = self.rows()
        return rows if dtype is None else rows.astype(dtype)

    def __getitem__(self, key):
        return self.rows()[key]

    def rows(self) -> np.ndarray:  # pragma: no cover - defined by each kind
        raise NotImplementedError


class CodedText(_Coded):
    """Rows ``table[index]`` of a text table (``S`` bytes, UTF-8)."""

    def __init__(self, table, index):
        self.table = np.asarray(table)
        self.index = np.asarray(index, dtype=np.int64).ravel()
        if self.table.dtype.kind != "S" or self.table.ndim != 1:
            raise ValueError(f"CodedText needs a 1-D bytes table, got {self.table.dtype} {self.table.shape}")

    @property
    def dtype(self) -> np.dtype:
        return self.table.dtype

    def rows(self) -> np.ndarray:
        return self.table[self.index]


class ImageNames(_Coded):
    """Rows ``000001@path`` (``idx0 + 1`` zero-padded to 6 digits) of ``table[index]`` paths."""

    def __init__(self, idx0, table, index):
        self.idx0 = np.asarray(idx0)
        table = np.asarray(table)
        if table.dtype.kind != "S" or table.ndim != 1:
            raise ValueError(f"ImageNames needs a 1-D bytes (UTF-8) table, got {table.dtype} {table.shape}")
        self.table = np.strings.add(table, b"")  # (as image_name_bytes makes it)
        self.index = np.asarray(index, dtype=np.int64).ravel()

    def rows(self) -> np.ndarray:
        # star_images.image_name_bytes(idx0, (table, index)), written out here (it imports star: a cycle)
        numbers = (self.idx0.astype(np.int64) + 1).astype("S")
        return np.strings.add(np.strings.add(np.strings.zfill(numbers, 6), b"@"), self.table[self.index])


def is_coded(column) -> bool:
    return isinstance(column, _Coded)


def materialise(columns: dict) -> dict:
    """``columns`` with every coded column replaced by its rows (a new dict)."""
    return {k: np.asarray(v) if is_coded(v) else v for k, v in columns.items()}
