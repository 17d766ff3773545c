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
    and ``blob/psize_A`` follow.  With no box given (or the current one) it
    keeps the pixels and writes only the particles of the input: the guide's
    *consolidation* ("connect particles to Downsample Particles and run it
    with no need to change any parameters").

Both stream through :mod:`cryodesk.io.gather` (bounded memory, reads and
writes overlapped) and check every source image for NaN/Inf and all-zero
pixels on the way; flagged particles are reported, not dropped.

With ``output_f16`` a particle whose pixels float16 cannot hold (finite
values of magnitude 65520 and more, which would become ±inf) fails the job
with an error naming it (uid, row, source stack and image) and nothing is
left behind; ``output_f16_clip`` clips such pixels to ±65504 instead.
"""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import numpy as np

from cryodesk.base.errors import DataError, UsageError
from cryodesk.base.preload import preload
from cryodesk.core.context import JobContext
from cryodesk.core.registry import InputSlot, JobType, OutputGroup, Param, register
from cryodesk.io.cs import ParticleSet, write_cs
from cryodesk.io.gather import SourceError, execute_plan, plan_sources

__all__ = ["run_restack", "run_downsample", "restack_into"]

_PER_FILE = Param("particles_per_file", 10000, "int",
                  help="Particles per output stack; the last stack holds the rest.", minimum=1, maximum=10_000_000)
_F16 = Param("output_f16", False, "bool",
             help="Write float16 stacks (MRC mode 12): half the size, float16 rounding of the pixels. "
                  "A particle with pixels beyond the float16 range (±65504) stops the job with an error "
                  "naming it, unless output_f16_clip is set.")
_F16_CLIP = Param("output_f16_clip", False, "bool",
                  help="With output_f16: clip pixels beyond ±65504 to ±65504 instead of failing "
                       "(the number of clipped particles goes to the log and the results).")


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


def _new_dataset(data: np.ndarray, paths: tuple[list[str], np.ndarray], index: np.ndarray,
                 shape: tuple[int, int] | None, psize_factor: float) -> dict[str, object]:
    """The fields that change in the restacked ``.cs``: blob fields pointing at the new stacks.

    ``paths`` is ``(distinct new stack paths, each row's index into them)``;
    the result is the ``replace`` argument of :func:`~cryodesk.io.cs.write_cs`,
    which streams every other field through unchanged (no copy of the dataset).
    """
    table, which = paths
    width = max(max((len(p.encode()) for p in table), default=1), 1)
    if "blob/path" in data.dtype.names:
        width = max(width, data.dtype.fields["blob/path"][0].itemsize)  # never narrower than before
    out: dict[str, object] = {
        "blob/path": (np.array([p.encode() for p in table], dtype=f"S{width}"), which),
        "blob/idx": np.asarray(index).astype(data.dtype.fields["blob/idx"][0]),
    }
    if shape is not None and "blob/shape" in data.dtype.names:
        out["blob/shape"] = np.broadcast_to(np.asarray(shape, dtype=data.dtype.fields["blob/shape"][0].base),
                                            (len(data), 2))
    if psize_factor != 1.0:
        for name in data.dtype.names:
            slot, _, field = name.partition("/")
            if name == "blob/psize_A" or (slot.startswith("alignments") and field == "psize_A"):
                out[name] = data[name] * np.float32(psize_factor)
            elif (slot.startswith("alignments") and field == "shift") or name in _PIXEL_ORIGINS:
                # shifts in pixels of the blob (CryoSPARC; RELION 3.0 origins kept by an older
                # import): fewer, bigger pixels now, the same shift in Å
                out[name] = data[name] / (np.float32 if data[name].dtype == np.float32 else float)(psize_factor)
    return out


# RELION 3.0 pixel origins that datasets imported before the pose conversion still carry
_PIXEL_ORIGINS = ("relion/rlnOriginX", "relion/rlnOriginY")


def _psize_groups(data: np.ndarray) -> tuple[np.ndarray, list[tuple[int, float]]]:
    """Items ordered so each pixel size is contiguous (stable), and the (count, psize) runs.

    One header holds one pixel size: particles of different sizes go to
    different stacks, each with its own; the ``.cs`` row order is unchanged.
    """
    n = len(data)
    if "blob/psize_A" not in data.dtype.names:
        return np.arange(n), [(n, 0.0)]
    psize = data["blob/psize_A"]
    uniq, first, inv = np.unique(psize, return_index=True, return_inverse=True)
    if len(uniq) == 1:
        return np.arange(n), [(n, float(uniq[0]))]
    seen = np.argsort(first, kind="stable")  # first-seen order of the sizes
    rank = np.empty_like(seen)
    rank[seen] = np.arange(seen.size)
    key = rank[np.asarray(inv).ravel()]
    order = np.argsort(key, kind="stable")
    counts = np.bincount(key, minlength=len(uniq))
    return order, [(int(counts[r]), float(uniq[seen[r]])) for r in range(len(uniq))]


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
    # the kernels are imported in _restack_into, not at the top: numba takes ~0.4 s to import,
    # which every CLI command would pay
    t0 = time.monotonic()
    preloads: list[threading.Thread] = []
    if new_box is not None:
        from cryodesk.kernels.f16c import AVAILABLE as have_f16c

        preloads.append(_preload_kernels(True, bool(ctx.params.get("output_f16")) and not have_f16c))
    try:
        return _restack_into(ctx, subdir, new_box, t0, preloads)
    finally:
        for thread in preloads:
            thread.join()  # never leave it importing while the process exits


def _restack_into(ctx: JobContext, subdir: str, new_box: int | None, t0: float,
                  preloads: list[threading.Thread]) -> dict:
    from cryodesk.kernels.batch import ALL_ZERO, NONFINITE, Float16Overflow, ParticleTransform, float16_kernel_for

    per_file = int(ctx.params.get("particles_per_file", 10000))
    if per_file < 1:
        raise UsageError(f"particles_per_file must be at least 1, got {per_file}")
    src_cs = ctx.input("particles").path("dataset")
    pset = ParticleSet.load(src_cs, base_dir=ctx.project_dir)
    data = pset.data
    if len(data) == 0:
        raise DataError(f"{ctx.uid}: the input particle set {src_cs} is empty")
    f16_kernel = None
    if ctx.params.get("output_f16") and new_box is None:
        # F16C where the CPU and build have it; else numba only for a big float16 restack (it pays for its
        # load beyond ~1 GB), loaded while the headers are read; the box from the metadata (float32
        # assumed; the transform decides again)
        box_px = int(np.prod(data["blob/shape"][0])) if "blob/shape" in data.dtype.names else 0
        f16_kernel = float16_kernel_for(len(data) * box_px * 4) if box_px else None
        if f16_kernel == "numba":
            preloads.append(_preload_kernels(False, True))
    order, groups = _psize_groups(data)
    uids = data["uid"][order]  # in plan (item) order, as errors and flags report items
    out_dir = ctx.job_dir / subdir
    stack_list, stack_of_row = pset.stack_index()
    ctx.log.info("%s: %d particles from %d stacks -> %s", ctx.uid, len(data), len(stack_list), out_dir)
    if len(groups) > 1:
        ctx.log.info("%s: %d pixel sizes (%s Å): each written to its own stacks, so every header is right",
                     ctx.uid, len(groups), ", ".join(f"{p:g}" for _, p in groups))
    try:
        plan = _plan(stack_list, stack_of_row[order], data["blob/idx"][order], out_dir, per_file)
    except SourceError as exc:
        raise _particle_error(ctx, uids, exc, order) from None
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
                                  float16=bool(ctx.params.get("output_f16", False)),
                                  clip_f16=bool(ctx.params.get("output_f16_clip", False)),
                                  float16_kernel=f16_kernel)
    factor = box[1] / transform.out_shape[1]
    voxels = [(count, (psize or plan.voxel_size) * factor) for count, psize in groups]
    voxel = voxels[0][1]
    plan = plan.with_output(out_shape=transform.out_shape, out_dtype=transform.out_dtype,
                            voxel_size=voxel, groups=voxels)
    stacks: list[Path] = []
    cs_path = ctx.job_dir / f"{subdir}_particles.cs"
    timings = {"read_and_plan": time.monotonic() - t0}
    try:
        ctx.check_cancel()
        timings["gather"] = time.monotonic()
        stacks = execute_plan(plan, transform, progress=_progress_reporter(ctx, subdir),
                              check_cancel=ctx.check_cancel)
        timings["gather"] = time.monotonic() - timings["gather"]
        ctx.check_cancel()
        rel = [ctx.rel(p) for p in stacks]
        stack_of, index_of = plan.destinations()
        position = np.empty(len(data), dtype=np.int64)
        position[order] = np.arange(len(data))  # row -> item
        new = _new_dataset(data, (rel, stack_of[position]), index_of[position],
                           transform.out_shape if transform.crop else None, factor)
        meta_t0 = time.monotonic()
        write_cs(cs_path, data, replace=new)
        timings["write"] = time.monotonic() - meta_t0
    except SourceError as exc:
        _remove(stacks, cs_path, out_dir)
        raise _particle_error(ctx, uids, exc, order) from None
    except Float16Overflow as exc:
        _remove(stacks, cs_path, out_dir)
        path, index = plan.sources[int(plan.src_id[exc.item])].path, int(plan.src_idx[exc.item])
        raise DataError(f"{ctx.uid}: particle uid {int(uids[exc.item])} (row {int(order[exc.item])}, image "
                        f"{index} of {path}) has a pixel value {exc.value:g} beyond the float16 range "
                        f"(±65504), which float16 output would turn into infinity; nothing was written. "
                        f"Restack it as float32 (output_f16 off), or set output_f16_clip to clip such "
                        f"pixels to ±65504") from None
    except BaseException:
        _remove(stacks, cs_path, out_dir)
        raise
    ctx.add_output("particles", cs_path, kind="dataset")
    for p in stacks:
        ctx.add_output("particles", p, kind="blob")
    secs = max(time.monotonic() - t0, 1e-9)
    timings["metadata"] = secs - timings["gather"]  # everything but the image copy
    ctx.log.info("restack timings: %s", json.dumps({k: round(v, 3) for k, v in timings.items()}))
    summary = {"particles": len(data), "stacks": len(stacks), "box": int(transform.out_shape[1]),
               "psize_A": voxel if len(voxels) == 1 else [v for _, v in voxels],
               "dtype": str(transform.out_dtype),
               "bytes_written": plan.out_bytes, "seconds": round(secs, 3),
               "particles_per_s": round(len(data) / secs, 1), **transform.summary()}
    if transform.clipped:
        ctx.log.warning("%s: %d particles had pixels beyond ±65504, clipped to the float16 range (output_f16_clip)",
                        ctx.uid, transform.clipped)
    for flag, label in ((NONFINITE, "NaN/Inf pixels"), (ALL_ZERO, "all-zero images")):
        bad = transform.flagged(flag)
        if bad.size:
            ctx.log.warning("%s: %d particles have %s (uids %s%s)", ctx.uid, bad.size, label,
                            ", ".join(str(int(u)) for u in uids[bad[:5]]), "..." if bad.size > 5 else "")
    ctx.results.update(summary)
    ctx.progress(1.0, f"{subdir}: {len(data):,} particles in {len(stacks)} stacks")
    return summary


def _plan(stacks: list[Path], src_id: np.ndarray, src_idx: np.ndarray, out_dir: Path, per_file: int):
    """The gather plan of items given as arrays (no per-particle Python objects): one header per stack."""
    from cryodesk.io.mrc import read_header

    first = np.full(len(stacks), -1, dtype=np.int64)
    if len(src_id):
        first[src_id[::-1]] = np.arange(len(src_id) - 1, -1, -1)
    sources = []
    for k, path in enumerate(stacks):
        try:
            sources.append(read_header(path))
        except DataError as exc:
            item = int(first[k])
            raise SourceError(f"cannot read particle {item} (image {int(src_idx[item])} of {path}): {exc}",
                              path, int(src_idx[item]), item) from None
    return plan_sources(sources, src_id, src_idx, out_dir, particles_per_file=per_file)


def _preload_kernels(crop: bool, f16: bool) -> threading.Thread:
    """Import numba and load the compiled kernels in a thread while the metadata and headers are read.

    Importing numba and loading a kernel from its cache take about a second;
    started here, that overlaps with reading the ``.cs`` and every source
    header (I/O that releases the GIL) instead of following them.  The
    transform's own imports wait for this thread if it has not finished.
    """
    def float16() -> None:
        from cryodesk.kernels.float16 import to_float16

        to_float16(np.zeros((1, 2, 2), np.float32))

    def crop_kernel() -> None:
        from cryodesk.kernels.fourier import fourier_crop

        fourier_crop(np.zeros((1, 4, 4), np.float32), 2)

    return preload("restack-kernels", *([float16] if f16 else []), *([crop_kernel] if crop else []))


def _particle_error(ctx: JobContext, uids: np.ndarray, exc: SourceError, order: np.ndarray) -> DataError:
    """``uids`` and ``exc.item`` count items in plan order; ``order[item]`` is the dataset row."""
    return DataError(f"{ctx.uid}: particle uid {int(uids[exc.item])} (row {int(order[exc.item])}): {exc}")


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
    if new_box is None:  # consolidation: keep the box, write only the particles of the subset
        ctx.log.info("%s: no new_box_size: keeping the box, writing only the %s input particles", ctx.uid,
                     "selected")
        ctx.progress(0.0, "no new box size: keeping the box (consolidating the subset)")
        ctx.results["consolidated"] = True
    restack_into(ctx, "downsample", new_box=int(new_box) if new_box is not None else None)


register(JobType(
    name="restack_particles",
    title="Restack Particles",
    category="utilities",
    params=(_PER_FILE, _F16, _F16_CLIP),
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
    params=(Param("new_box_size", None, "int",
                  help="New box size in pixels (even); unset or the current box: keep the box and write only "
                       "the particles of the input (consolidation).", maximum=8192),
            _PER_FILE, _F16, _F16_CLIP),
    inputs=(InputSlot("particles", "particle", help="The particles to downsample."),),
    outputs=(OutputGroup("particles", "particle", help="Fourier-cropped particles in new stacks."),),
    run=run_downsample,
    resource="cpu",
    description="Fourier-crop particles to a smaller box and write them into new stacks; "
                "pixel size and shape metadata follow.",
))
