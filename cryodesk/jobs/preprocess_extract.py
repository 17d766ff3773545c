"""``extract_particles``: cut picked boxes out of micrographs into MRC stacks.

One stack per micrograph (``J<n>/extract/<micrograph>_particles.mrc``) and a
CryoSPARC-style ``extracted_particles.cs`` with ``blob/*``, ``location/*`` and
``ctf/*`` (copied from the micrograph's CTF fit).  Boxes that would cross the
micrograph edge are skipped, as CryoSPARC does, and counted in the log.

The box copy + normalisation is a numba kernel (``nogil``, so a worker thread
does not block the GUI) with a numpy reference used when numba is missing
or disabled; both normalise each box to zero mean / unit variance of the
background outside ``bg_radius`` (RELION's convention).
"""

from __future__ import annotations

import numpy as np

from cryodesk.base.errors import DataError
from cryodesk.core.context import JobContext
from cryodesk.core.registry import InputSlot, JobType, OutputGroup, Param, register
from cryodesk.io.cs import from_columns
from cryodesk.io.mrc import StackWriter

from .preprocess_common import input_dataset, read_mrc, text, write_dataset


def background_mask(box: int, radius_frac: float = 0.85) -> np.ndarray:
    """True outside the circle of ``radius_frac * box / 2`` (the background ring)."""
    c = (box - 1) / 2.0
    yy, xx = np.mgrid[:box, :box]
    return (yy - c) ** 2 + (xx - c) ** 2 > (radius_frac * box / 2) ** 2


def extract_boxes_numpy(mic: np.ndarray, y0: np.ndarray, x0: np.ndarray, box: int,
                        bg: np.ndarray, normalize: bool = True) -> np.ndarray:
    """Boxes with top-left corners ``(y0, x0)`` (all inside ``mic``), as float32."""
    iy = y0[:, None, None] + np.arange(box)[None, :, None]
    ix = x0[:, None, None] + np.arange(box)[None, None, :]
    out = mic[iy, ix].astype(np.float64)
    if normalize and len(out):
        ring = out[:, bg]
        mean = ring.mean(axis=1)
        std = ring.std(axis=1)
        std[std <= 0] = 1.0
        out = (out - mean[:, None, None]) / std[:, None, None]
    return out.astype(np.float32)


def _extract_loop(mic, y0, x0, box, bg, normalize, out):
    for i in range(y0.shape[0]):
        s = 0.0
        s2 = 0.0
        c = 0
        for y in range(box):
            for x in range(box):
                v = np.float64(mic[y0[i] + y, x0[i] + x])
                out[i, y, x] = v
                if bg[y, x]:
                    s += v
                    s2 += v * v
                    c += 1
        if normalize and c > 0:
            mean = s / c
            var = s2 / c - mean * mean
            std = np.sqrt(var) if var > 0 else 1.0
            for y in range(box):
                for x in range(box):
                    out[i, y, x] = (np.float64(mic[y0[i] + y, x0[i] + x]) - mean) / std
    return out


_extract_nb = None


def _compiled():
    """The numba kernel, made on first use: importing numba costs ~0.4 s that a CLI run of
    another job type (or the app's start) should not pay."""
    global _extract_nb
    if _extract_nb is None:
        from cryodesk.kernels._numba import HAVE_NUMBA, jit

        _extract_nb = jit(_extract_loop) if HAVE_NUMBA else False
    return _extract_nb


def extract_boxes(mic: np.ndarray, y0: np.ndarray, x0: np.ndarray, box: int,
                  bg: np.ndarray, normalize: bool = True) -> np.ndarray:
    """Numba version of :func:`extract_boxes_numpy` (falls back to it without numba)."""
    kernel = _compiled()
    if not kernel:
        return extract_boxes_numpy(mic, y0, x0, box, bg, normalize)
    out = np.empty((len(y0), box, box), np.float32)
    return kernel(np.ascontiguousarray(mic, np.float32), np.asarray(y0, np.int64),
                       np.asarray(x0, np.int64), int(box), np.ascontiguousarray(bg), bool(normalize), out)


_CTF_COPY = ("ctf/type", "ctf/accel_kv", "ctf/cs_mm", "ctf/amp_contrast", "ctf/df1_A", "ctf/df2_A",
             "ctf/df_angle_rad", "ctf/phase_shift_rad")


def run_extract_particles(ctx: JobContext) -> None:
    """Extract every pick; write stacks and ``extracted_particles.cs``."""
    p = ctx.params
    box = int(p["box_size_px"])
    if box < 8 or box % 2:
        raise DataError(f"{ctx.uid}: box_size_px must be an even number >= 8, got {box}")
    mics = input_dataset(ctx, "micrographs")
    locs = input_dataset(ctx, "locations")
    bg = background_mask(box, p["bg_radius_frac"])
    by_mic = {int(u): i for i, u in enumerate(mics["uid"])}
    unmatched = int(np.sum([int(u) not in by_mic for u in locs["location/micrograph_uid"]]))
    if len(locs) and unmatched == len(locs):
        raise DataError(f"{ctx.uid}: none of the {len(locs)} picks refer to the input micrographs")
    parts: list[dict] = []
    skipped = 0
    for i, row in enumerate(mics):
        ctx.check_cancel()
        sel = np.nonzero(locs["location/micrograph_uid"] == row["uid"])[0]
        if not len(sel):
            continue
        rel = text(row["micrograph_blob/path"])
        mic = read_mrc(ctx.project_dir / rel)
        mic = mic[0] if mic.ndim == 3 else mic
        ny, nx = mic.shape
        cx = locs["location/center_x_frac"][sel].astype(np.float64) * nx
        cy = locs["location/center_y_frac"][sel].astype(np.float64) * ny
        x0 = np.floor(cx + 0.5).astype(np.int64) - box // 2
        y0 = np.floor(cy + 0.5).astype(np.int64) - box // 2
        ok = (x0 >= 0) & (y0 >= 0) & (x0 + box <= nx) & (y0 + box <= ny)
        skipped += int((~ok).sum())
        if not ok.any():
            continue
        boxes = extract_boxes(mic, y0[ok], x0[ok], box, bg, p["normalize"])
        name = rel.rsplit("/", 1)[-1].rsplit(".", 1)[0]
        out = ctx.job_dir / "extract" / f"{name}_particles.mrc"
        out.parent.mkdir(parents=True, exist_ok=True)
        psize = float(row["micrograph_blob/psize_A"])
        with StackWriter(out, (box, box), "float32", psize) as w:
            w.append(boxes)
        ctx.add_output("particles", out, kind="blob")
        parts.append({"rows": sel[ok], "mic": row, "path": ctx.rel(out), "psize": psize})
        ctx.progress((i + 1) / len(mics), f"extracted {int(ok.sum())} from {name}")
    if not parts:
        raise DataError(f"{ctx.uid}: no particle box fits inside its micrograph")
    rows = np.concatenate([q["rows"] for q in parts])
    n_each = [len(q["rows"]) for q in parts]
    rep = lambda f: np.repeat(np.array([f(q) for q in parts]), n_each, axis=0)  # noqa: E731
    cols = {
        "uid": locs["uid"][rows],
        "blob/path": rep(lambda q: q["path"].encode()),
        "blob/idx": np.concatenate([np.arange(k) for k in n_each]).astype(np.uint32),
        "blob/shape": np.tile(np.array([box, box], np.uint32), (len(rows), 1)),
        "blob/psize_A": rep(lambda q: q["psize"]).astype(np.float32),
        "blob/sign": np.full(len(rows), -1.0 if p["particle_sign"] == "dark" else 1.0, np.float32),
    }
    for name in locs.dtype.names:
        if name.startswith("location/"):
            cols[name] = locs[name][rows]
    cols["location/micrograph_psize_A"] = cols["blob/psize_A"]
    for name in _CTF_COPY:
        if name in mics.dtype.names:
            cols[name] = rep(lambda q, f=name: q["mic"][f])
    if "ctf/df1_A" in cols:
        cols["ctf/exp_group_id"] = cols["location/exp_group_id"] if "location/exp_group_id" in cols else 1
        cols["ctf/scale"] = np.ones(len(rows), np.float32)
    data = from_columns(cols)
    ctx.add_output("particles", write_dataset(ctx.job_dir / "extracted_particles.cs", data), kind="dataset")
    ctx.results.update(n_particles=len(data), n_skipped_at_edge=skipped, box_size_px=box)
    ctx.log.info("extracted %d particles (%d skipped at micrograph edges)", len(data), skipped)


register(JobType(
    name="extract_particles", title="Extract Particles", category="extraction",
    params=(
        Param("box_size_px", 128, "int", "box size in pixels (even)", minimum=2, maximum=8192),
        Param("normalize", True, "bool", "zero mean, unit variance of the background ring"),
        Param("bg_radius_frac", 0.85, "float", "background ring starts at this fraction of the half-box"),
        Param("particle_sign", "dark", "str", "particle contrast, recorded as blob/sign",
              choices=("dark", "light")),
    ),
    inputs=(InputSlot("micrographs", "micrograph", help="micrographs (with CTF fits)"),
            InputSlot("locations", "particle_locations", help="picked particle locations")),
    outputs=(OutputGroup("particles", "particle", help="particle stacks + extracted_particles.cs"),),
    run=run_extract_particles,
    description="Built-in box extraction into one MRC stack per micrograph (numba kernel).",
))
