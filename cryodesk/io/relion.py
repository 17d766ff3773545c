"""RELION particle STAR <-> CryoSPARC ``.cs`` datasets.

The full mapping is the table in the README ("Particle metadata across
CryoSPARC and RELION"); the pieces live in :mod:`~cryodesk.io.poses` (rotation
convention, with its derivation), :mod:`~cryodesk.io.relion_align` (poses,
shifts, subsets, classes), :mod:`~cryodesk.io.relion_optics` (optics groups,
beam tilt, magnification) and :mod:`~cryodesk.io.relion_carry` (CryoSPARC
fields carried verbatim as ``_csparc/<field>``).  In short (RELION -> ``.cs``)::

    rlnImageName "n@path"          blob/path = path, blob/idx = n - 1
    rlnImagePixelSize | rlnPixelSize | rlnDetectorPixelSize*1e4/rlnMagnification
                                   blob/psize_A
    rlnImageSize                   blob/shape = (s, s)   (else 0; fill from headers)
    rlnOpticsGroup                 ctf/exp_group_id (unless _csparc/ctf/exp_group_id)
    rlnVoltage, rlnSphericalAberration, rlnAmplitudeContrast
                                   ctf/accel_kv, ctf/cs_mm, ctf/amp_contrast
    rlnDefocusU, rlnDefocusV       ctf/df1_A, ctf/df2_A
    rlnDefocusAngle, rlnPhaseShift ctf/df_angle_rad, ctf/phase_shift_rad (deg -> rad)
    rlnCtfScalefactor, rlnCtfBfactor  ctf/scale, ctf/bfactor
    rlnBeamTiltX/Y, rlnMagMat*     ctf/tilt_A, ctf/anisomag
    rlnAngle*, rlnOrigin*, rlnRandomSubset, rlnClassNumber
                                   alignments3D/* or alignments2D/*
    rlnMicrographName              location/micrograph_path (+ a uid hashed from it)
    rlnMicrographPixelSize         location/micrograph_psize_A
    rlnCoordinateX/Y               location/center_x_frac, center_y_frac, when the
                                   micrograph shapes are known
    _csparc/<field>                <field> (uid, exposure group, CTF terms RELION lacks)
    anything else                  relion/<label> (float64, int64 or bytes), so that a
                                   STAR -> .cs -> STAR round trip keeps every column

Every conversion fills a :class:`~cryodesk.io.conversion.ConversionReport`.

API summary
-----------
``star_to_cs(blocks, source="STAR file", micrograph_shapes=None, report=None, consume=False, columns=False)
    -> ndarray`` (``columns``: a ``cs_columns.Columns``)
``cs_to_star(data, image_paths=None, version=31, report=None, coded=False) -> dict[str, StarBlock]``
``particle_block(blocks, source) -> (particles StarBlock, optics StarBlock | None)``
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable

import numpy as np

from cryodesk.base.errors import DataError
from cryodesk.io import relion_carry as carry
from cryodesk.io import star_numbers
from cryodesk.io.conversion import ConversionReport
from cryodesk.io.cs import as_str, from_columns, new_uids, unique_first
from cryodesk.io.cs_columns import Columns
from cryodesk.io.relion_align import alignments_from_star, alignments_to_star
from cryodesk.io.relion_numbers import NUMBER_LABELS, in_threads, parse_number_columns
from cryodesk.io.relion_optics import (
    EXP_GROUP_LABEL,
    OPTICS_LABELS,
    assign_groups,
    ctf_from_star,
    ctf_to_star,
    merge_optics_rows,
)
from cryodesk.io.star import StarBlock, _utf8, column_floats
from cryodesk.io.star_columns import CodedText, ImageNames, materialise
from cryodesk.io.star_images import parse_image_names_coded
from cryodesk.io.star_raw import owner_of, release_array

__all__ = ["star_to_cs", "cs_to_star", "particle_block", "OPTICS_LABELS", "ConversionReport"]

# label -> (cs field, scale)
_FLOAT_MAP = {
    "rlnVoltage": ("ctf/accel_kv", 1.0), "rlnSphericalAberration": ("ctf/cs_mm", 1.0),
    "rlnAmplitudeContrast": ("ctf/amp_contrast", 1.0), "rlnDefocusU": ("ctf/df1_A", 1.0),
    "rlnDefocusV": ("ctf/df2_A", 1.0), "rlnDefocusAngle": ("ctf/df_angle_rad", np.pi / 180),
    "rlnPhaseShift": ("ctf/phase_shift_rad", np.pi / 180), "rlnCtfScalefactor": ("ctf/scale", 1.0),
    "rlnCtfBfactor": ("ctf/bfactor", 1.0),
}
_CTF_DEFAULTS = {"ctf/scale": 1.0}
_CONSUMED = set(_FLOAT_MAP) | {"rlnImageName", "rlnOpticsGroup", "rlnImagePixelSize", "rlnImageSize",
                               "rlnMicrographName", "rlnImageDimensionality", "rlnMicrographPixelSize"}
# CryoSPARC bookkeeping that means nothing to RELION: listed in the report, logged as info only
_BOOKKEEPING = {"blob/import_sig": "CryoSPARC bookkeeping", "ctf/type": "CryoSPARC bookkeeping",
                "blob/sign": "RELION expects dark-on-light particles (blob/sign -1)"}


def particle_block(blocks: dict[str, StarBlock], source: str = "STAR file"):
    """The particle table (``data_particles`` or a 3.0 block with rlnImageName) and optics."""
    if "particles" in blocks:
        parts = blocks["particles"]
    else:
        cands = [b for b in blocks.values() if "rlnImageName" in b.columns]
        if len(cands) != 1:
            raise DataError(f"{source}: no particle table (a loop with _rlnImageName)")
        parts = cands[0]
    if "rlnImageName" not in parts.columns:
        raise DataError(f"{source}: particle table data_{parts.name} has no _rlnImageName column")
    return parts, blocks.get("optics")


def _typed(vals: np.ndarray) -> np.ndarray:
    """A passthrough column as int64, float64 or (failing both) text."""
    if len(vals) == 0:
        return vals
    for dt in (np.int64, np.float64):
        try:
            return vals.astype(dt)
        except (ValueError, OverflowError):
            pass
    return vals


def _pixel_size(cols: dict, n: int, source: str, used: set) -> np.ndarray:
    if "rlnImagePixelSize" in cols:
        return column_floats(cols["rlnImagePixelSize"], "rlnImagePixelSize", source)
    if "rlnPixelSize" in cols:
        used.add("rlnPixelSize")
        return column_floats(cols["rlnPixelSize"], "rlnPixelSize", source)
    if "rlnDetectorPixelSize" in cols and "rlnMagnification" in cols:
        used.update(("rlnDetectorPixelSize", "rlnMagnification"))
        return (column_floats(cols["rlnDetectorPixelSize"], "rlnDetectorPixelSize", source) * 1e4
                / column_floats(cols["rlnMagnification"], "rlnMagnification", source))
    return np.zeros(n)


def _carried_fields(cols: dict, source: str, report: ConversionReport, used: set) -> dict:
    out = {}
    labels = [lab for lab in cols if carry.is_carried(lab)]
    n = len(next(iter(cols.values()))) if cols else 0
    decoded = in_threads([lambda lab=lab: carry.decode(lab, cols[lab], source) for lab in labels], n)
    for lab, (name, values) in zip(labels, decoded):
        out[name] = values
        used.add(lab)
        report.map(f"_{lab}", name)
    return out


def star_to_cs(blocks: dict[str, StarBlock], source: str = "STAR file",
               micrograph_shapes: dict[str, tuple[int, int]] | None = None,
               report: ConversionReport | None = None, consume: bool = False,
               on_paths: Callable[[np.ndarray], None] | None = None, columns: bool = False) -> np.ndarray | Columns:
    """Particles of a parsed STAR file as a ``.cs`` dataset (see module doc).

    ``consume``: ``blocks`` is emptied before the dataset is built, so that
    its texts are freed first (a caller that reads the file only to convert it).
    ``on_paths``: called with the ``blob/path`` column as ``(distinct paths in first-seen order, each row's
    index)`` (``unique_first`` of it) as soon as it is known (the image names parsed, before the numbers), e.g.
    to start work on the stacks while the rest is converted.
    ``columns``: the dataset as a :class:`~cryodesk.io.cs_columns.Columns` (its fields, not the array: for a
    caller that writes it out once, e.g. with ``write_cs_replacing``; the same values and errors).
    """
    report = report if report is not None else ConversionReport("STAR -> .cs")
    texts = [v for b in blocks.values() for v in b.columns.values()] if consume else []
    out, n = _star_fields(blocks, source, micrograph_shapes, report, on_paths, consume)
    if not columns and isinstance(out["blob/path"], tuple):  # (Columns keeps the paths coded: _star_fields;
        table, index = out["blob/path"]                        # a carried _csparc/blob/path is a column)
        out["blob/path"] = table[index]
    if consume:
        blocks.clear()
        # a bulk-read table's columns are views of one buffer (~0.5 GB at 1M rows): what no field refers to is
        # given back (star_raw) before the dataset is built; a text column kept (the micrograph names) is
        # copied out of a buffer that cannot be given back in parts
        kept = [v for v in out.values() if isinstance(v, np.ndarray)]
        for col in texts:
            _give_back(col, kept)
        del texts, kept
        for fld, vals in out.items():
            if _view_of_more(vals) and not _releasable(vals):
                out[fld] = vals.copy()
    try:
        with np.errstate(over="raise"):  # (free when nothing overflows: no pass of its own)
            # (Columns casts a field at a time and takes it out of ``out``: a field that overflows stays, and
            # every field before it is fine, so _too_large names the same first field as after from_columns)
            return Columns(out, n, consume=True) if columns else from_columns(out, n)
    except FloatingPointError:
        raise DataError(_too_large(out, source)) from None


def _star_fields(blocks: dict[str, StarBlock], source: str, micrograph_shapes, report: ConversionReport,
                 on_paths: Callable[[np.ndarray], None] | None = None, consume: bool = False) -> tuple[dict, int]:
    """The fields of :func:`star_to_cs` as ``({field: values}, rows)``."""
    with ThreadPoolExecutor(1, thread_name_prefix="star-copy") as copier:
        return _star_fields_in(blocks, source, micrograph_shapes, report, on_paths, consume, copier)


def _star_fields_in(blocks, source, micrograph_shapes, report, on_paths, consume, copier) -> tuple[dict, int]:
    parts, optics = particle_block(blocks, source)
    merged, optics_rows, spread = merge_optics_rows(parts, optics, source, report, lazy=True)
    numbered = set(NUMBER_LABELS)
    # the text columns first (the carried fields and the image names need no number), then the number
    # columns (parsed up front: the same values column_floats gives; an optics column once per group,
    # then spread as numbers); any other optics column spread as text, in the same column order
    cols = {lab: vals if vals is not None else None if lab in numbered else spread[lab][optics_rows]
            for lab, vals in merged.items()}
    n = len(parts)
    used = set(_CONSUMED)
    # the numbers parsed in a thread of their own (never raises: a bad column stays text; no report) while
    # this one decodes the image names (handed to on_paths at once) and the carried fields (the kernels of
    # both release the GIL); a bad image name is raised after the carried fields, as before
    with ThreadPoolExecutor(1, thread_name_prefix="star-numbers") if _large(merged, n) else _Inline() as pool:
        parsing = pool.submit(parse_number_columns, merged, optics_rows, spread)
        try:  # the paths as (distinct paths, each row's index): never a ~140-byte path per row (star_to_cs)
            idx, *paths = parse_image_names_coded(cols["rlnImageName"], source)
            paths = tuple(paths)
            bad_names = None
        except DataError as exc:
            bad_names = exc
        if on_paths is not None and bad_names is None:
            on_paths(paths)
        if consume and bad_names is None:  # (the names are read once: their memory goes to what comes next)
            _give_back(cols["rlnImageName"], [idx, *paths])
        carried = _carried_fields(cols, source, report, used)
        if consume:
            decoded = [v for v in carried.values() if isinstance(v, np.ndarray)]
            for lab in cols:
                if carry.is_carried(lab):
                    _give_back(cols[lab], decoded)
        if bad_names is not None:
            raise bad_names
        report.map("rlnImageName (n@path)", "blob/path, blob/idx (n - 1)")
        numbers = parsing.result()
    mics = merged.get("rlnMicrographName")
    if consume and _large(merged, n) and _view_of_more(mics) and not _releasable(mics):
        # the micrograph names kept as they are: copied out of the table's one buffer (star_to_cs frees it
        # before the dataset is built) in a thread, while this one converts the numbers
        mics = copier.submit(np.array, mics, copy=True)
    for lab in merged:
        if lab in numbers:
            cols[lab] = numbers[lab]
        elif cols[lab] is None:
            cols[lab] = spread[lab][optics_rows]

    def text(lab: str) -> np.ndarray:  # a column as text (for relion/ fields)
        vals = merged[lab]
        return vals if vals is not None else cols[lab] if lab not in numbers else spread[lab][optics_rows]
    out: dict[str, object] = {}
    uid = carried.pop("uid", None)
    if uid is not None and n > 1 and bool(np.any(np.diff(np.sort(uid)) == 0)):  # a sort: cheaper than a unique
        report.note("_csparc/uid has repeated values (symmetry-expanded particles?): new uids generated")
        uid = None
    out["uid"] = uid if uid is not None else new_uids(n)
    out.update({"blob/path": paths, "blob/idx": idx})
    psize = _pixel_size(cols, n, source, used)
    size = column_floats(cols["rlnImageSize"], "rlnImageSize", source) if "rlnImageSize" in cols else np.zeros(n)
    out["blob/shape"] = np.stack([size, size], axis=1).astype(np.uint32)
    out["blob/psize_A"] = psize
    out["blob/sign"] = -1.0
    out["ctf/type"] = "imported"
    group = carried.pop("ctf/exp_group_id", None)
    if group is None:
        group = (column_floats(cols["rlnOpticsGroup"], "rlnOpticsGroup", source).astype(np.uint32)
                 if "rlnOpticsGroup" in cols else np.ones(n, np.uint32))
    out["ctf/exp_group_id"] = group
    for lab, (fld, scale) in _FLOAT_MAP.items():
        if lab in cols:
            values = column_floats(cols[lab], lab, source)
            out[fld] = values if scale == 1.0 else values * scale  # (x * 1.0 is x: no copy of the column)
            report.map(lab, fld)
        elif fld in _CTF_DEFAULTS:
            out[fld] = _CTF_DEFAULTS[fld]
    ctf, ctf_used = ctf_from_star(cols, source, report)
    out.update(ctf)
    used |= ctf_used
    align, align_used = alignments_from_star(cols, psize, source, report)
    out.update(align)
    used |= align_used
    if "rlnMicrographName" in cols:
        mics = mics.result() if isinstance(mics, Future) else cols["rlnMicrographName"]
        mic_table, mic_inv = unique_first(mics)
        mic_names = [m.decode("utf-8") if isinstance(m, bytes) else m for m in mic_table.tolist()]
        out["location/micrograph_uid"] = np.array(
            [int.from_bytes(hashlib.blake2b(m.encode(), digest_size=8).digest(), "little") >> 1
             for m in mic_names], dtype=np.uint64)[mic_inv]
        out["location/exp_group_id"] = group
        out["location/micrograph_path"] = mics
        if "rlnMicrographPixelSize" in cols:
            out["location/micrograph_psize_A"] = column_floats(cols["rlnMicrographPixelSize"],
                                                               "rlnMicrographPixelSize", source)
        shapes = micrograph_shapes or {}
        shp = None
        if "location/micrograph_shape" in carried:
            shp = carried["location/micrograph_shape"].astype(np.float64)
        elif all(m in shapes for m in mic_names):
            shp = np.array([shapes[m] for m in mic_names], dtype=np.float64).reshape(-1, 2)[mic_inv]
        if "rlnCoordinateX" in cols and shp is not None and np.all(shp > 0):
            out["location/micrograph_shape"] = shp.astype(np.uint32)
            out["location/center_x_frac"] = column_floats(cols["rlnCoordinateX"], "rlnCoordinateX", source) / shp[:, 1]
            out["location/center_y_frac"] = column_floats(cols["rlnCoordinateY"], "rlnCoordinateY", source) / shp[:, 0]
            used.update(("rlnCoordinateX", "rlnCoordinateY"))
    elif "rlnMicrographPixelSize" in cols:
        used.discard("rlnMicrographPixelSize")
    out.update(carried)  # explicit CryoSPARC values win over ones derived from RELION columns
    for lab in merged:
        if lab in used:
            continue
        out[f"relion/{lab}"] = _typed(text(lab))
        report.carry(lab, f"relion/{lab}")
    return out, n


def _give_back(col, kept: list) -> None:
    """The memory of a bulk-read column given back (``star_raw.release_array``) unless an array of ``kept``
    may share it (a value that is a view of the column)."""
    if isinstance(col, np.ndarray) and not any(np.may_share_memory(col, k) for k in kept):
        release_array(col)


def _releasable(vals) -> bool:
    """``vals`` lies in memory whose parts can be given back (``star_raw.zeroed``): the rest of it goes."""
    return isinstance(vals, np.ndarray) and owner_of(vals) is not None


def _view_of_more(vals) -> bool:
    """``vals`` is a view of a buffer more than twice its size (a column of a bulk-read table)."""
    return isinstance(vals, np.ndarray) and isinstance(vals.base, np.ndarray) and vals.base.nbytes > 2 * vals.nbytes


def _large(cols: dict, n: int) -> bool:
    """Worth a thread: a table the compiled parsers read (bulk-read bytes columns of many rows)."""
    return n >= star_numbers.MIN_SIZE and any(isinstance(v, np.ndarray) and v.dtype.kind == "S"
                                              for v in cols.values()) and star_numbers.implementation() == "numba"


class _Inline:
    """A pool of no thread: ``submit`` calls at once (a small table)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        return None

    def submit(self, fn, *args) -> Future:
        done: Future = Future()
        done.set_result(fn(*args))
        return done


def _too_large(out: dict, source: str) -> str:
    """Which value overflowed CryoSPARC's float32 (a crafted or corrupt file: 1e39 would become inf)."""
    labels = {fld: lab for lab, (fld, _) in _FLOAT_MAP.items()}
    big = float(np.finfo(np.float32).max)
    for fld, vals in out.items():
        if isinstance(vals, tuple):  # (coded text: blob/path)
            continue
        v = np.asarray(vals)
        if v.dtype.kind != "f" or v.dtype.itemsize <= 4:
            continue
        with np.errstate(invalid="ignore"):
            bad = np.isfinite(v) & (np.abs(v) > big)
        if bad.any():
            flat, bad = v.reshape(max(len(v), 1) if v.ndim else 1, -1), bad.reshape(max(len(v), 1) if v.ndim else 1, -1)
            row = int(np.flatnonzero(bad.any(axis=1))[0])
            value = float(flat[row][bad[row]][0])
            what = f"_{labels[fld]}" if fld in labels else fld
            return (f"{source}: {what} of particle {row + 1} is {value!r}, beyond the range of CryoSPARC's "
                    f"32-bit numbers (a corrupt or hand-edited value?)")
    return f"{source}: a value is beyond the range of CryoSPARC's 32-bit numbers"


def _star_str(values) -> CodedText:
    """A text column for STAR: UTF-8 bytes, each distinct value converted once (kept coded)."""
    table, inv = unique_first(np.asarray(values))
    if table.dtype.kind != "S":
        table = np.char.encode(np.asarray(as_str(table), dtype=str), "utf-8")
    return CodedText(table, inv)


def _ctf_columns(data: np.ndarray, cols: dict, used: set, report: ConversionReport) -> None:
    names = data.dtype.names
    for lab, (fld, scale) in _FLOAT_MAP.items():
        if fld in names:
            cols[lab] = data[fld] if scale == 1.0 else np.degrees(data[fld].astype(np.float64))
            used.add(fld)
            report.map(fld, lab)
    ctf, ctf_used, to_carry = ctf_to_star(data, report)
    cols.update(ctf)
    used |= ctf_used
    for fld in to_carry:
        cols[carry.CARRY_PREFIX + fld] = carry.encode(data[fld], coded=True)
        used.add(fld)
        report.carry(fld, f"_{carry.CARRY_PREFIX}{fld}")


def _location_columns(data: np.ndarray, cols: dict, used: set, report: ConversionReport) -> None:
    names = data.dtype.names
    if "location/micrograph_path" in names:
        cols["rlnMicrographName"] = _star_str(data["location/micrograph_path"])
        used.add("location/micrograph_path")
        if "location/micrograph_shape" in names and "location/center_x_frac" in names:
            shp = data["location/micrograph_shape"].astype(np.float64)
            if np.all(shp > 0):
                cols["rlnCoordinateX"] = np.round(data["location/center_x_frac"] * shp[:, 1], 3)
                cols["rlnCoordinateY"] = np.round(data["location/center_y_frac"] * shp[:, 0], 3)
                used.update(("location/center_x_frac", "location/center_y_frac"))
                report.map("location/center_x/y_frac × micrograph_shape", "rlnCoordinateX/Y")
    if "location/micrograph_psize_A" in names:
        cols["rlnMicrographPixelSize"] = data["location/micrograph_psize_A"]
        used.add("location/micrograph_psize_A")
    if "location/exp_group_id" in names and ("ctf/exp_group_id" not in names or np.array_equal(
            data["location/exp_group_id"], data["ctf/exp_group_id"])):
        used.add("location/exp_group_id")  # the same numbers as the optics groups


def cs_to_star(data: np.ndarray, image_paths=None, version: int = 31,
               report: ConversionReport | None = None, coded: bool = False) -> dict[str, StarBlock]:
    """A ``.cs`` particle dataset as RELION STAR blocks.

    Parameters
    ----------
    data : ndarray
        Needs ``blob/path`` and ``blob/idx``; every other field is mapped,
        carried or reported (``report``).
    image_paths : sequence of str, optional
        Stack path to write for each particle (default: ``blob/path`` as is).
    version : int
        31 (``data_optics`` + ``data_particles``, RELION 3.1 and later) or 30
        (one ``data_`` block, origins in pixels).
    report : ConversionReport, optional
        Filled with what was mapped, carried and not converted.
    coded : bool
        Keep the long text columns (image and micrograph names, carried
        vectors) as :mod:`~cryodesk.io.star_columns` tables for ``write_star``
        (the same file, without building a million rows of text); default:
        every column an array.
    """
    report = report if report is not None else ConversionReport(".cs -> STAR")
    names = data.dtype.names
    n = len(data)
    if image_paths is None:
        paths = unique_first(data["blob/path"])
    elif isinstance(image_paths, tuple):
        paths = image_paths
    else:
        paths = unique_first(np.asarray(image_paths))
    cols: dict[str, np.ndarray] = {"rlnImageName": ImageNames(data["blob/idx"], _utf8(paths[0]), paths[1])}
    used = {"blob/path", "blob/idx", "uid"}
    exp_group = (data["ctf/exp_group_id"].astype(np.int64) if "ctf/exp_group_id" in names
                 else np.ones(n, dtype=np.int64))
    used.add("ctf/exp_group_id")
    _location_columns(data, cols, used, report)
    _ctf_columns(data, cols, used, report)
    align, align_used = alignments_to_star(data, version, report)
    cols.update(align)
    used |= align_used
    if "blob/psize_A" in names:
        cols["rlnImagePixelSize"] = data["blob/psize_A"]
        used.add("blob/psize_A")
    if "blob/shape" in names:
        cols["rlnImageSize"] = data["blob/shape"][:, 0]
        used.add("blob/shape")
        if version != 30:
            cols["rlnImageDimensionality"] = np.full(n, 2)
    for fld in names:
        if fld.startswith("relion/"):
            used.add(fld)
            if fld[7:] in cols:
                report.skip(fld, f"superseded by the converted {fld[7:]}")
            else:
                cols[fld[7:]] = data[fld]
    for fld in carry.CARRIED_FIELDS:
        if fld in names and (fld == "uid" or fld not in used):
            cols[carry.CARRY_PREFIX + fld] = carry.encode(data[fld], coded=True)
            used.add(fld)
            if fld != "uid":
                report.carry(fld, f"_{carry.CARRY_PREFIX}{fld}")
    for fld in names:
        if fld in used:
            continue
        if fld == "blob/sign" and np.any(data[fld] != -1):
            report.skip(fld, "some particles are light-on-dark (blob/sign +1); RELION expects dark-on-light: "
                        "invert those stacks before using them in RELION")
        elif fld in _BOOKKEEPING:
            report.skip(fld, _BOOKKEEPING[fld], quiet=True)
        else:
            report.skip(fld, "no RELION column")
    if version == 30:
        renumber = bool(n) and exp_group.min() < 1
        cols["rlnOpticsGroup"] = np.unique(exp_group, return_inverse=True)[1].ravel() + 1 if renumber else exp_group
        if renumber:
            cols[EXP_GROUP_LABEL] = exp_group
            report.note(f"optics groups numbered from 1; exp_group_id kept as _{EXP_GROUP_LABEL}")
        if "rlnImagePixelSize" in cols:  # 3.0 has no image pixel size: encode it as det/mag
            cols["rlnDetectorPixelSize"] = cols.pop("rlnImagePixelSize")
            cols["rlnMagnification"] = np.full(n, 10000.0)
        return {"": StarBlock("", columns=cols if coded else materialise(cols))}
    blocks = _with_optics(cols, exp_group, report)
    if not coded:
        blocks["particles"].columns = materialise(blocks["particles"].columns)
    return blocks


def _with_optics(cols: dict, exp_group: np.ndarray, report: ConversionReport) -> dict[str, StarBlock]:
    """Split the columns into ``data_optics`` (one row per group) and ``data_particles``."""
    optics_cols = {lab: np.asarray(cols.pop(lab)) for lab in OPTICS_LABELS
                   if lab in cols and lab not in ("rlnOpticsGroup", "rlnOpticsGroupName")}
    names = cols.pop("rlnOpticsGroupName", None)
    groups = assign_groups(exp_group, optics_cols, report)
    cols["rlnOpticsGroup"] = groups.numbers[groups.index]
    optics = {"rlnOpticsGroup": groups.numbers}
    optics["rlnOpticsGroupName"] = (np.asarray(names)[groups.first] if names is not None else
                                    np.array([f"opticsGroup{k}" for k in groups.numbers.tolist()]))
    for lab, values in optics_cols.items():
        optics[lab] = values[groups.first]
    if groups.carry_exp_group:
        optics[EXP_GROUP_LABEL] = groups.exp_group
    return {"optics": StarBlock("optics", columns=optics),
            "particles": StarBlock("particles", columns=cols)}
