"""Particle alignments: ``alignments3D``/``alignments2D`` <-> RELION angles, origins, subsets, classes.

The rotation convention and its derivation are in :mod:`cryodesk.io.poses`.

STAR -> ``.cs``
    * 3D when ``rlnAngleRot``, ``rlnAngleTilt`` and ``rlnAnglePsi`` are all
      present and rot/tilt are not all zero: ``alignments3D/pose`` is the
      rotation vector of ``Rz(rot) Ry(tilt) Rz(psi)``.  No origins: zero shifts
      (as cryoDRGN), said in the report.
    * 2D when only psi is meaningful (no rot/tilt, or all zero, as RELION's
      Class2D writes) and origins are present: ``alignments2D/pose`` is psi in
      radians, unwrapped.  A psi without origins is a picking angle: kept as
      ``relion/rlnAnglePsi``.
    * Shifts in pixels of ``psize_A`` = the image pixel size:
      ``rlnOriginX/YAngst / psize`` (RELION 3.1+) or ``rlnOriginX/Y`` as they are
      (RELION 3.0, pixels).  ``rlnRandomSubset`` 1/2 -> ``split`` 0/1,
      ``rlnClassNumber`` k -> ``class`` k - 1 (kept as relion/ when they do not
      fit, e.g. class 0 from autopicking).

``.cs`` -> STAR: the reverse; ``alignments3D`` wins over ``alignments2D`` (RELION
has one pose per particle).  Origins are written in Å (``shift * psize_A``),
or in pixels of the image for a RELION 3.0 file.

API summary
-----------
``POSE_LABELS``
``alignments_from_star(cols, psize, source, report) -> ({field: values}, consumed labels)``
``alignments_to_star(data, version, report) -> ({label: values}, consumed fields)``
"""

from __future__ import annotations

import numpy as np

from cryodesk.base.errors import DataError
from cryodesk.io.conversion import ConversionReport
from cryodesk.io.poses import rotvec_to_relion
from cryodesk.io.poses_from_star import rotvec_from_relion
from cryodesk.io.star import column_floats

__all__ = ["POSE_LABELS", "alignments_from_star", "alignments_to_star"]

ANGLES = ("rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi")
ORIGINS_A = ("rlnOriginXAngst", "rlnOriginYAngst")
ORIGINS_PX = ("rlnOriginX", "rlnOriginY")
POSE_LABELS = (*ANGLES, *ORIGINS_A, *ORIGINS_PX, "rlnRandomSubset", "rlnClassNumber")
_STATS = ("error", "error_min", "resid_pow", "slice_pow", "image_pow", "cross_cor", "alpha", "alpha_min",
          "weight", "pose_ess", "shift_ess", "class_posterior", "class_ess")


def _labels_1based(cols: dict, label: str, source: str, allowed=None):
    """0-based values of a 1-based integer column, or None when some value does not fit."""
    v = column_floats(cols[label], label, source)
    if v.size and (np.any(v != np.round(v)) or v.min() < 1 or (allowed is not None and not np.isin(v, allowed).all())):
        return None
    return (v - 1).astype(np.uint32)


def alignments_from_star(cols: dict, psize: np.ndarray, source: str,
                         report: ConversionReport) -> tuple[dict, set]:
    """``alignments3D/*`` or ``alignments2D/*`` fields of the (merged) STAR columns."""
    out: dict[str, np.ndarray] = {}
    n = len(psize)
    have = lambda labs: all(lab in cols for lab in labs)  # noqa: E731
    angles = {lab: column_floats(cols[lab], lab, source) for lab in ANGLES if lab in cols}
    is_3d = have(ANGLES) and bool(np.any(angles["rlnAngleRot"] != 0) or np.any(angles["rlnAngleTilt"] != 0))
    origins = ORIGINS_A if have(ORIGINS_A) else ORIGINS_PX if have(ORIGINS_PX) else None
    is_2d = not is_3d and "rlnAnglePsi" in cols and origins is not None
    if not (is_3d or is_2d):
        if "rlnAnglePsi" in cols and origins is None and not have(ANGLES):
            report.note("rlnAnglePsi without origins is a picking angle, not an alignment: kept as relion/rlnAnglePsi")
        return out, set()
    prefix = "alignments3D" if is_3d else "alignments2D"
    used = set(ANGLES) if is_3d else {"rlnAnglePsi"}
    if is_3d:
        out[f"{prefix}/pose"] = rotvec_from_relion(*(angles[lab] for lab in ANGLES))
        report.map("rlnAngleRot/Tilt/Psi (ZYZ, degrees)", "alignments3D/pose (rotation vector, radians)")
    else:
        out[f"{prefix}/pose"] = np.radians(angles["rlnAnglePsi"]).astype(np.float32)
        report.map("rlnAnglePsi (degrees)", "alignments2D/pose (radians)")
    if origins == ORIGINS_A:
        shift_a = np.stack([column_floats(cols[lab], lab, source) for lab in ORIGINS_A], axis=1)
        stored = psize.astype(np.float32)  # as it will be stored (NaN, inf or beyond float32 cannot divide)
        with np.errstate(over="ignore", invalid="ignore"):
            bad = ~((stored > 0) & (stored < np.inf))
        if bad.any():
            k = int(np.argmax(bad))
            raise DataError(f"{source}: the particles have _rlnOriginXAngst/_rlnOriginYAngst but no pixel size "
                            f"(_rlnImagePixelSize) to express them in pixels (particle {k + 1} has {psize[k]!r})")
        # divide by the pixel size as it will be stored (float32), so shift * psize_A gives back the Å
        shift = shift_a / stored.astype(np.float64)[:, None]
        report.map("rlnOriginX/YAngst (Å)", f"{prefix}/shift (pixels of {prefix}/psize_A)")
    elif origins == ORIGINS_PX:
        shift = np.stack([column_floats(cols[lab], lab, source) for lab in ORIGINS_PX], axis=1)
        report.map("rlnOriginX/Y (pixels, RELION 3.0)", f"{prefix}/shift (pixels of {prefix}/psize_A)")
    else:
        shift = np.zeros((n, 2))
        report.note(f"no rlnOriginX/Y(Angst) columns: {prefix}/shift set to 0")
    used.update(origins or ())
    out[f"{prefix}/shift"] = shift.astype(np.float32)
    out[f"{prefix}/psize_A"] = psize.astype(np.float32)
    for label, fld, allowed in (("rlnRandomSubset", "split", (1, 2)), ("rlnClassNumber", "class", None)):
        if label not in cols:
            continue
        values = _labels_1based(cols, label, source, allowed)
        if values is None:
            report.note(f"{label} has values that are not {'1 or 2' if allowed else 'integers >= 1'}: "
                        f"kept as relion/{label}, not {prefix}/{fld}")
            continue
        out[f"{prefix}/{fld}"] = values
        used.add(label)
        report.map(f"{label} (1-based)", f"{prefix}/{fld} (0-based)")
    return out, used


def alignments_to_star(data: np.ndarray, version: int, report: ConversionReport) -> tuple[dict, set]:
    """RELION pose columns of the ``alignments3D`` (or else ``alignments2D``) fields."""
    names = data.dtype.names
    prefix = "alignments3D" if "alignments3D/pose" in names else \
        "alignments2D" if "alignments2D/pose" in names else None
    cols: dict[str, np.ndarray] = {}
    if prefix is None:
        return cols, set()
    used = {f"{prefix}/pose"}
    if prefix == "alignments3D":  # (read in place: a large set by one compiled pass)
        euler = rotvec_to_relion(data[f"{prefix}/pose"].reshape(len(data), 3))
        for k, lab in enumerate(ANGLES):
            cols[lab] = euler[:, k]
        report.map("alignments3D/pose (rotation vector, radians)", "rlnAngleRot/Tilt/Psi (ZYZ, degrees)")
        if any(f.startswith("alignments2D/") for f in names):
            report.note("alignments2D not written: RELION has one pose per particle and alignments3D is used")
    else:
        cols["rlnAnglePsi"] = np.degrees(data[f"{prefix}/pose"].astype(np.float64).reshape(len(data)))
        report.map("alignments2D/pose (radians)", "rlnAnglePsi (degrees)")
    if f"{prefix}/shift" in names:
        psize_field = f"{prefix}/psize_A" if f"{prefix}/psize_A" in names else "blob/psize_A"
        psize = data[psize_field].astype(np.float64) if psize_field in names else np.zeros(len(data))
        if np.any(psize <= 0):
            raise DataError(f"{prefix}/shift cannot be written: {psize_field} is missing or 0 for some "
                            f"particles, so the shift has no size in Å")
        shift_a = data[f"{prefix}/shift"].astype(np.float64).reshape(len(data), 2) * psize[:, None]
        used.update({f"{prefix}/shift", psize_field})
        image_psize = data["blob/psize_A"].astype(np.float64) if "blob/psize_A" in names else psize
        if version == 30:
            px = shift_a / np.where(image_psize > 0, image_psize, psize)[:, None]
            cols["rlnOriginX"], cols["rlnOriginY"] = px[:, 0], px[:, 1]
            report.map(f"{prefix}/shift × psize_A", "rlnOriginX/Y (pixels of the image, RELION 3.0)")
        else:
            cols["rlnOriginXAngst"], cols["rlnOriginYAngst"] = shift_a[:, 0], shift_a[:, 1]
            report.map(f"{prefix}/shift × {psize_field}", "rlnOriginX/YAngst (Å)")
    for fld, label in (("split", "rlnRandomSubset"), ("class", "rlnClassNumber")):
        if f"{prefix}/{fld}" in names:
            cols[label] = data[f"{prefix}/{fld}"].astype(np.int64) + 1
            used.add(f"{prefix}/{fld}")
            report.map(f"{prefix}/{fld} (0-based)", f"{label} (1-based)")
    for stat in _STATS:
        if f"{prefix}/{stat}" in names:
            report.skip(f"{prefix}/{stat}", "no RELION column (a CryoSPARC refinement statistic)")
            used.add(f"{prefix}/{stat}")
    return cols, used
