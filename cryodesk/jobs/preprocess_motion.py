"""``motion_correction``: rigid, whole-frame movie alignment (a lightweight built-in).

Each frame is aligned to the sum of all *other* aligned frames by FFT
cross-correlation with a parabolic sub-pixel peak, and the estimate is
iterated until the shifts stop changing.  Leaving the frame out of its own
reference matters: otherwise its noise correlates with itself and pulls every
shift towards zero.  Frames are then Fourier-shifted and summed.

Not implemented (unlike MotionCor2 / Patch Motion): local (patch) motion,
dose weighting, gain/defect correction.  Shifts are reported relative to the
first frame, ``(x, y)`` in pixels, content moved by ``+shift``.
"""

from __future__ import annotations

import numpy as np

from cryodesk.base.errors import DataError
from cryodesk.core.context import JobContext
from cryodesk.core.registry import InputSlot, JobType, OutputGroup, Param, register

from .preprocess_common import (
    input_dataset,
    read_mrc,
    text,
    with_columns,
    write_dataset,
    write_mrc,
)


def _parabolic(m1: float, c: float, p1: float) -> float:
    """Offset of the vertex of the parabola through three samples (in [-0.5, 0.5])."""
    denom = m1 - 2.0 * c + p1
    return 0.0 if denom >= 0 else float(np.clip(0.5 * (m1 - p1) / denom, -0.5, 0.5))


def _peak(cc: np.ndarray, max_shift: float) -> tuple[float, float]:
    """Sub-pixel ``(dy, dx)`` of the highest cross-correlation within ``max_shift``."""
    ny, nx = cc.shape
    dy = np.fft.fftfreq(ny, 1.0 / ny)[:, None]
    dx = np.fft.fftfreq(nx, 1.0 / nx)[None, :]
    masked = np.where(dy * dy + dx * dx <= max_shift * max_shift, cc, -np.inf)
    iy, ix = np.unravel_index(int(np.argmax(masked)), cc.shape)
    oy = _parabolic(cc[(iy - 1) % ny, ix], cc[iy, ix], cc[(iy + 1) % ny, ix])
    ox = _parabolic(cc[iy, (ix - 1) % nx], cc[iy, ix], cc[iy, (ix + 1) % nx])
    return float(dy[iy, 0] + oy), float(dx[0, ix] + ox)


def _phase(shape: tuple[int, int], dy: float, dx: float) -> np.ndarray:
    """rfft2 phase ramp that moves content by ``(dy, dx)``."""
    ky = np.fft.fftfreq(shape[0])[:, None]
    kx = np.fft.rfftfreq(shape[1])[None, :]
    return np.exp(-2j * np.pi * (ky * dy + kx * dx))


def align_frames(frames: np.ndarray, psize_A: float, bfactor: float = 150.0, max_shift_px: float = 40.0,
                 iterations: int = 8, tolerance_px: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """Estimate rigid per-frame shifts and return ``(aligned_sum, shifts_yx)``.

    Parameters
    ----------
    frames : ndarray, shape (F, ny, nx)
    psize_A : float
        Pixel size, for the B-factor.
    bfactor : float
        Low-pass ``exp(-B k^2 / 4)`` (Å²) applied for alignment only: it
        suppresses the noise-dominated high frequencies and broadens the peak
        so the parabolic fit is accurate.
    max_shift_px, iterations, tolerance_px
        Search radius, iteration cap and convergence threshold.

    Returns
    -------
    aligned_sum : ndarray, float32, shape (ny, nx)
    shifts_yx : ndarray, shape (F, 2)
        Shift of each frame's content relative to frame 0.
    """
    n, ny, nx = frames.shape
    spec = np.fft.rfft2(frames.astype(np.float64))
    k2 = np.fft.fftfreq(ny, psize_A)[:, None] ** 2 + np.fft.rfftfreq(nx, psize_A)[None, :] ** 2
    weight = np.exp(-bfactor * k2 / 4.0)
    weight[0, 0] = 0.0  # the mean carries no alignment information
    filtered = spec * weight
    shifts = np.zeros((n, 2))
    for _ in range(max(1, iterations)):
        undone = filtered * np.stack([_phase((ny, nx), -sy, -sx) for sy, sx in shifts])
        total = undone.sum(axis=0)
        new = np.empty_like(shifts)
        for f in range(n):
            ref = total - undone[f]
            cc = np.fft.irfft2(filtered[f] * np.conj(ref), s=(ny, nx))
            new[f] = _peak(cc, max_shift_px)
        new -= new[0]
        delta = np.abs(new - shifts).max()
        shifts = new
        if delta < tolerance_px:
            break
    aligned = sum(spec[f] * _phase((ny, nx), -shifts[f, 0], -shifts[f, 1]) for f in range(n))
    return np.fft.irfft2(aligned, s=(ny, nx)).astype(np.float32), shifts


def run_motion_correction(ctx: JobContext) -> None:
    """Align every input movie; write ``<name>_aligned.mrc`` and ``micrographs.cs``."""
    p = ctx.params
    movies = input_dataset(ctx, "movies")
    out_dir = ctx.job_dir / "motioncorrected"
    n = len(movies)
    n_frames = int(movies["movie_blob/shape"][:, 0].max()) if n else 0
    shifts_col = np.full((n, n_frames, 2), np.nan, np.float32)
    paths, shapes, results = [], [], {}
    for i, row in enumerate(movies):
        ctx.check_cancel()
        src = ctx.project_dir / text(row["movie_blob/path"])
        frames = read_mrc(src)
        if frames.ndim != 3 or frames.shape[0] < 2:
            raise DataError(f"{ctx.uid}: {src} is not a movie (data shape {frames.shape})")
        psize = float(row["movie_blob/psize_A"])
        aligned, shifts = align_frames(frames, psize, p["bfactor"], p["max_shift_px"],
                                       p["iterations"], p["tolerance_px"])
        name = src.name.rsplit(".", 1)[0]
        out = write_mrc(out_dir / f"{name}_aligned.mrc", aligned, psize)
        ctx.add_output("micrographs", out, kind="blob")
        paths.append(ctx.rel(out))
        shapes.append(aligned.shape)
        xy = shifts[:, ::-1]
        shifts_col[i, : len(xy)] = xy
        results[name] = np.round(xy, 3).tolist()
        ctx.log.info("%s: total drift %.2f px", name, float(np.hypot(*(xy[-1] - xy[0]))))
        ctx.progress((i + 1) / n, f"aligned {name}")
    data = with_columns(movies, {
        "micrograph_blob/path": np.array(paths, dtype="S"),
        "micrograph_blob/shape": np.array(shapes, dtype=np.uint32).reshape(n, 2),
        "micrograph_blob/psize_A": movies["movie_blob/psize_A"],
        "rigid_motion/frame_count": movies["movie_blob/shape"][:, 0].astype(np.uint32),
        "rigid_motion/shifts_px": shifts_col,
    })
    ctx.add_output("micrographs", write_dataset(ctx.job_dir / "micrographs.cs", data), kind="dataset")
    ctx.results["shifts_px"] = results


register(JobType(
    name="motion_correction", title="Rigid Motion Correction", category="motion_correction",
    params=(
        Param("bfactor", 150.0, "float", "B-factor (Å²) low-pass used for alignment only"),
        Param("max_shift_px", 40.0, "float", "largest frame shift searched (px)"),
        Param("iterations", 8, "int", "maximum refinement iterations"),
        Param("tolerance_px", 0.02, "float", "stop when no shift changes by more than this (px)"),
    ),
    inputs=(InputSlot("movies", "movie", help="movie stacks (e.g. from import_movies)"),),
    outputs=(OutputGroup("micrographs", "micrograph", help="aligned frame sums + per-frame shifts"),),
    run=run_motion_correction,
    description=("Built-in rigid whole-frame alignment by FFT cross-correlation (no patches, no dose "
                 "weighting); not MotionCor2."),
))
