"""``class_2d`` (iterative 2-D classification) and ``select_2d`` (keep classes).

``class_2d`` is hard-assignment, reference-based clustering with in-plane
rotation: Fourier-binned, CTF phase-flipped, masked particles are aligned to
every class average (see :mod:`.preprocess_align2d`), each joins its best
class, and the averages are recomputed, re-centred and sorted by size.  A
lightweight built-in, not a maximum-likelihood (RELION/CryoSPARC) method.

Every iteration is an intermediate result, version ``i`` of both iterative
outputs: ``class_averages`` (``iter_NNN_classes.mrc`` + ``.cs``) and
``particles`` (``iter_NNN_particles.cs``: the input particles with that
iteration's ``alignments2D``).  The last version is the job's result.  A
cancelled run keeps the iterations it finished (``keep_partial_on_cancel``),
so after "Mark Job as Complete" the last completed iteration's results are
the job's outputs, as in CryoSPARC (Select 2D reads them).
"""

from __future__ import annotations

import numpy as np

from cryodesk.base.errors import DataError, UsageError
from cryodesk.cache.staging import CACHE_PARAM
from cryodesk.core.context import JobContext
from cryodesk.core.registry import InputSlot, JobType, OutputGroup, Param, register
from cryodesk.io.cs import from_columns
from cryodesk.io.mrc import StackWriter, read_images

from . import preprocess_align2d as a2d
from .preprocess_common import input_dataset, stable_uid, with_columns, write_dataset


def load_particles(ctx: JobContext, parts: np.ndarray, size: int) -> tuple[np.ndarray, float]:
    """All particle images, Fourier-cropped to ``size``; returns ``(images, psize_A)``.

    Read through the SSD particle cache (param ``cache_particles``): the
    stacks, or only the particles used when they are a small subset, are
    copied to the SSD first; with caching off they are read in place.
    """
    from cryodesk.cache import stage
    from cryodesk.kernels.fourier import fourier_crop  # here: numba + rocket-fft take ~1 s to import

    box = int(parts["blob/shape"][0][0])
    size = min(int(size), box)
    out = np.empty((len(parts), size, size), np.float32)
    with stage(ctx, ctx.input("particles"), cache_on=ctx.params.get("cache_particles")) as staged:
        located, idx = staged.particle_locations()
        if len(located) != len(parts):
            raise DataError(f"{ctx.uid}: the particle input changed while it was being cached")
        paths = np.asarray([str(p) for p in located])
        for path in dict.fromkeys(paths.tolist()):  # one read per stack, rows kept in dataset order
            rows = np.flatnonzero(paths == path)
            imgs = read_images(path, idx[rows])
            out[rows] = fourier_crop(imgs, size) if size < box else imgs
    return out, float(parts["blob/psize_A"][0]) * box / size


def _prepare(images: np.ndarray, parts: np.ndarray, psize: float, mask: np.ndarray, flip: bool) -> np.ndarray:
    if flip and "ctf/df1_A" in parts.dtype.names:
        # Phase flipping also makes dark particles bright (the CTF is negative at low frequency).
        images = a2d.phase_flip(images, psize, parts)
    elif "blob/sign" in parts.dtype.names:
        images = images * parts["blob/sign"][:, None, None]
    mean = images.mean(axis=(1, 2), keepdims=True)
    std = images.std(axis=(1, 2), keepdims=True) + 1e-12
    return ((images - mean) / std * mask).astype(np.float32)


def _write_iteration(ctx: JobContext, it: int, refs, sizes, res, parts, cls, ang, sh, score, psize, scale):
    base = ctx.job_dir / "class2d" / f"iter_{it:03d}"
    base.parent.mkdir(parents=True, exist_ok=True)
    mrc = base.with_name(base.name + "_classes.mrc")
    with StackWriter(mrc, refs.shape[1:], "float32", psize) as w:
        w.append(refs)
    k = len(refs)
    classes = from_columns({
        "uid": np.array([stable_uid("class2d", ctx.params["seed"], k, i) for i in range(k)], np.uint64),
        "blob/path": np.full(k, ctx.rel(mrc)), "blob/idx": np.arange(k, dtype=np.uint32),
        "blob/shape": np.tile(np.array(refs.shape[1:], np.uint32), (k, 1)),
        "blob/psize_A": np.full(k, psize, np.float32),
        "class2D/class": np.arange(k, dtype=np.uint32), "class2D/size": sizes.astype(np.uint32),
        "class2D/estimated_res_A": np.asarray(res, np.float32),
    })
    path = write_dataset(base.with_name(base.name + "_classes.cs"), classes)
    ctx.add_output("class_averages", path, kind="dataset", version=it)
    ctx.add_output("class_averages", mrc, kind="blob", version=it)
    # the particles with this iteration's assignments: what a killed job marked complete offers
    path = write_dataset(base.with_name(base.name + "_particles.cs"),
                         _alignments(parts, cls, ang, sh, score, parts, scale))
    ctx.add_output("particles", path, kind="dataset", version=it)


def _alignments(base: np.ndarray, cls, ang, sh, score, parts, scale) -> np.ndarray:
    return with_columns(base, {
        "alignments2D/class": cls.astype(np.uint32),
        "alignments2D/pose": ang.astype(np.float32),
        "alignments2D/shift": (sh[:, ::-1] * scale).astype(np.float32),  # (x, y), original pixels
        "alignments2D/psize_A": parts["blob/psize_A"].astype(np.float32),
        "alignments2D/cross_cor": score.astype(np.float32),
        "alignments2D/class_posterior": np.ones(len(cls), np.float32),
    })


def run_class_2d(ctx: JobContext) -> None:
    """Iterate alignment + averaging; write one ``class_averages`` version per iteration."""
    p = ctx.params
    parts = input_dataset(ctx, "particles")
    n = len(parts)
    k = int(p["num_classes"])
    if n < 2 or k < 1 or k > n:
        raise DataError(f"{ctx.uid}: {n} particles cannot make {k} classes")
    raw, psize = load_particles(ctx, parts, p["downsample_px"])
    box = raw.shape[1]
    scale = float(parts["blob/shape"][0][0]) / box
    mask = a2d.soft_mask(box, p["mask_radius_frac"])
    images = _prepare(raw, parts, psize, mask, p["phase_flip"])
    max_shift = p["max_shift_frac"] * box
    rng = np.random.default_rng(p["seed"])
    refs = np.stack([a2d.centre(im) for im in images[np.sort(rng.choice(n, k, replace=False))]]) * mask
    for it in range(int(p["num_iterations"])):
        ctx.check_cancel()
        # Aligning to low-passed references keeps noise in small classes from
        # attracting particles (the "Einstein from noise" trap).
        cls, ang, sh, score = a2d.align(images, a2d.lowpass(refs, psize, p["align_lowpass_A"]),
                                        p["num_rotations"], max_shift)
        aligned = a2d.unalign(images, ang, sh)
        sizes = np.bincount(cls, minlength=k)
        spare = iter(np.argsort(score, kind="stable"))  # worst-fitting particles re-seed empty classes
        for c in range(k):
            members = np.nonzero(cls == c)[0]
            refs[c] = aligned[members].mean(axis=0) if len(members) else aligned[next(spare)]
            refs[c] = a2d.centre(refs[c]) * mask
        order = np.argsort(-sizes, kind="stable")  # largest class first, like CryoSPARC
        refs, sizes = refs[order], sizes[order]
        cls = np.argsort(order)[cls]
        res = []
        for c in range(k):
            members = np.nonzero(cls == c)[0]
            res.append(a2d.frc_resolution(aligned[members[0::2]].mean(0), aligned[members[1::2]].mean(0), psize)
                       if len(members) >= 4 else 999.0)
        _write_iteration(ctx, it, refs, sizes, res, parts, cls, ang, sh, score, psize, scale)
        ctx.results["class_sizes"] = sizes.tolist()
        ctx.results["iterations_done"] = it + 1
        ctx.log.info("iteration %d: class sizes %s", it, sizes.tolist())
        ctx.progress((it + 1) / p["num_iterations"], f"iteration {it + 1}")
    ctx.results["estimated_res_A"] = [round(r, 1) for r in res]


def run_select_2d(ctx: JobContext) -> None:
    """Split particles into the kept classes and the rest."""
    p = ctx.params
    parts = input_dataset(ctx, "particles")
    if "alignments2D/class" not in parts.dtype.names:
        raise DataError(f"{ctx.uid}: input particles have no 2-D class assignments (alignments2D/class)")
    cls = parts["alignments2D/class"].astype(int)
    sizes = np.bincount(cls)
    if str(p["classes"]).strip():
        try:
            keep = sorted({int(c) for c in str(p["classes"]).replace(" ", "").split(",") if c})
        except ValueError:
            raise UsageError(f"classes must be a comma-separated list of class numbers, got {p['classes']!r}") from None
        unknown = [c for c in keep if c >= len(sizes)]
        if unknown:
            raise UsageError(f"{ctx.uid}: no class {unknown[0]} (classes are 0..{len(sizes) - 1})")
    else:
        ok = sizes >= max(p["min_class_size"], p["min_class_fraction"] * len(parts) / max(len(sizes), 1))
        if p["max_res_A"] > 0 and ctx.inputs.get("class_averages"):
            res = input_dataset(ctx, "class_averages")
            by_class = dict(zip(res["class2D/class"].astype(int), res["class2D/estimated_res_A"]))
            ok &= np.array([by_class.get(c, np.inf) <= p["max_res_A"] for c in range(len(sizes))])
        keep = [int(c) for c in np.nonzero(ok)[0]]
    chosen = np.isin(cls, keep)
    if not chosen.any():
        raise UsageError(f"{ctx.uid}: the selection keeps no particles")
    for group, rows in (("particles", chosen), ("particles_excluded", ~chosen)):
        path = write_dataset(ctx.job_dir / f"{group}.cs", parts[rows])
        ctx.add_output(group, path, kind="dataset")
    ctx.results.update(kept_classes=keep, n_selected=int(chosen.sum()), n_excluded=int((~chosen).sum()))
    ctx.log.info("kept classes %s: %d of %d particles", keep, int(chosen.sum()), len(parts))


register(JobType(
    name="class_2d", title="2D Classification", category="classification",
    params=(
        Param("num_classes", 8, "int", "number of classes", minimum=1, maximum=100_000),
        Param("num_iterations", 10, "int", "alignment/averaging iterations (one output version each)"),
        Param("downsample_px", 32, "int", "box the particles are Fourier-cropped to for classification",
              minimum=2, maximum=8192),
        Param("num_rotations", 24, "int", "in-plane angles searched (360° / n steps)", minimum=1, maximum=36_000),
        Param("max_shift_frac", 0.1, "float", "largest translation searched, as a fraction of the box"),
        Param("mask_radius_frac", 0.85, "float", "circular mask radius, as a fraction of the half-box"),
        Param("align_lowpass_A", 15.0, "float", "low-pass applied to references for alignment (Å); 0 = none"),
        Param("phase_flip", True, "bool", "CTF phase-flip particles first (needs ctf/* fields)"),
        Param("seed", 0, "int", "random seed for the initial references"),
        CACHE_PARAM,
    ),
    inputs=(InputSlot("particles", "particle", help="extracted particles"),),
    outputs=(OutputGroup("class_averages", "class2d", iterative=True, help="class averages + assignments per iteration"),
             OutputGroup("particles", "particle", iterative=True,
                         help="particles with alignments2D/class, per iteration (the last is the result)")),
    run=run_class_2d, keep_partial_on_cancel=True,
    description="Built-in 2-D clustering with in-plane rotation (hard assignment); not RELION/CryoSPARC 2D.",
))

register(JobType(
    name="select_2d", title="Select 2D Classes", category="particle_curation",
    params=(
        Param("classes", "", "str", "classes to keep, e.g. '0,2,5'; empty = automatic"),
        Param("min_class_size", 0, "int", "automatic: smallest class kept (particles)"),
        Param("min_class_fraction", 0.5, "float", "automatic: smallest class kept, as a fraction of the mean size"),
        Param("max_res_A", 0.0, "float", "automatic: worst class resolution kept (Å); 0 = ignore"),
    ),
    inputs=(InputSlot("particles", "particle", help="particles from class_2d"),
            InputSlot("class_averages", "class2d", required=False, help="class averages (for max_res_A)")),
    outputs=(OutputGroup("particles", "particle", help="particles in the kept classes"),
             OutputGroup("particles_excluded", "particle", help="the other particles")),
    run=run_select_2d, resource="io",
    description="Keeps particles of chosen 2-D classes; they still point into the extraction stacks.",
))
