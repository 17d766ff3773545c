"""Import jobs: ``import_movies`` and ``import_micrographs``.

Raw data are never copied or modified: each file gets a symlink under
``J<n>/imported/`` and a row in the output ``.cs`` dataset, which records the
link (project-relative) and what the MRC header says.  Every file is checked
from its header and size only, so importing a terabyte of movies is fast but
a truncated or missing file is still reported here, by name.

The rest of the built-in preprocessing chain lives in ``preprocess_*.py``
(motion, CTF, picking, extraction) plus ``class2d.py`` and ``external.py``.
These are lightweight, honest built-ins for demos and tests, not replacements
for MotionCor2, CTFFIND or CryoSPARC's own algorithms.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path

import numpy as np

from cryodesk.base.errors import DataError
from cryodesk.core.context import JobContext
from cryodesk.core.registry import JobType, OutputGroup, Param, register

from .preprocess_common import check_mrc, dataset_from_columns, stable_uid, write_dataset

_MRC_SUFFIXES = (".mrc", ".mrcs", ".st")


def _raw_files(ctx: JobContext, pattern: str) -> list[Path]:
    """Files named by ``pattern``: a glob, a directory (its MRC files) or one file.

    A relative pattern is taken relative to the project directory, so the
    same params mean the same files wherever the app was started.
    """
    base = Path(os.path.expanduser(pattern))
    if not base.is_absolute():
        base = ctx.project_dir / base
    if base.is_dir():
        found = sorted(p for p in base.iterdir() if p.suffix.lower() in _MRC_SUFFIXES)
    elif glob.has_magic(str(base)):
        found = sorted(Path(p) for p in glob.glob(str(base)))
    elif base.exists() or base.is_symlink():
        found = [base]
    else:
        raise DataError(f"{ctx.uid}: raw data not found: {base}")
    if not found:
        raise DataError(f"{ctx.uid}: no MRC files match {base}")
    return found


def _link(ctx: JobContext, raw: list[Path]) -> list[Path]:
    """Symlink each raw file into ``J<n>/imported/``; names are made unique."""
    out_dir = ctx.job_dir / "imported"
    out_dir.mkdir(parents=True, exist_ok=True)
    names = [p.name for p in raw]
    clash = len(set(names)) != len(names)
    links = []
    for i, src in enumerate(raw):
        link = out_dir / (f"{i:05d}_{src.name}" if clash else src.name)
        if link.is_symlink() or link.exists():
            link.unlink()  # a re-run replaces its own links, never the raw file
        link.symlink_to(src.resolve() if src.exists() else src.absolute())
        links.append(link)
    return links


def _run_import(ctx: JobContext, what: str) -> None:
    p = ctx.params
    raw = _raw_files(ctx, str(p["path"]))
    shapes, psizes = [], []
    for i, path in enumerate(raw):
        ctx.check_cancel()
        shape, header_psize = check_mrc(path)
        if what == "movie" and shape[0] < 2:
            raise DataError(f"{ctx.uid}: {path} has {shape[0]} frame(s); a movie needs at least 2")
        if what == "micrograph" and shape[0] != 1:
            raise DataError(f"{ctx.uid}: {path} is a stack of {shape[0]} images, not a micrograph")
        psize = float(p["psize_A"] or 0.0) or header_psize
        if psize <= 0:
            raise DataError(f"{ctx.uid}: {path} has no pixel size in its header; set psize_A")
        shapes.append(shape)
        psizes.append(psize)
        ctx.progress(0.9 * (i + 1) / len(raw), f"checked {path.name}")
    links = _link(ctx, raw)
    n = len(raw)
    cols = {"uid": np.array([stable_uid("exposure", r.absolute()) for r in raw], dtype=np.uint64)}
    blob = "movie_blob" if what == "movie" else "micrograph_blob"
    cols[f"{blob}/path"] = np.array([ctx.rel(link) for link in links], dtype="S")
    cols[f"{blob}/shape"] = np.array([s if what == "movie" else s[1:] for s in shapes], dtype=np.uint32)
    cols[f"{blob}/psize_A"] = np.array(psizes, dtype=np.float32)
    cols["mscope_params/accel_kv"] = np.full(n, p["accel_kv"], np.float32)
    cols["mscope_params/cs_mm"] = np.full(n, p["cs_mm"], np.float32)
    cols["mscope_params/total_dose_e_per_A2"] = np.full(n, p["total_dose_e_per_A2"], np.float32)
    cols["mscope_params/exp_group_id"] = np.full(n, p["exp_group_id"], np.uint32)
    group = "movies" if what == "movie" else "micrographs"
    out = write_dataset(ctx.job_dir / f"imported_{group}.cs", dataset_from_columns(cols))
    ctx.add_output(group, out, kind="dataset")
    for link in links:
        ctx.add_output(group, link, kind="blob")
    ctx.results.update({f"n_{group}": n, "psize_A": psizes[0], "shape": list(shapes[0])})
    ctx.log.info("imported %d %s(s) from %s", n, what, p["path"])
    ctx.progress(1.0, f"imported {n} {group}")


def _common_params(dose: float) -> tuple[Param, ...]:
    return (
        Param("path", None, "str", "glob, directory or file of raw MRC data", required=True),
        Param("psize_A", 0.0, "float", "pixel size in Å; 0 = read it from the MRC header"),
        Param("accel_kv", 300.0, "float", "accelerating voltage (kV)"),
        Param("cs_mm", 2.7, "float", "spherical aberration (mm)"),
        Param("total_dose_e_per_A2", dose, "float", "total exposure dose (e/Å²)"),
        Param("exp_group_id", 1, "int", "exposure group written to every row"),
    )


def run_import_movies(ctx: JobContext) -> None:
    """Link raw movies and write ``imported_movies.cs``."""
    _run_import(ctx, "movie")


def run_import_micrographs(ctx: JobContext) -> None:
    """Link raw micrographs and write ``imported_micrographs.cs``."""
    _run_import(ctx, "micrograph")


register(JobType(
    name="import_movies", title="Import Movies", category="import",
    params=_common_params(40.0),
    outputs=(OutputGroup("movies", "movie", help="symlinked raw movies + imported_movies.cs"),),
    run=run_import_movies, resource="io",
    description="Symlinks raw MRC movie stacks into the project (never copies) and records their headers.",
))

register(JobType(
    name="import_micrographs", title="Import Micrographs", category="import",
    params=_common_params(0.0),
    outputs=(OutputGroup("micrographs", "micrograph", help="symlinked raw micrographs + imported_micrographs.cs"),),
    run=run_import_micrographs, resource="io",
    description="Symlinks raw MRC micrographs into the project (never copies) and records their headers.",
))
