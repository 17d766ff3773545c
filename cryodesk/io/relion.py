"""RELION particle STAR <-> CryoSPARC ``.cs`` field conventions.

Mapping (RELION -> ``.cs``)::

    rlnImageName "n@path"          blob/path = path, blob/idx = n - 1
    rlnImagePixelSize | rlnPixelSize | rlnDetectorPixelSize*1e4/rlnMagnification
                                   blob/psize_A
    rlnImageSize                   blob/shape = (s, s)   (else 0; fill from headers)
    rlnOpticsGroup                 ctf/exp_group_id
    rlnVoltage, rlnSphericalAberration, rlnAmplitudeContrast
                                   ctf/accel_kv, ctf/cs_mm, ctf/amp_contrast
    rlnDefocusU, rlnDefocusV       ctf/df1_A, ctf/df2_A
    rlnDefocusAngle, rlnPhaseShift ctf/df_angle_rad, ctf/phase_shift_rad (deg -> rad)
    rlnCtfScalefactor, rlnCtfBfactor  ctf/scale, ctf/bfactor
    rlnMicrographName              location/micrograph_path (+ a uid hashed from it)
    rlnCoordinateX/Y               location/center_x_frac, center_y_frac, when the
                                   micrograph shapes are given
    anything else                  relion/<label> (float64 or bytes), so that a
                                   STAR -> .cs -> STAR round trip keeps every column

RELION 3.1+ optics-group columns are spread onto the particles first.  Poses
(``rlnAngle*``/``rlnOrigin*``) are kept in ``relion/`` but not converted to
``alignments3D/*`` (CryoSPARC's axis-angle convention is not handled yet).

API summary
-----------
``star_to_cs(blocks, source="STAR file", micrograph_shapes=None) -> ndarray``
``cs_to_star(data, image_paths=None, version=31) -> dict[str, StarBlock]``
``particle_block(blocks, source) -> (particles StarBlock, optics StarBlock | None)``
"""

from __future__ import annotations

import hashlib

import numpy as np

from cryodesk.base.errors import DataError
from cryodesk.io.cs import as_str, from_columns
from cryodesk.io.star import StarBlock, format_image_names, parse_image_names

__all__ = ["star_to_cs", "cs_to_star", "particle_block", "OPTICS_LABELS"]

#: Labels that RELION 3.1+ keeps in ``data_optics`` rather than per particle.
OPTICS_LABELS = ("rlnOpticsGroupName", "rlnAmplitudeContrast", "rlnSphericalAberration",
                 "rlnVoltage", "rlnImagePixelSize", "rlnMicrographOriginalPixelSize",
                 "rlnImageSize", "rlnImageDimensionality", "rlnBeamTiltX", "rlnBeamTiltY",
                 "rlnMicrographPixelSize", "rlnCtfDataAreCtfPremultiplied")
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
                               "rlnMicrographName", "rlnImageDimensionality"}


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


def _floats(values, label: str, source: str) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except ValueError:
        bad = next(str(v) for v in values if not _is_float(v))
        raise DataError(f"{source}: column _{label} has a non-numeric value {bad!r}") from None


def _is_float(v) -> bool:
    try:
        float(v)
        return True
    except ValueError:
        return False


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


def _merged_columns(parts: StarBlock, optics: StarBlock | None, source: str) -> dict[str, np.ndarray]:
    cols = dict(parts.columns)
    if optics is None or not optics.columns:
        return cols
    if "rlnOpticsGroup" not in optics.columns or "rlnOpticsGroup" not in cols:
        raise DataError(f"{source}: data_optics and the particles need an _rlnOpticsGroup column")
    og = list(optics.columns["rlnOpticsGroup"])
    pos = {g: k for k, g in enumerate(og)}
    try:
        rows = np.array([pos[g] for g in cols["rlnOpticsGroup"]], dtype=np.int64)
    except KeyError as exc:
        raise DataError(f"{source}: particle refers to optics group {exc.args[0]} "
                        f"which data_optics does not define") from None
    for lab, vals in optics.columns.items():
        if lab not in cols:
            cols[lab] = vals[rows]
    return cols


def star_to_cs(blocks: dict[str, StarBlock], source: str = "STAR file",
               micrograph_shapes: dict[str, tuple[int, int]] | None = None) -> np.ndarray:
    """Particles of a parsed STAR file as a ``.cs`` dataset (see module doc)."""
    parts, optics = particle_block(blocks, source)
    cols = _merged_columns(parts, optics, source)
    n = len(parts)
    idx, paths = parse_image_names(cols["rlnImageName"], source)
    out: dict[str, object] = {"blob/path": paths, "blob/idx": idx}
    if "rlnImagePixelSize" in cols:
        psize = _floats(cols["rlnImagePixelSize"], "rlnImagePixelSize", source)
    elif "rlnPixelSize" in cols:
        psize = _floats(cols["rlnPixelSize"], "rlnPixelSize", source)
    elif "rlnDetectorPixelSize" in cols and "rlnMagnification" in cols:
        psize = (_floats(cols["rlnDetectorPixelSize"], "rlnDetectorPixelSize", source) * 1e4
                 / _floats(cols["rlnMagnification"], "rlnMagnification", source))
        cols = {k: v for k, v in cols.items() if k not in ("rlnDetectorPixelSize", "rlnMagnification")}
    else:
        psize = np.zeros(n)
    size = _floats(cols["rlnImageSize"], "rlnImageSize", source) if "rlnImageSize" in cols else np.zeros(n)
    out["blob/shape"] = np.stack([size, size], axis=1).astype(np.uint32)
    out["blob/psize_A"] = psize
    out["blob/sign"] = -1.0
    out["ctf/type"] = "imported"
    group = (_floats(cols["rlnOpticsGroup"], "rlnOpticsGroup", source).astype(np.uint32)
             if "rlnOpticsGroup" in cols else np.ones(n, np.uint32))
    out["ctf/exp_group_id"] = group
    for lab, (fld, scale) in _FLOAT_MAP.items():
        if lab in cols:
            out[fld] = _floats(cols[lab], lab, source) * scale
        elif fld in _CTF_DEFAULTS:
            out[fld] = _CTF_DEFAULTS[fld]
    if "rlnMicrographName" in cols:
        mics = cols["rlnMicrographName"]
        out["location/micrograph_uid"] = np.array(
            [int.from_bytes(hashlib.blake2b(m.encode(), digest_size=8).digest(), "little") >> 1
             for m in mics.tolist()], dtype=np.uint64)
        out["location/exp_group_id"] = group
        out["location/micrograph_path"] = mics
        shapes = micrograph_shapes or {}
        if "rlnCoordinateX" in cols and all(m in shapes for m in set(mics.tolist())):
            shp = np.array([shapes[m] for m in mics.tolist()], dtype=np.float64).reshape(n, 2)
            out["location/micrograph_shape"] = shp.astype(np.uint32)
            out["location/center_x_frac"] = _floats(cols["rlnCoordinateX"], "rlnCoordinateX", source) / shp[:, 1]
            out["location/center_y_frac"] = _floats(cols["rlnCoordinateY"], "rlnCoordinateY", source) / shp[:, 0]
    for lab, vals in cols.items():
        if lab in _CONSUMED:
            continue
        out[f"relion/{lab}"] = _typed(vals)
    return from_columns(out, n)


def _star_str(values) -> np.ndarray:
    return np.array(as_str(values), dtype=str)


def cs_to_star(data: np.ndarray, image_paths=None, version: int = 31) -> dict[str, StarBlock]:
    """A ``.cs`` particle dataset as RELION STAR blocks.

    Parameters
    ----------
    data : ndarray
        Needs ``blob/path`` and ``blob/idx``; ``ctf/*``, ``location/*`` and
        ``relion/*`` fields are used when present.
    image_paths : sequence of str, optional
        Stack path to write for each particle (default: ``blob/path`` as is).
    version : int
        31 (``data_optics`` + ``data_particles``) or 30 (one ``data_`` block).
    """
    names = data.dtype.names
    n = len(data)
    paths = _star_str(data["blob/path"]) if image_paths is None else np.asarray(image_paths, dtype=str)
    cols: dict[str, np.ndarray] = {"rlnImageName": format_image_names(data["blob/idx"], paths)}
    optics: dict[str, np.ndarray] = {}
    if "ctf/exp_group_id" in names:
        g = data["ctf/exp_group_id"].astype(np.int64)
        cols["rlnOpticsGroup"] = g if g.size == 0 or g.min() >= 1 else np.unique(g, return_inverse=True)[1] + 1
    else:
        cols["rlnOpticsGroup"] = np.ones(n, dtype=np.int64)
    if "location/micrograph_path" in names:
        cols["rlnMicrographName"] = _star_str(data["location/micrograph_path"])
        if "location/micrograph_shape" in names and "location/center_x_frac" in names:
            shp = data["location/micrograph_shape"].astype(np.float64)
            if np.all(shp > 0):
                cols["rlnCoordinateX"] = np.round(data["location/center_x_frac"] * shp[:, 1], 3)
                cols["rlnCoordinateY"] = np.round(data["location/center_y_frac"] * shp[:, 0], 3)
    for lab, (fld, scale) in _FLOAT_MAP.items():
        if fld in names:
            cols[lab] = data[fld] if scale == 1.0 else np.float32(np.degrees(data[fld].astype(np.float64)))
    if "blob/psize_A" in names:
        cols["rlnImagePixelSize"] = data["blob/psize_A"]
    if "blob/shape" in names:
        cols["rlnImageSize"] = data["blob/shape"][:, 0]
        if version != 30:
            cols["rlnImageDimensionality"] = np.full(n, 2)
    for fld in names:
        if fld.startswith("relion/") and fld[7:] not in cols:
            cols[fld[7:]] = data[fld]
    if version == 30:
        if "rlnImagePixelSize" in cols:  # 3.0 has no image pixel size: encode it as det/mag
            cols["rlnDetectorPixelSize"] = cols.pop("rlnImagePixelSize")
            cols["rlnMagnification"] = np.full(n, 10000.0)
        return {"": StarBlock("", columns=cols)}
    g = np.asarray(cols["rlnOpticsGroup"])
    uniq, first = np.unique(g, return_index=True)
    optics = {"rlnOpticsGroup": uniq}
    optics["rlnOpticsGroupName"] = (np.asarray(cols.pop("rlnOpticsGroupName"))[first]
                                    if "rlnOpticsGroupName" in cols else
                                    np.array([f"opticsGroup{k}" for k in uniq.tolist()]))
    for lab in OPTICS_LABELS:
        if lab in cols:
            optics[lab] = np.asarray(cols.pop(lab))[first]
    return {"optics": StarBlock("optics", columns=optics),
            "particles": StarBlock("particles", columns=cols)}
