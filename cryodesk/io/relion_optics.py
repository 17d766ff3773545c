"""RELION optics groups and CTF refinements <-> CryoSPARC exposure groups and ``ctf/*``.

RELION 3.1+ keeps what is constant for an optics group (voltage, Cs, pixel
size, box, beam tilt, Zernike aberrations, magnification matrix...) in
``data_optics``, one row per group, and reads those labels only there.
CryoSPARC keeps every value per particle, grouped by ``ctf/exp_group_id``.

Import spreads the optics row onto its particles (one group for all when the
particles have no ``_rlnOpticsGroup`` column and ``data_optics`` has one row,
as cryoDRGN reads such files).  Export groups particles by exposure group *and*
by the values of every optics label, so a value that differs inside one
exposure group still reaches RELION exactly (the group is split, and the
report says so); optics groups keep the exposure-group numbers when those are
valid RELION numbers (1, 2, ...), else they are numbered 1..K and each row
carries its ``exp_group_id`` as ``_csparc/ctf/exp_group_id``.

CTF refinements (conventions in the README table):

* ``ctf/tilt_A`` (the third-order coma term, in Å) <-> ``rlnBeamTiltX/Y`` in
  mrad: ``tilt = asin(tilt_A / Cs)`` with Cs in Å, as pyem's csparc2star
  (CryoSPARC reports the same mrad value, "proportional to the third-order
  term divided by the spherical aberration").  Impossible when Cs = 0.
* ``ctf/anisomag`` <-> ``rlnMagMat00..11``: CryoSPARC stores the Fourier-space
  magnification matrix with the identity subtracted (row-major), RELION the
  matrix itself, so ``MagMat = I + anisomag``.
* ``rlnOddZernike``/``rlnEvenZernike`` and ``ctf/shift_A``, ``trefoil_A``,
  ``tetra_A`` use bases and normalisations that do not convert without the
  image geometry of both programs: they are carried, not converted.

API summary
-----------
``OPTICS_LABELS``, ``EXP_GROUP_LABEL``
``merge_optics(particles, optics, source, report) -> {label: values}``
``merge_optics_rows(particles, optics, source, report, lazy=False) -> ({label: values}, optics row of each
particle, {label: optics column spread})``
``ctf_from_star(cols, source, report) -> ({field: values}, consumed labels)``
``ctf_to_star(data, report) -> ({label: values}, consumed fields, fields to carry)``
``assign_groups(exp_group, optics_cols, report) -> OpticsGroups``
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cryodesk.base.errors import DataError
from cryodesk.io.conversion import ConversionReport
from cryodesk.io.cs import unique_first
from cryodesk.io.relion_carry import CARRY_PREFIX
from cryodesk.io.star import StarBlock, column_floats

__all__ = ["OPTICS_LABELS", "EXP_GROUP_LABEL", "MAG_LABELS", "merge_optics", "merge_optics_rows", "ctf_from_star",
           "ctf_to_star", "assign_groups", "OpticsGroups"]

MAG_LABELS = ("rlnMagMat00", "rlnMagMat01", "rlnMagMat10", "rlnMagMat11")
#: Labels that RELION 3.1+ reads from ``data_optics`` (ObservationModel), not per particle.
OPTICS_LABELS = ("rlnOpticsGroupName", "rlnOpticsGroup", "rlnMtfFileName", "rlnMicrographOriginalPixelSize",
                 "rlnVoltage", "rlnSphericalAberration", "rlnAmplitudeContrast", "rlnImagePixelSize",
                 "rlnImageSize", "rlnImageDimensionality", "rlnBeamTiltX", "rlnBeamTiltY", "rlnOddZernike",
                 "rlnEvenZernike", *MAG_LABELS, "rlnCtfDataAreCtfPremultiplied", "rlnMicrographPixelSize")
EXP_GROUP_LABEL = CARRY_PREFIX + "ctf/exp_group_id"


def merge_optics(parts: StarBlock, optics: StarBlock | None, source: str,
                 report: ConversionReport) -> dict[str, np.ndarray]:
    """Particle columns plus their optics group's columns (particle values win)."""
    return merge_optics_rows(parts, optics, source, report)[0]


def merge_optics_rows(parts: StarBlock, optics: StarBlock | None, source: str, report: ConversionReport,
                      lazy: bool = False) -> tuple[dict, np.ndarray, dict[str, np.ndarray]]:
    """:func:`merge_optics`, and each particle's row of ``data_optics`` and the optics columns spread by it.

    ``cols[lab] == table[rows]`` for each ``lab: table`` of the third item, so a
    value of an optics column can be parsed once per optics group.  ``lazy``:
    those ``cols[lab]`` are None (in their place in the column order) and the
    caller spreads the tables it needs.
    """
    cols = dict(parts.columns)
    spread: dict[str, np.ndarray] = {}
    if optics is None or not optics.columns:
        return cols, np.zeros(len(parts), dtype=np.int64), spread
    n_opt = len(optics)
    groups = optics.columns.get("rlnOpticsGroup")
    if "rlnOpticsGroup" not in cols or groups is None:
        if n_opt != 1:
            missing = "the particles have no _rlnOpticsGroup column" if "rlnOpticsGroup" not in cols \
                else "data_optics has no _rlnOpticsGroup column"
            raise DataError(f"{source}: data_optics defines {n_opt} optics groups but {missing}, "
                            f"so particles cannot be matched to their optics")
        rows = np.zeros(len(parts), dtype=np.int64)
        if "rlnOpticsGroup" not in cols:
            cols["rlnOpticsGroup"] = np.full(len(parts), groups[0] if groups is not None else "1")
        report.note("no _rlnOpticsGroup to match particles and data_optics: every particle is in its "
                    "one optics group (as cryoDRGN reads such files)")
    else:
        pos = {_key(g): k for k, g in enumerate(np.asarray(groups).tolist())}
        if len(pos) < len(groups):  # (the last row would win silently: another voltage, pixel size, ...)
            seen: set[str] = set()
            twice = next(g for g in map(_key, np.asarray(groups).tolist()) if g in seen or seen.add(g))
            raise DataError(f"{source}: data_optics defines optics group {twice} twice")
        table, inv = unique_first(np.asarray(cols["rlnOpticsGroup"]))  # each distinct group looked up once
        try:
            rows = np.array([pos[_key(g)] for g in table.tolist()], dtype=np.int64)[inv]
        except KeyError as exc:
            raise DataError(f"{source}: particle refers to optics group {exc.args[0]} "
                            f"which data_optics does not define") from None
    bulk = any(np.asarray(v).dtype.kind == "S" for v in parts.columns.values())
    for lab, vals in optics.columns.items():
        if lab not in cols:
            vals = np.asarray(vals)
            if bulk and vals.dtype.kind == "U":
                # the particles were read in bulk (ASCII bytes): spread the optics values as bytes too, so
                # their numbers parse like the particles' (a few per group, encoded once)
                try:
                    vals = vals.astype("S")
                except UnicodeEncodeError:
                    pass
            cols[lab] = None if lazy else vals[rows]
            spread[lab] = vals
    return cols, rows, spread


def _key(value) -> str:
    """An optics group number as text, whether it came as str, bytes (bulk-read STAR) or a number."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def ctf_from_star(cols: dict, source: str, report: ConversionReport) -> tuple[dict, set]:
    """``ctf/tilt_A`` and ``ctf/anisomag`` from beam tilt and magnification labels."""
    out: dict[str, np.ndarray] = {}
    used: set[str] = set()
    n = len(next(iter(cols.values()))) if cols else 0
    tilt_labels = [lab for lab in ("rlnBeamTiltX", "rlnBeamTiltY") if lab in cols]
    if tilt_labels:
        mrad = np.stack([column_floats(cols[lab], lab, source) if lab in cols else np.zeros(n)
                         for lab in ("rlnBeamTiltX", "rlnBeamTiltY")], axis=1)
        if "rlnSphericalAberration" not in cols:
            report.skip("rlnBeamTiltX/Y", "no _rlnSphericalAberration to turn the tilt into ctf/tilt_A; "
                        "kept as relion/ fields")
        else:
            cs_a = column_floats(cols["rlnSphericalAberration"], "rlnSphericalAberration", source) * 1e7
            if np.any((cs_a == 0) & np.any(mrad != 0, axis=1)):
                report.skip("rlnBeamTiltX/Y", "Cs is 0 for tilted particles: ctf/tilt_A would be 0; "
                            "kept as relion/ fields")
            else:
                out["ctf/tilt_A"] = (cs_a[:, None] * np.sin(mrad / 1e3)).astype(np.float32)
                used.update(tilt_labels)
                report.map("rlnBeamTiltX/Y (mrad)", "ctf/tilt_A (Å) = Cs·sin(tilt)")
    present = [lab for lab in MAG_LABELS if lab in cols]
    if present and len(present) < len(MAG_LABELS):
        report.skip(", ".join(present), "incomplete magnification matrix; kept as relion/ fields")
    elif present:
        m = np.stack([column_floats(cols[lab], lab, source) for lab in MAG_LABELS], axis=1)
        out["ctf/anisomag"] = (m - np.array([1.0, 0.0, 0.0, 1.0])).astype(np.float32)
        used.update(MAG_LABELS)
        report.map("rlnMagMat00..11", "ctf/anisomag = MagMat - I")
    return out, used


def ctf_to_star(data: np.ndarray, report: ConversionReport) -> tuple[dict, set, set]:
    """Beam tilt and magnification labels from ``ctf/tilt_A`` and ``ctf/anisomag``."""
    names = data.dtype.names
    out: dict[str, np.ndarray] = {}
    used: set[str] = set()
    carry: set[str] = set()
    if "ctf/tilt_A" in names:
        tilt = data["ctf/tilt_A"].astype(np.float64).reshape(len(data), 2)
        if "ctf/cs_mm" not in names:
            report.skip("ctf/tilt_A", "no ctf/cs_mm to express it as a beam tilt; kept as _csparc/ctf/tilt_A")
            carry.add("ctf/tilt_A")
        else:
            cs_a = data["ctf/cs_mm"].astype(np.float64)[:, None] * 1e7
            ratio = np.divide(tilt, cs_a, out=np.zeros_like(tilt), where=cs_a != 0)
            if np.any((cs_a == 0) & (tilt != 0)) or np.any(np.abs(ratio) > 1):
                report.skip("ctf/tilt_A", "Cs is 0 (or smaller than the tilt term) for some particles, so "
                            "it has no beam tilt in mrad; kept as _csparc/ctf/tilt_A")
                carry.add("ctf/tilt_A")
            else:
                mrad = np.arcsin(ratio) * 1e3
                out["rlnBeamTiltX"], out["rlnBeamTiltY"] = mrad[:, 0], mrad[:, 1]
                used.add("ctf/tilt_A")
                report.map("ctf/tilt_A (Å)", "rlnBeamTiltX/Y (mrad) = 1000·asin(tilt_A / Cs)")
    if "ctf/anisomag" in names:
        a = data["ctf/anisomag"].astype(np.float64).reshape(len(data), 4)
        for k, lab in enumerate(MAG_LABELS):
            out[lab] = a[:, k] + (1.0 if k in (0, 3) else 0.0)
        used.add("ctf/anisomag")
        report.map("ctf/anisomag", "rlnMagMat00..11 = I + anisomag")
    return out, used, carry


@dataclass
class OpticsGroups:
    """Optics groups of an export: ``index`` per particle into ``numbers``/``first``/``exp_group``."""

    index: np.ndarray
    numbers: np.ndarray
    first: np.ndarray
    exp_group: np.ndarray
    carry_exp_group: bool


def _codes(col: np.ndarray) -> np.ndarray:
    """``np.unique(col, return_inverse=True)[1]`` (rows for 2-D), sorting only run heads (see unique_first)."""
    col = np.asarray(col)
    if len(col) == 0 or np.all(col == col[:1]):  # the usual case, and far cheaper than sorting
        return np.zeros(len(col), dtype=np.int64)
    if col.ndim > 1:
        flat = col.reshape(len(col), -1)
        if flat.dtype.kind == "f" and np.isnan(flat).any():  # NaN rows: exactly as numpy's row unique treats them
            return np.unique(flat, axis=0, return_inverse=True)[1].ravel()
        # rows in lexicographic order = the mixed-radix number of their per-column ranks
        per = [_codes(flat[:, j]) for j in range(flat.shape[1])]
        radix = [int(p.max()) + 1 for p in per]
        if float(np.prod(np.array(radix, dtype=np.float64))) >= 2.0**62:
            return np.unique(flat, axis=0, return_inverse=True)[1].ravel()
        key = np.zeros(len(flat), dtype=np.int64)
        for p, r in zip(per, radix):
            key = key * r + p
        return _codes(key)
    table, inv = unique_first(col)
    return np.unique(table, return_inverse=True)[1].ravel()[inv]


def _unique_keys(key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``np.unique(key, return_index=True, return_inverse=True)[1:]`` of an int64 column, via its runs."""
    table, inv0 = unique_first(key)
    # the table is in first-seen order: the running maximum of inv0 steps up exactly at each first row
    first_row = np.flatnonzero(np.diff(np.maximum.accumulate(inv0), prepend=-1) > 0)
    _, pos, inv_t = np.unique(table, return_index=True, return_inverse=True)
    return first_row[pos], np.asarray(inv_t).ravel()[inv0]


def assign_groups(exp_group: np.ndarray, optics_cols: dict[str, np.ndarray],
                  report: ConversionReport) -> OpticsGroups:
    """One optics group per distinct (exposure group, optics values); see module doc."""
    eg = np.asarray(exp_group, dtype=np.int64)
    n = len(eg)
    if n == 0:
        return OpticsGroups(np.zeros(0, np.int64), np.ones(1, np.int64), np.zeros(1, np.int64),
                            np.ones(1, np.int64), False)
    labels = list(optics_cols)
    # the rows come in runs (a micrograph's particles together): the groups of the run heads are the
    # groups of all rows (every distinct value has a head, so each column's codes are the same ranks)
    cols = [eg] + [np.asarray(optics_cols[lab]) for lab in labels]
    change = np.zeros(max(n - 1, 0), dtype=bool)
    for c in cols:
        differ = c[1:] != c[:-1]
        change |= differ.reshape(n - 1, -1).any(axis=1) if differ.ndim > 1 else differ
    heads = np.concatenate([[0], np.flatnonzero(change) + 1])
    codes = np.stack([_codes(c[heads]) for c in cols], axis=1)
    radix = codes.max(axis=0) + 1
    if float(np.prod(radix.astype(np.float64))) < 2.0**62:
        # one integer key per run (mixed radix, eg most significant): a 1-D unique, not a row sort
        strides = np.cumprod(np.concatenate([radix[1:], [1]])[::-1])[::-1]
        first_h, inv_h = _unique_keys(codes @ strides)
        uniq = codes[first_h]
    else:
        uniq, first_h, inv_h = np.unique(codes, axis=0, return_index=True, return_inverse=True)
    first = heads[first_h]
    run_of = np.cumsum(change)
    inv = np.empty(n, dtype=np.int64)
    inv[0] = 0
    inv[1:] = run_of
    inv = np.asarray(inv_h).ravel()[inv]
    eg_of = eg[first]
    distinct = np.unique(eg)
    if len(uniq) == len(distinct) and distinct.min() >= 1:
        numbers = eg_of.copy()
    else:
        numbers = np.arange(1, len(uniq) + 1, dtype=np.int64)
    for g in distinct[np.bincount(np.searchsorted(distinct, eg_of), minlength=len(distinct)) > 1].tolist():
        rows = uniq[eg_of == g]
        varying = [lab for j, lab in enumerate(labels) if len(np.unique(rows[:, j + 1])) > 1]
        report.note(f"exposure group {g} split into {len(rows)} RELION optics groups: "
                    f"{', '.join(varying)} differ within it")
    carry = not np.array_equal(numbers, eg_of)
    if carry:
        report.note(f"optics groups numbered 1..{len(uniq)} (RELION numbers start at 1); each keeps its "
                    f"exp_group_id as _{EXP_GROUP_LABEL} in data_optics")
    return OpticsGroups(inv.astype(np.int64), numbers, first, eg_of, carry)
