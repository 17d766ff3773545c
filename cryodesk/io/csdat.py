"""Reader for CryoSPARC's compressed ``\\x95CSDAT`` dataset encoding (read-only).

API summary
-----------
``is_csdat(head: bytes) -> bool``
``read_csdat(path, fields=None) -> numpy structured array``

Layout (as cryosparc-tools writes it, ``Dataset.save(format=CSDAT_FORMAT)``)::

    b"\\x95CSDAT" | u32le header_len | JSON header
    per field (only if length > 0): u32le nbytes | column bytes (LZ4 block if compressed)
    rest of file: string heap (NUL-terminated UTF-8 strings, offset 0 = "")

The JSON header has ``length``, ``dtype`` (``[name, dtype]`` or
``[name, dtype, shape]``; ``"|O"`` = string column stored as u64 heap offsets),
``compression`` (``"lz4"`` or null) and ``compressed_fields``.  String columns
come back as fixed-width bytes (``S<n>``), like the NumPy ``.cs`` encoding.
Compressed columns are decoded by the ``lz4`` package; any damage becomes a :class:`~cryodesk.base.errors.DataError` naming the file
and the column.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import lz4.block
import numpy as np

from cryodesk.base.errors import DataError

MAGIC = b"\x95CSDAT"


def is_csdat(head: bytes) -> bool:
    return head[:6] == MAGIC


def _decompress(raw: bytes, nbytes: int, name: str) -> bytes:
    """One column's LZ4 *block* (no frame, size known from the dtype), checked to the byte."""
    if nbytes == 0:
        return b""
    try:
        # A block that decodes to fewer bytes than promised is no error here: the caller checks the size.
        return lz4.block.decompress(raw, uncompressed_size=nbytes)
    except lz4.block.LZ4BlockError:
        raise ValueError(f"column {name!r} is not a valid LZ4 block (corrupt or truncated)") from None


def _field_dtype(entry) -> tuple[str, np.dtype, tuple, bool]:
    name, dt = entry[0], entry[1]
    shape = tuple(entry[2]) if len(entry) > 2 and entry[2] else ()
    is_str = np.dtype(dt).kind in "OSU"
    base = np.dtype("<u8") if is_str else np.dtype(dt)
    if name == "uid":
        base = np.dtype("<u8")
    return name, base, shape, is_str


def read_csdat(path: Path | str, fields=None) -> np.ndarray:
    """Read a CSDAT-encoded ``.cs`` file into a NumPy structured array.

    Parameters
    ----------
    path : path-like
    fields : sequence of str, optional
        Keep only these fields (``uid`` is always kept).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
        blob = memoryview(data)  # column slices without copying
        if not is_csdat(data):
            raise ValueError("missing \\x95CSDAT prefix")
        (hlen,) = struct.unpack_from("<I", blob, 6)
        header = json.loads(data[10:10 + hlen])
        length = int(header["length"])
        compressed = set(header.get("compressed_fields") or [])
        if compressed and header.get("compression") != "lz4":
            raise ValueError(f"unsupported compression {header.get('compression')!r} (only lz4)")
        pos = 10 + hlen
        cols: list[tuple[str, np.ndarray, bool]] = []
        for entry in header["dtype"]:
            name, base, shape, is_str = _field_dtype(entry)
            nbytes = base.itemsize * length * int(np.prod(shape, dtype=np.int64))
            wanted = fields is None or name == "uid" or name in fields
            if length:
                (csize,) = struct.unpack_from("<I", blob, pos)
                raw = blob[pos + 4:pos + 4 + csize]
                if len(raw) != csize:
                    raise ValueError(f"column {name!r} is truncated")
                pos += 4 + csize
                if not wanted:
                    continue  # skipped, not decoded
                if name in compressed:
                    raw = _decompress(raw, nbytes, name)
                if len(raw) != nbytes:
                    raise ValueError(f"column {name!r} has {len(raw)} bytes, expected {nbytes}")
                col = np.frombuffer(raw, dtype=base).reshape((length, *shape))
            elif not wanted:
                continue
            else:
                col = np.zeros((0, *shape), dtype=base)
            cols.append((name, col, is_str))
        heap = data[pos:]
        out_cols = []
        for name, col, is_str in cols:
            if is_str:
                # Few distinct strings (stack paths) repeat over many rows: look each up once.
                offsets, rows = np.unique(col.ravel(), return_inverse=True)
                strs = [_heap_str(heap, int(o)) for o in offsets]
                width = max((len(s) for s in strs), default=1) or 1
                col = np.array(strs, dtype=f"S{width}")[rows].reshape(col.shape)
            out_cols.append((name, col))
    except DataError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError, struct.error) as exc:
        raise DataError(f"{path}: malformed CryoSPARC dataset (CSDAT encoding): {exc}") from None
    dtype = [(n, c.dtype, c.shape[1:]) for n, c in out_cols]
    out = np.empty(length, dtype=dtype)  # every field is assigned below
    for n, c in out_cols:
        out[n] = c
    return out


def _heap_str(heap: bytes, offset: int) -> bytes:
    if offset == 0:
        return b""
    end = heap.find(b"\0", offset)
    if offset >= len(heap) or end < 0:
        raise ValueError(f"string offset {offset} outside the string heap")
    return heap[offset:end]
