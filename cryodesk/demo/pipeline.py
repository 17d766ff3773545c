"""Run built-in job bodies without the engine or database (tests, demos, benchmarks).

:func:`run_inline` builds a :class:`~cryodesk.core.context.JobContext` by hand,
resolving each input to the highest version of a parent's output group, the
same rule the engine uses for "the final output".  :func:`run_demo_pipeline`
chains the whole preprocessing demo on a simulated dataset.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable

from cryodesk.base.errors import UsageError
from cryodesk.core.context import InputRef, JobContext
from cryodesk.core.registry import get

Connection = tuple[JobContext, str]


def input_ref(slot: str, parent: JobContext, group: str, version: int | None = None) -> InputRef:
    """An :class:`InputRef` to ``parent``'s output ``group`` (highest version by default)."""
    versions = sorted({ref.version for g, ref in parent.outputs if g == group})
    if not versions:
        raise UsageError(f"{parent.uid} has no output {group!r}")
    v = versions[-1] if version is None else version
    files = [ref for g, ref in parent.outputs if g == group and ref.version == v]
    return InputRef(slot=slot, parent_uid=parent.uid, output=group, version=v, files=files,
                    project_dir=parent.project_dir)


def run_inline(project_dir: Path | str, uid: str, type_name: str, params: dict | None = None,
               inputs: dict[str, Connection | Iterable[Connection]] | None = None,
               cancel_event: threading.Event | None = None,
               progress_cb: Callable[[float, str], None] | None = None) -> JobContext:
    """Run job type ``type_name`` as job ``uid`` in ``project_dir/uid``; return its context.

    Parameters
    ----------
    params : dict, optional
        Overrides of the type's defaults (coerced and checked like the CLI does).
    inputs : dict, optional
        ``{slot: (parent_ctx, group)}`` or ``{slot: [(parent_ctx, group), ...]}``.
    """
    jt = get(type_name)
    if jt.run is None:
        raise UsageError(f"job type {type_name!r} cannot be run")
    project_dir = Path(project_dir)
    refs: dict[str, list[InputRef]] = {}
    for slot, conn in (inputs or {}).items():
        jt.input_slot(slot)
        conns = [conn] if isinstance(conn, tuple) else list(conn)
        refs[slot] = [input_ref(slot, parent, group) for parent, group in conns]
    job_dir = project_dir / uid
    job_dir.mkdir(parents=True, exist_ok=True)
    ctx = JobContext(project_uid="P0", uid=uid, type=type_name, project_dir=project_dir, job_dir=job_dir,
                     params=jt.coerce_params(params or {}), inputs=refs,
                     log=logging.getLogger(f"cryodesk.job.{uid}"), progress_cb=progress_cb,
                     cancel_event=cancel_event or threading.Event())
    jt.run(ctx)
    return ctx


def run_demo_pipeline(project_dir: Path | str, raw_dir: Path | str,
                      overrides: dict[str, dict[str, Any]] | None = None) -> dict[str, JobContext]:
    """Import → motion → CTF → pick → extract → 2D classes → select, on simulated data.

    Parameters
    ----------
    project_dir : path
        Job directories ``J1`` ... ``J7`` are created here.
    raw_dir : path
        A directory written by :func:`cryodesk.demo.simulate_dataset`.
    overrides : dict, optional
        ``{job_type: {param: value}}``.

    Returns
    -------
    dict
        Job type name → context; ``ctx.results["seconds"]`` holds each run time.
    """
    from .simulate import load_truth

    spec = load_truth(raw_dir)["spec"]
    over = overrides or {}
    steps: list[tuple[str, dict, dict]] = [
        ("import_movies", {"path": str(Path(raw_dir).resolve() / "movies"), "psize_A": spec["psize_A"],
                           "total_dose_e_per_A2": spec["total_dose_e_per_A2"]}, {}),
        ("motion_correction", {}, {"movies": ("import_movies", "movies")}),
        ("ctf_estimation", {"amp_contrast": spec["amp_contrast"]},
         {"micrographs": ("motion_correction", "micrographs")}),
        ("blob_picker", {"diameter_A": spec["particle_diameter_A"]},
         {"micrographs": ("ctf_estimation", "micrographs")}),
        ("extract_particles", {"box_size_px": spec["box"]},
         {"micrographs": ("ctf_estimation", "micrographs"), "locations": ("blob_picker", "locations")}),
        ("class_2d", {}, {"particles": ("extract_particles", "particles")}),
        ("select_2d", {}, {"particles": ("class_2d", "particles"),
                           "class_averages": ("class_2d", "class_averages")}),
    ]
    done: dict[str, JobContext] = {}
    for n, (type_name, params, conns) in enumerate(steps, start=1):
        inputs = {slot: (done[parent], group) for slot, (parent, group) in conns.items()}
        t0 = time.perf_counter()
        ctx = run_inline(project_dir, f"J{n}", type_name, {**params, **over.get(type_name, {})}, inputs)
        ctx.results["seconds"] = round(time.perf_counter() - t0, 3)
        done[type_name] = ctx
    return done
