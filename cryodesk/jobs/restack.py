"""Restack and downsample particles: write a particle set into new compact stacks.

``restack_particles``
    Copies just the particles of the input set into new MRC stacks of
    ``particles_per_file`` images.  The images are bit-identical (or the
    float16 rounding of float32 images with ``output_f16``), every ``.cs``
    field and every uid is kept; only ``blob/path`` and ``blob/idx`` change.
    Later jobs then read a few large files instead of scattered images in
    thousands of per-micrograph stacks.

``downsample_particles``
    The same, Fourier-cropping each image to ``new_box_size``; ``blob/shape``
    and ``blob/psize_A`` follow.  With the box unchanged it is a restack.

Both stream through :mod:`cryodesk.io.gather` (bounded memory, reads and
writes overlapped) and check every source image for NaN/Inf and all-zero
pixels on the way; flagged particles are reported, not dropped.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from cryodesk.base.errors import DataError, UsageError
from cryodesk.core.context import JobContext
from cryodesk.core.registry import InputSlot, JobType, OutputGroup, Param, register
from cryodesk.io.cs import ParticleSet, write_cs
from cryodesk.io.gather import SourceError, execute_plan, plan_gather
from cryodesk.kernels.batch import ParticleTransform
from cryodesk.kernels.checks import ALL_ZERO, NONFINITE

__all__ = ["run_restack", "run_downsample", "restack_into"]

_PER_FILE = Param("particles_per_file", 10000, "int",
                  help="Particles per output stack; the last stack holds the rest.")
_F16 = Param("output_f16", False, "bool",
             help="Write float16 stacks (MRC mode 12): half the size, float16 rounding of the pixels.")


def _progress_reporter(ctx: JobContext, what: str):
    last = [0.0]

    def report(done: int, total: int, done_bytes: int, total_bytes: int) -> None:
        now = time.monotonic()
        if done < total and now - last[0] < 0.25:  # the GUI needs a few updates a second, not 1000
            return
        last[0] = now
        ctx.progress(done / total if total else 1.0,
                     f"{what} {done:,} / {total:,} particles, "
                     f"{done_bytes / 1e9:.2f} / {total_bytes / 1e9:.2f} GB")

    return report


def _new_dataset(data: np.ndarray, paths: list[str], index: np.ndarray,
                 shape: tuple[int, int] | None, psize_factor: float) -> np.ndarray:
    """``data`` with the blob fields pointing at the new stacks; every other field kept."""
    width = max(max(len(p) for p in paths), 1)
    descr = []
    for name in data.dtype.names:
        dt, _ = data.dtype.fields[name][:2]
        if name == "blob/path" and dt.itemsize < width:
            dt = np.dtype(f"S{width}")  # the new paths may be longer than the old ones
        descr.append((name, dt))
    out = np.empty(len(data), dtype=descr)
    for name in data.dtype.names:
        out[name] = data[name]
    out["blob/path"] = np.array([p.encode() for p in paths], dtype=f"S{width}")
    out["blob/idx"] = index
    if shape is not None and "blob/shape" in out.dtype.names:
        out["blob/shape"] = shape
    if psize_factor != 1.0:
        for name in out.dtype.names:
            slot, _, field = name.partition("/")
            if name == "blob/psize_A" or (slot.startswith("alignments") and field == "psize_A"):
                out[name] = data[name] * np.float32(psize_factor)
            elif slot.startswith("alignments") and field == "shift":
                # CryoSPARC stores shifts in pixels of the blob: fewer, bigger pixels now
                out[name] = data[name] / np.float32(psize_factor)
    return out


def restack_into(ctx: JobContext, subdir: str, *, new_box: int | None = None) -> dict:
    """Shared body of both job types: gather, write the ``.cs``, register outputs.

    Parameters
    ----------
    ctx : JobContext
    subdir : str
        Directory in the job directory that receives the stacks.
    new_box : int, optional
        Fourier-crop to this box (downsample); ``None`` keeps the pixels.

    Returns
    -------
    dict
        Summary recorded in ``ctx.results``.
    """
    t0 = time.monotonic()
    per_file = int(ctx.params.get("particles_per_file", 10000))
    if per_file < 1:
        raise UsageError(f"particles_per_file must be at least 1, got {per_file}")
    src_cs = ctx.input("particles").path("dataset")
    pset = ParticleSet.load(src_cs, base_dir=ctx.project_dir)
    data = pset.data
    if len(data) == 0:
        raise DataError(f"{ctx.uid}: the input particle set {src_cs} is empty")
    uids = data["uid"]
    out_dir = ctx.job_dir / subdir
    ctx.log.info("%s: %d particles from %d stacks -> %s", ctx.uid, len(data),
                 len(set(pset.stack_paths())), out_dir)
    try:
        plan = plan_gather(zip(pset.stack_paths(), data["blob/idx"].tolist()), out_dir,
                           particles_per_file=per_file)
    except SourceError as exc:
        raise _particle_error(ctx, uids, exc) from None
    box = plan.in_shape
    crop_to = None
    if new_box is not None:
        if not 0 < new_box <= min(box):
            raise UsageError(f"new_box_size must be between 1 and the current box {min(box)}, got {new_box}")
        if (new_box, new_box) != box:
            if new_box % 2:
                raise UsageError(f"new_box_size must be even (got {new_box})")
            crop_to = new_box
    transform = ParticleTransform(len(data), box, plan.in_dtype, new_shape=crop_to,
                                  float16=bool(ctx.params.get("output_f16", False)))
    factor = box[1] / transform.out_shape[1]
    psize = float(data["blob/psize_A"][0]) if "blob/psize_A" in data.dtype.names else 0.0
    voxel = (psize or plan.voxel_size) * factor
    plan = plan.with_output(out_shape=transform.out_shape, out_dtype=transform.out_dtype,
                            voxel_size=voxel)
    stacks: list[Path] = []
    cs_path = ctx.job_dir / f"{subdir}_particles.cs"
    try:
        ctx.check_cancel()
        stacks = execute_plan(plan, transform, progress=_progress_reporter(ctx, subdir),
                              check_cancel=ctx.check_cancel)
        ctx.check_cancel()
        rel = [ctx.rel(p) for p in stacks]
        items = np.arange(len(data))
        new = _new_dataset(data, [rel[i] for i in items // per_file], items % per_file,
                           transform.out_shape if transform.crop else None, factor)
        write_cs(cs_path, new)
    except SourceError as exc:
        _remove(stacks, cs_path, out_dir)
        raise _particle_error(ctx, uids, exc) from None
    except BaseException:
        _remove(stacks, cs_path, out_dir)
        raise
    ctx.add_output("particles", cs_path, kind="dataset")
    for p in stacks:
        ctx.add_output("particles", p, kind="blob")
    secs = max(time.monotonic() - t0, 1e-9)
    summary = {"particles": len(data), "stacks": len(stacks), "box": int(transform.out_shape[1]),
               "psize_A": voxel, "dtype": str(transform.out_dtype),
               "bytes_written": plan.out_bytes, "seconds": round(secs, 3),
               "particles_per_s": round(len(data) / secs, 1), **transform.summary()}
    for flag, label in ((NONFINITE, "NaN/Inf pixels"), (ALL_ZERO, "all-zero images")):
        bad = transform.flagged(flag)
        if bad.size:
            ctx.log.warning("%s: %d particles have %s (uids %s%s)", ctx.uid, bad.size, label,
                            ", ".join(str(int(u)) for u in uids[bad[:5]]), "..." if bad.size > 5 else "")
    ctx.results.update(summary)
    ctx.progress(1.0, f"{subdir}: {len(data):,} particles in {len(stacks)} stacks")
    return summary


def _particle_error(ctx: JobContext, uids: np.ndarray, exc: SourceError) -> DataError:
    return DataError(f"{ctx.uid}: particle uid {int(uids[exc.item])} (row {exc.item}): {exc}")


def _remove(stacks: list[Path], cs_path: Path, out_dir: Path) -> None:
    """Leave nothing of a failed or cancelled run behind."""
    for p in [*stacks, cs_path]:
        p.unlink(missing_ok=True)
    try:
        out_dir.rmdir()  # only if empty: never remove what someone else put there
    except OSError:
        pass


def run_restack(ctx: JobContext) -> None:
    """Body of ``restack_particles``."""
    restack_into(ctx, "restack")


def run_downsample(ctx: JobContext) -> None:
    """Body of ``downsample_particles``."""
    new_box = ctx.params.get("new_box_size")
    if new_box is None:
        raise UsageError("downsample_particles needs the parameter new_box_size")
    restack_into(ctx, "downsample", new_box=int(new_box))


register(JobType(
    name="restack_particles",
    title="Restack Particles",
    category="utilities",
    params=(_PER_FILE, _F16),
    inputs=(InputSlot("particles", "particle", help="The particles to restack."),),
    outputs=(OutputGroup("particles", "particle", help="The same particles in new compact stacks."),),
    run=run_restack,
    resource="io",
    description="Write the selected particles into new compact MRC stacks (exact copy, "
                "optionally float16), so later jobs read a few large files.",
))

register(JobType(
    name="downsample_particles",
    title="Downsample Particles",
    category="utilities",
    params=(Param("new_box_size", None, "int", required=True,
                  help="New box size in pixels (even); the current box just restacks."),
            _PER_FILE, _F16),
    inputs=(InputSlot("particles", "particle", help="The particles to downsample."),),
    outputs=(OutputGroup("particles", "particle", help="Fourier-cropped particles in new stacks."),),
    run=run_downsample,
    resource="cpu",
    description="Fourier-crop particles to a smaller box and write them into new stacks; "
                "pixel size and shape metadata follow.",
))
