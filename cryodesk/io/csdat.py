"""CryoSPARC's compressed ``\\x95CSDAT`` dataset encoding (cryosparc-tools >= 4.4): reader and writer.

API summary
-----------
``is_csdat(head: bytes) -> bool``
``read_csdat(path, fields=None) -> numpy structured array``
``write_csdat(path, data, durable=False, compression="lz4") -> Path`` (atomic)

Layout (as cryosparc-tools writes it, ``Dataset.save(format=CSDAT_FORMAT)``)::

    b"\\x95CSDAT" | u32le header_len | JSON header
    per field (only if length > 0): u32le nbytes | column bytes (LZ4 block if compressed)
    rest of file: string heap (NUL-terminated UTF-8 strings, offset 0 = "")

The JSON header has ``length``, ``dtype`` (``[name, dtype]`` or
``[name, dtype, shape]``; ``"|O"`` = string column stored as u64 heap offsets),
``compression`` (``"lz4"`` or null) and ``compressed_fields`` (every field but
``uid``).  String columns come back as fixed-width bytes (``S<n>``), like the
NumPy ``.cs`` encoding.  The heap starts with the empty string at offset 0;
cryosparc-tools keeps column names of 52 bytes or more in the same heap, so
the writer puts those first, in column order, where its reader expects them.
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
from cryodesk.base.fsio import AtomicFile

MAGIC = b"\x95CSDAT"
# cryosparc-tools' column descriptors hold names up to 51 bytes; longer ones live in the string heap
_SHORTKEY = 52
# LZ4's largest block input (LZ4_MAX_INPUT_SIZE)
_LZ4_MAX = 0x7E000000


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


class _Heap:
    """The string heap: NUL-terminated UTF-8, offset 0 the empty string, each string once."""

    def __init__(self):
        self.parts = [b"\0"]
        self.size = 1
        self.index: dict[bytes, int] = {b"": 0}

    def add(self, value: bytes) -> int:
        off = self.index.get(value)
        if off is None:
            off = self.index[value] = self.size
            self.parts.append(value + b"\0")
            self.size += len(value) + 1
        return off


def _header_dtype(name: str, dt: np.dtype) -> list:
    if name == "uid":
        return [name, "<u8"]
    if dt.base.kind in "OSU":
        return [name, "|O"]
    if dt.base.kind not in "iufc":
        raise DataError(f"field {name!r} has dtype {dt} which the CSDAT encoding cannot hold")
    base = dt.base.newbyteorder("<").str
    return [name, base, list(dt.shape)] if dt.shape else [name, base]


def write_csdat(path: Path | str, data: np.ndarray, durable: bool = False,
                compression: str | None = "lz4") -> Path:
    """Save ``data`` in the CSDAT encoding (what ``Dataset.save(format=CSDAT_FORMAT)`` writes), atomically.

    Parameters
    ----------
    path : path-like
    data : structured ndarray
        Needs a ``uid`` field; string (bytes/str/object) columns go to the heap.
    durable : bool
        fsync before publishing (:class:`~cryodesk.base.fsio.AtomicFile`).
    compression : "lz4" or None
        LZ4-compress every column except ``uid`` (as cryosparc-tools does).
    """
    path = Path(path)
    names = data.dtype.names
    if names is None or "uid" not in names:
        raise DataError(f"{path}: refusing to write a dataset without a 'uid' field")
    if compression not in ("lz4", None):
        raise DataError(f"{path}: unknown CSDAT compression {compression!r} (lz4 or None)")
    try:
        fields = [_header_dtype(n, data.dtype.fields[n][0]) for n in names]
    except DataError as exc:
        raise DataError(f"{path}: {exc}") from None
    heap = _Heap()
    for n in names:
        if len(n.encode()) + 1 > _SHORTKEY:
            heap.add(n.encode())
    compressed = [n for n in names if compression and n != "uid"]
    header = json.dumps({"length": len(data), "dtype": fields, "compression": compression,
                         "compressed_fields": compressed}).encode()
    with AtomicFile(path, durable) as f:
        out = f.fh
        out.write(MAGIC + struct.pack("<I", len(header)) + header)
        for entry in (fields if len(data) else []):
            name = entry[0]
            col = data[name]
            if entry[1] == "|O":
                col = _heap_offsets(col, heap)
            else:
                col = np.ascontiguousarray(col, dtype=np.dtype(entry[1]))
            raw = col.tobytes()
            if name in compressed:
                if len(raw) > _LZ4_MAX:
                    raise DataError(f"{path}: column {name!r} is {len(raw)} bytes, more than one LZ4 block holds")
                raw = lz4.block.compress(raw, store_size=False) if raw else b""
            out.write(struct.pack("<I", len(raw)))
            out.write(raw)
        out.write(b"".join(heap.parts))
    return path


def _heap_offsets(col: np.ndarray, heap: _Heap) -> np.ndarray:
    values, rows = np.unique(col.ravel(), return_inverse=True)
    offs = np.array([heap.add(v.encode("utf-8") if isinstance(v, str) else bytes(v)) for v in values.tolist()],
                    dtype="<u8")
    return offs[rows].reshape(col.shape)
