"""CryoSPARC fields carried through a STAR file verbatim, as ``_csparc/<field>`` columns.

RELION keeps labels it does not know ("will ignore (but maintain) values for
the unknown label"), cryoDRGN and starfile read them as extra columns; so a
field with no RELION meaning can ride along and a ``.cs -> STAR -> .cs``
round trip gives it back.  We carry only what identifies a particle or has no
RELION equivalent but would be lost otherwise (:data:`CARRIED_FIELDS`), not
per-refinement statistics that go stale once RELION re-refines the poses.

Encoding: scalars as STAR numbers/strings; vectors as RELION writes its own
vectors (``rlnOddZernike``): ``[a,b,c]`` without spaces.

API summary
-----------
``CARRY_PREFIX = "csparc/"``, ``CARRIED_FIELDS``
``encode(values) -> ndarray``   numbers stay numbers (``write_star`` formats them), vectors become ``[a,b]`` text (bytes)
``decode(label, texts, source) -> (field, ndarray)``   dtype from ``cs.FIELD_DTYPES`` or inferred
"""

from __future__ import annotations

import numpy as np

from cryodesk.base.errors import DataError
from cryodesk.io.cs import FIELD_DTYPES, unique_first
from cryodesk.io.star import format_column
from cryodesk.io.star_numbers import parse_floats, parse_uints

__all__ = ["CARRY_PREFIX", "CARRIED_FIELDS", "encode", "decode", "is_carried"]

CARRY_PREFIX = "csparc/"
#: Fields written as ``_csparc/<field>`` when present (besides the exposure group, see relion_optics).
CARRIED_FIELDS = ("uid", "location/micrograph_uid", "location/micrograph_shape",
                  "ctf/shift_A", "ctf/trefoil_A", "ctf/tetra_A", "ctf/scale_const")


def is_carried(label: str) -> bool:
    return label.startswith(CARRY_PREFIX) and len(label) > len(CARRY_PREFIX)


def encode(values, coded: bool = False) -> np.ndarray:
    """A carried column for a STAR block: vectors as ``[a,b]`` text (numbers in their shortest exact form),
    scalar numbers as they are (``write_star`` formats them), anything else as text.  ``coded``: vectors
    that come in runs as a ``star_columns.CodedText`` (the text of each run, its index per row)."""
    arr = np.asarray(values)
    if arr.ndim == 1:
        return arr if arr.dtype.kind in "biuf" else format_column(arr)  # numbers: write_star formats them
    flat = arr.reshape(len(arr), -1)
    if len(flat) > 1 and flat.shape[1] and flat.dtype.kind in "biuf" and flat.dtype.itemsize in (1, 2, 4, 8):
        # vectors repeat (per exposure group, in runs): format the first row of each run of equal bits
        # once (bits, not values: -0.0 keeps its own text)
        bits = np.ascontiguousarray(flat).view(f"u{flat.dtype.itemsize}")
        starts = np.ones(len(flat), dtype=bool)
        np.any(bits[1:] != bits[:-1], axis=1, out=starts[1:])
        if not starts.all():
            index = np.cumsum(starts) - 1
            if coded:
                from cryodesk.io.star_columns import CodedText

                return CodedText(encode(flat[starts]), index)
            return encode(flat[starts])[index]
    parts = [format_column(flat[:, j]) for j in range(flat.shape[1])]
    out = np.char.add("[", parts[0]) if parts else np.full(len(arr), "[", dtype=str)
    for p in parts[1:]:
        out = np.char.add(np.char.add(out, ","), p)
    return np.char.encode(np.char.add(out, "]"), "utf-8")  # ASCII text as bytes, as write_star writes it


def _numbers(texts, label: str, source: str) -> np.ndarray:
    try:
        return parse_floats(np.asarray(texts)) if len(texts) else np.zeros(0)
    except ValueError:
        texts = np.asarray(texts).astype(str).tolist()
        bad = next(t for t in texts if not _is_number(t))
        raise DataError(f"{source}: column _{label} has a non-numeric value {bad!r}") from None


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _vectors(texts, label: str, source: str) -> np.ndarray:
    """``[a,b]`` texts as an (n, width) array; each distinct text parsed once (they repeat per group)."""
    table, inv = unique_first(np.asarray(texts))
    rows = []
    for k, t in enumerate(table.tolist()):
        t = t.decode("utf-8") if isinstance(t, bytes) else str(t)
        if not (t.startswith("[") and t.endswith("]")):
            row = int(np.argmax(inv == k))
            raise DataError(f"{source}: column _{label}, row {row + 1}: expected a vector like [1,2], got {t!r}")
        rows.append(t[1:-1].split(",") if len(t) > 2 else [])
    width = {len(r) for r in rows}
    if len(width) > 1:
        raise DataError(f"{source}: column _{label}: vectors of different lengths {sorted(width)}")
    flat = _numbers([v for r in rows for v in r], label, source)
    return flat.reshape(len(rows), width.pop() if width else 0)[inv]


def _inferred(values: np.ndarray) -> np.ndarray:
    """Integers as CryoSPARC stores them (u4, or u8/i8 when they do not fit), other numbers as f4."""
    if values.size and np.all(np.isfinite(values)) and np.all(values == np.round(values)):
        lo, hi = values.min(), values.max()
        if lo >= 0:
            return values.astype(np.uint32 if hi < 2**32 else np.uint64)
        return values.astype(np.int64)
    return values.astype(np.float32)


def decode(label: str, texts, source: str) -> tuple[str, np.ndarray]:
    """The ``.cs`` field and values of a carried ``_csparc/<field>`` column."""
    name = label[len(CARRY_PREFIX):]
    texts = np.asarray(texts)
    if texts.dtype.kind != "S":  # bulk-read columns stay ASCII bytes; anything else as str
        texts = texts.astype(str)
    base, shape = FIELD_DTYPES.get(name, (None, None))
    if base == "S":
        return name, texts if texts.dtype.kind == "S" else np.char.encode(texts, "utf-8")
    first = texts[0].decode("utf-8") if len(texts) and texts.dtype.kind == "S" else str(texts[0]) if len(texts) else ""
    vector = shape not in (None, ()) or first.startswith("[")
    if name in ("uid", "location/micrograph_uid"):
        # 64-bit ids do not survive a trip through float64: parse them as integers
        fast = parse_uints(texts)
        if fast is not None:
            return name, fast
        texts = texts.astype(str)
        try:
            if texts.size and not np.all(np.strings.isdecimal(texts)):
                raise ValueError("not a number")
            return name, texts.astype(np.uint64)
        except (ValueError, OverflowError):
            raise DataError(f"{source}: column _{label} has a value that is not an unsigned integer") from None
    values = _vectors(texts, label, source) if vector else _numbers(texts, label, source)
    if shape not in (None, ()) and values.shape[1:] != tuple(shape):
        raise DataError(f"{source}: column _{label}: vectors of length {values.shape[1:]} but {name} "
                        f"has shape {tuple(shape)}")
    return name, values.astype(base) if base is not None else _inferred(values)
