"""The fields of a CryoSPARC ``.cs`` dataset: canonical dtypes, text as UTF-8 bytes, new uids.

Split out of :mod:`cryodesk.io.cs` (which re-exports them) so that
:mod:`cryodesk.io.cs_columns` can use them without an import cycle.

API summary
-----------
``FIELD_DTYPES``   ``{field: (base dtype or "S", shape)}`` of the particle fields cryodesk reads and writes
``new_uids(n) -> ndarray[uint64]``
"""

from __future__ import annotations

import numpy as np

from cryodesk.io.runs import unique_first

__all__ = ["FIELD_DTYPES", "new_uids"]

_S = "S"  # placeholder: a string field, width chosen from the data
#: Canonical dtypes of the particle fields cryodesk reads and writes.
FIELD_DTYPES: dict[str, tuple] = {
    "uid": ("<u8", ()),
    "blob/path": (_S, ()), "blob/idx": ("<u4", ()), "blob/shape": ("<u4", (2,)),
    "blob/psize_A": ("<f4", ()), "blob/sign": ("<f4", ()), "blob/import_sig": ("<u8", ()),
    "ctf/type": (_S, ()), "ctf/exp_group_id": ("<u4", ()), "ctf/accel_kv": ("<f4", ()),
    "ctf/cs_mm": ("<f4", ()), "ctf/amp_contrast": ("<f4", ()), "ctf/df1_A": ("<f4", ()),
    "ctf/df2_A": ("<f4", ()), "ctf/df_angle_rad": ("<f4", ()), "ctf/phase_shift_rad": ("<f4", ()),
    "ctf/scale": ("<f4", ()), "ctf/scale_const": ("<f4", ()), "ctf/shift_A": ("<f4", (2,)),
    "ctf/tilt_A": ("<f4", (2,)), "ctf/trefoil_A": ("<f4", (2,)), "ctf/tetra_A": ("<f4", (4,)),
    "ctf/anisomag": ("<f4", (4,)), "ctf/bfactor": ("<f4", ()),
    "location/micrograph_uid": ("<u8", ()), "location/exp_group_id": ("<u4", ()),
    "location/micrograph_path": (_S, ()), "location/micrograph_shape": ("<u4", (2,)),
    "location/micrograph_psize_A": ("<f4", ()), "location/center_x_frac": ("<f4", ()),
    "location/center_y_frac": ("<f4", ()),
    "alignments3D/split": ("<u4", ()), "alignments3D/shift": ("<f4", (2,)),
    "alignments3D/pose": ("<f4", (3,)), "alignments3D/psize_A": ("<f4", ()),
    "alignments3D/class": ("<u4", ()),
    "alignments2D/split": ("<u4", ()), "alignments2D/shift": ("<f4", (2,)),
    "alignments2D/pose": ("<f4", ()), "alignments2D/psize_A": ("<f4", ()),
    "alignments2D/class": ("<u4", ()),
}


def _encode(values) -> np.ndarray:
    """str/object values as UTF-8 ``S<n>`` (at least ``S1``); distinct values encoded once."""
    arr = np.asarray(values)
    if arr.dtype.kind == "S":
        return arr if arr.dtype.itemsize else arr.astype("S1")
    if arr.dtype.kind != "U":
        arr = np.asarray(arr, dtype=str)
    if arr.size == 0:
        return np.zeros(arr.shape, "S1")
    codes = np.ascontiguousarray(arr).view(np.uint32) if arr.dtype.itemsize else np.zeros(0, np.uint32)
    if codes.size == 0 or int(codes.max()) < 128:
        out = arr.astype("S")  # ASCII: a C cast
    else:
        if arr.ndim == 1:
            uniq, inv = unique_first(arr)
            out = np.char.encode(uniq, "utf-8")[inv]
        else:
            out = np.char.encode(arr, "utf-8")
    return out if out.dtype.itemsize else out.astype("S1")


def new_uids(n: int, rng: np.random.Generator | None = None) -> np.ndarray:
    """``n`` distinct random 64-bit uids (CryoSPARC's identity for a row)."""
    rng = rng or np.random.default_rng()
    uids = np.unique(rng.integers(1, 2**63, size=n, dtype=np.uint64))
    while uids.size < n:
        uids = np.unique(np.concatenate([uids, rng.integers(1, 2**63, size=n - uids.size, dtype=np.uint64)]))
    return rng.permutation(uids)
