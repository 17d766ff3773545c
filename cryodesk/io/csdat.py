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
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from cryodesk.base.errors import DataError

MAGIC = b"\x95CSDAT"


def is_csdat(head: bytes) -> bool:
    return head[:6] == MAGIC


def lz4_block_decompress(src: bytes, size: int) -> bytes:
    """Decode one raw LZ4 *block* (no frame) of known decompressed ``size``.

    Uses the ``lz4`` package when installed; otherwise a small pure-Python
    decoder of the documented block format (sequences of token, literals,
    2-byte offset, match length).
    """
    try:
        import lz4.block  # type: ignore[import-not-found]

        return lz4.block.decompress(src, uncompressed_size=size)
    except ImportError:
        pass
    out = bytearray()
    i, n = 0, len(src)
    while i < n:
        token = src[i]
        i += 1
        lit = token >> 4
        if lit == 15:
            while True:
                b = src[i]
                i += 1
                lit += b
                if b != 255:
                    break
        out += src[i:i + lit]
        i += lit
        if i >= n:  # the last sequence has literals only
            break
        offset = src[i] | (src[i + 1] << 8)
        i += 2
        mlen = token & 15
        if mlen == 15:
            while True:
                b = src[i]
                i += 1
                mlen += b
                if b != 255:
                    break
        mlen += 4
        if offset == 0 or offset > len(out):
            raise ValueError("corrupt LZ4 block (bad match offset)")
        start = len(out) - offset
        if offset >= mlen:
            out += out[start:start + mlen]
        else:  # overlapping copy: repeat the period
            period = bytes(out[start:])
            reps, rest = divmod(mlen, offset)
            out += period * reps + period[:rest]
    if len(out) != size:
        raise ValueError(f"corrupt LZ4 block ({len(out)} bytes decoded, expected {size})")
    return bytes(out)


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
        blob = path.read_bytes()
        if not is_csdat(blob):
            raise ValueError("missing \\x95CSDAT prefix")
        (hlen,) = struct.unpack_from("<I", blob, 6)
        header = json.loads(blob[10:10 + hlen])
        length = int(header["length"])
        compressed = set(header.get("compressed_fields") or [])
        pos = 10 + hlen
        cols: list[tuple[str, np.ndarray, bool]] = []
        for entry in header["dtype"]:
            name, base, shape, is_str = _field_dtype(entry)
            nbytes = base.itemsize * length * int(np.prod(shape, dtype=np.int64))
            if length:
                (csize,) = struct.unpack_from("<I", blob, pos)
                raw = blob[pos + 4:pos + 4 + csize]
                if len(raw) != csize:
                    raise ValueError(f"column {name!r} is truncated")
                pos += 4 + csize
                if name in compressed:
                    raw = lz4_block_decompress(raw, nbytes)
                if len(raw) != nbytes:
                    raise ValueError(f"column {name!r} has {len(raw)} bytes, expected {nbytes}")
                col = np.frombuffer(raw, dtype=base).reshape((length, *shape))
            else:
                col = np.zeros((0, *shape), dtype=base)
            cols.append((name, col, is_str))
        heap = blob[pos:]
        out_cols = []
        for name, col, is_str in cols:
            if fields is not None and name != "uid" and name not in fields:
                continue
            if is_str:
                strs = [_heap_str(heap, int(o)) for o in col.ravel()]
                width = max((len(s) for s in strs), default=1) or 1
                col = np.array(strs, dtype=f"S{width}").reshape(col.shape)
            out_cols.append((name, col))
    except DataError:
        raise
    except (OSError, ValueError, KeyError, TypeError, IndexError, struct.error) as exc:
        raise DataError(f"{path}: malformed CryoSPARC dataset (CSDAT encoding): {exc}") from None
    dtype = [(n, c.dtype, c.shape[1:]) for n, c in out_cols]
    out = np.zeros(length, dtype=dtype)
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
