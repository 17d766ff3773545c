"""The number columns of a particle STAR table parsed up front, for :func:`cryodesk.io.relion.star_to_cs`.

``star_to_cs`` and its helpers read every number column through
:func:`cryodesk.io.star.column_floats`.  Parsing them here first gives the
same float64 values (``column_floats`` of a float64 column is that column)
sooner: an optics column spread over the particles is parsed once per optics
group and then spread, and the particle columns are parsed two at a time
(the compiled parser releases the GIL).  A column that does not parse is left
as text, so ``column_floats`` words its error exactly as before; callers keep
the text columns for anything else (the ``relion/`` passthrough fields).

API summary
-----------
``NUMBER_LABELS``   the labels star_to_cs and its helpers parse as numbers
``parse_number_columns(cols, rows, spread) -> {label: float64}``
``in_threads(calls, n) -> [call() for call in calls]``   (two at a time for large columns)
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from cryodesk.io import star_numbers
from cryodesk.io.star_numbers import parse_floats

__all__ = ["NUMBER_LABELS", "parse_number_columns", "in_threads"]

NUMBER_LABELS = (
    "rlnImagePixelSize", "rlnPixelSize", "rlnDetectorPixelSize", "rlnMagnification", "rlnImageSize",
    "rlnOpticsGroup", "rlnVoltage", "rlnSphericalAberration", "rlnAmplitudeContrast", "rlnDefocusU",
    "rlnDefocusV", "rlnDefocusAngle", "rlnPhaseShift", "rlnCtfScalefactor", "rlnCtfBfactor",
    "rlnBeamTiltX", "rlnBeamTiltY", "rlnMagMat00", "rlnMagMat01", "rlnMagMat10", "rlnMagMat11",
    "rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi", "rlnOriginXAngst", "rlnOriginYAngst", "rlnOriginX",
    "rlnOriginY", "rlnRandomSubset", "rlnClassNumber", "rlnMicrographPixelSize", "rlnCoordinateX",
    "rlnCoordinateY",
)

#: threads that parse particle columns at once  (the cores this process may use, at most 4: each thread streams memory)
THREADS = max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1))


def _floats(values) -> np.ndarray | None:
    try:
        return parse_floats(values)
    except Exception:  # noqa: BLE001 - any failure: the text stays and column_floats decides
        return None


def parse_number_columns(cols: dict, rows: np.ndarray, spread: dict) -> dict[str, np.ndarray]:
    """``{label: column_floats(cols[label])}`` of the :data:`NUMBER_LABELS` in ``cols`` that parse.

    ``rows`` and ``spread`` are what :func:`cryodesk.io.relion_optics.merge_optics_rows`
    gives: ``cols[lab] == spread[lab][rows]`` for an optics column.
    """
    out: dict[str, np.ndarray] = {}
    todo = []
    for lab in NUMBER_LABELS:
        if lab not in cols:
            continue
        if lab in spread:  # parsed once per optics group (numpy's parse, which the kernels are held to)
            table = _floats(spread[lab])
            if table is not None:
                out[lab] = table[rows]
        else:
            todo.append(lab)
    parsed = in_threads([lambda lab=lab: _floats(cols[lab]) for lab in todo], len(rows))
    for lab, values in zip(todo, parsed):
        if values is not None:
            out[lab] = values
    return out


def in_threads(calls: list, n: int) -> list:
    """``[f() for f in calls]``, :data:`THREADS` at a time for columns of ``n`` rows parsed by the kernels.

    The results come in order and the first call (in order) that raised raises
    here, as the loop would (the later calls have run too: they only parse).
    """
    if len(calls) > 1 and n >= star_numbers.MIN_SIZE and star_numbers.implementation() == "numba":
        with ThreadPoolExecutor(THREADS, thread_name_prefix="star-parse") as pool:
            futures = [pool.submit(f) for f in calls]
            return [f.result() for f in futures]
    return [f() for f in calls]
