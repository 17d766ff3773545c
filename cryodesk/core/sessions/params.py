"""Live-session parameters: defaults, parsing of ``KEY=VALUE`` edits, thresholds.

Parameters are a nested mapping stored in ``Session.params``: the watched
``movies`` glob and microscope values at the top, one mapping per stage
(``motion``, ``ctf``, ``pick``, ``extract``), ``runner`` (how files are
taken and how many exposures run at once) and ``thresholds`` (which
exposures are accepted).  The stage mappings use the names of the batch
job types' parameters (``motion_correction``, ``ctf_estimation``,
``blob_picker``, ``extract_particles``), so a session and the batch jobs
process the same movies the same way.
"""

from __future__ import annotations

import copy
import math

from ...base.errors import UsageError

DEFAULTS: dict = {
    "movies": "",
    "psize_A": 0.0,  # 0: from each movie's header
    "accel_kv": 300.0,
    "cs_mm": 2.7,
    "total_dose_e_per_A2": 40.0,
    "motion": {"bfactor": 150.0, "max_shift_px": 40.0, "iterations": 8, "tolerance_px": 0.02},
    "ctf": {"amp_contrast": 0.1, "tile_px": 256, "res_min_A": 30.0, "res_max_A": 5.0, "df_min_A": 3000.0,
            "df_max_A": 50000.0, "fit_astigmatism": True},
    "pick": {"diameter_A": 100.0, "diameter_max_A": 0.0, "threshold": 3.0, "min_distance_frac": 1.0,
             "particle_sign": "dark", "max_picks": 1000},
    "extract": {"box_size_px": 128, "normalize": True, "bg_radius_frac": 0.85},
    "thumbnail_bin": 4,
    "runner": {"settle_s": 2.0, "poll_s": 1.0, "max_parallel": 2},
    # None: no limit.  Changing them while the session runs only changes which exposures count as accepted.
    "thresholds": {"ctf_fit_min": None, "defocus_min_A": None, "defocus_max_A": None,
                   "particles_min": None, "particles_max": None},
}

#: parameters that change what the stages compute: fixed once an exposure was processed
STAGE_KEYS = ("psize_A", "accel_kv", "cs_mm", "motion", "ctf", "pick", "extract", "thumbnail_bin")


def defaults() -> dict:
    return copy.deepcopy(DEFAULTS)


def merged(stored: dict | None) -> dict:
    """``stored`` over the defaults (a session made by an older cryodesk gets new keys' defaults)."""
    out = defaults()
    for key, value in (stored or {}).items():
        if isinstance(out.get(key), dict) and isinstance(value, dict):
            out[key].update(value)
        else:
            out[key] = value
    return out


def _convert(key: str, default, text: str):
    if isinstance(text, str) and text.lower() in ("none", "null", "") and key.startswith("thresholds."):
        return None
    try:
        if isinstance(default, bool):
            if str(text).lower() in ("1", "true", "yes", "on"):
                return True
            if str(text).lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError(text)
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float) or default is None:
            value = float(text)
            if not math.isfinite(value):
                raise ValueError(text)
            return value
        return str(text)
    except (TypeError, ValueError):
        kind = "true/false" if isinstance(default, bool) else type(default).__name__ if default is not None \
            else "a number (or none)"
        raise UsageError(f"session parameter {key}: {text!r} is not {kind}") from None


def apply_assignments(params: dict, assignments: dict) -> dict:
    """``params`` with ``{"motion.bfactor": "100", ...}`` applied; unknown keys and bad values are UsageErrors."""
    out = merged(params)
    for key, text in assignments.items():
        head, _, tail = key.partition(".")
        if head not in DEFAULTS or (tail and not isinstance(DEFAULTS[head], dict)) or \
                (isinstance(DEFAULTS[head], dict) and tail not in DEFAULTS[head]):
            known = sorted(f"{k}.{s}" if isinstance(v, dict) else k for k, v in DEFAULTS.items()
                           for s in (v if isinstance(v, dict) else [None]))
            raise UsageError(f"unknown session parameter {key!r}; known: {', '.join(known)}")
        if tail:
            out[head][tail] = _convert(key, DEFAULTS[head][tail], text)
        else:
            out[head] = _convert(key, DEFAULTS[head], text)
    ex = out["extract"]["box_size_px"]
    if ex < 8 or ex % 2:
        raise UsageError(f"session parameter extract.box_size_px must be an even number >= 8, got {ex}")
    if out["runner"]["max_parallel"] < 1:
        raise UsageError("session parameter runner.max_parallel must be at least 1")
    if out["runner"]["settle_s"] < 0 or out["runner"]["poll_s"] <= 0:
        raise UsageError("session parameters runner.settle_s must be >= 0 and runner.poll_s > 0")
    if out["thumbnail_bin"] < 1:
        raise UsageError("session parameter thumbnail_bin must be at least 1")
    return out


def judge(results: dict, thresholds: dict, manual: str | None) -> str:
    """``accepted`` / ``rejected`` for a processed exposure (the user's choice wins), ``pending`` otherwise."""
    if manual == "accept":
        return "accepted"
    if manual == "reject":
        return "rejected"
    ctf = results.get("ctf")
    if not ctf or "n_particles" not in results:
        return "pending"
    t = thresholds
    defocus = (ctf["df1_A"] + ctf["df2_A"]) / 2
    checks = ((t.get("ctf_fit_min"), ctf["cross_corr"], 1), (t.get("defocus_min_A"), defocus, 1),
              (t.get("defocus_max_A"), defocus, -1), (t.get("particles_min"), results["n_particles"], 1),
              (t.get("particles_max"), results["n_particles"], -1))
    for limit, value, sign in checks:
        if limit is not None and (value - limit) * sign < 0:
            return "rejected"
    return "accepted"


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fits(default, value) -> bool:
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(default, float):
        return _number(value)
    if default is None:  # a threshold: a number or no limit
        return value is None or _number(value)
    return isinstance(value, type(default))


def problem(stored) -> str | None:
    """Why stored parameters (e.g. read from a ``session.json``) are not a session's, or None when they are."""
    if not isinstance(stored, dict):
        return f"params is not a mapping (it is {stored!r})"
    for key, value in stored.items():
        if key not in DEFAULTS:
            return f"params has an unknown parameter {key!r}"
        default = DEFAULTS[key]
        if isinstance(default, dict):
            if not isinstance(value, dict):
                return f"params.{key} is not a mapping (it is {value!r})"
            for sub, v in value.items():
                if sub not in default:
                    return f"params has an unknown parameter '{key}.{sub}'"
                if not _fits(default[sub], v):
                    return f"params.{key}.{sub} is {v!r}, not a value of its kind"
        elif not _fits(default, value):
            return f"params.{key} is {value!r}, not a value of its kind"
    try:
        apply_assignments(stored, {})  # the limits a user's edit is held to
    except UsageError as exc:
        return str(exc)
    return None
