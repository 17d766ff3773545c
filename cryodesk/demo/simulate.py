"""Synthetic cryo-EM dataset: movies, micrographs and the ground truth behind them.

Image formation, per micrograph (all deterministic from the seed):

1. project a blob phantom at uniformly random orientations and paint the
   projections at known, non-overlapping positions (plus a faint amorphous
   "ice" texture, which is what gives real micrographs their Thon rings);
2. apply a known CTF (defocus, astigmatism, B-factor envelope) in Fourier space;
3. split into ``n_frames`` frames, each shifted by a known rigid drift, each
   with its own Gaussian noise; frame 0 is the reference (drift 0).

The canvas is simulated with a margin larger than the drift and cropped, so
the Fourier shift's periodic wrap never shows.  Coordinates are pixels,
``x`` = column, ``y`` = row, in the frame-0 / aligned-micrograph frame.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np

from cryodesk.base.fsio import atomic_write
from cryodesk.jobs.preprocess_common import ctf_2d, fourier_shift, freq_grid, write_mrc

from .phantom import make_phantom, paint_projection, random_rotations, render_volume


@dataclass(frozen=True)
class SimulationSpec:
    """Size and imaging conditions of a simulated dataset."""

    n_micrographs: int = 4
    shape: int = 512
    n_frames: int = 8
    particles_per_micrograph: int = 30
    box: int = 64
    psize_A: float = 2.0
    particle_diameter_A: float = 76.0
    accel_kv: float = 300.0
    cs_mm: float = 2.7
    amp_contrast: float = 0.1
    bfactor: float = 60.0
    defocus_range_A: tuple[float, float] = (10000.0, 25000.0)
    astigmatism_range_A: tuple[float, float] = (200.0, 800.0)
    max_drift_px: float = 8.0
    #: particle signal variance / noise variance in the summed micrograph (per pixel)
    snr: float = 0.1
    #: CTF-modulated ice background variance, relative to the noise variance
    ice_level: float = 0.5
    total_dose_e_per_A2: float = 40.0


SIZES: dict[str, SimulationSpec] = {
    "small": SimulationSpec(),
    "medium": SimulationSpec(n_micrographs=12, shape=1024, n_frames=12, particles_per_micrograph=120),
}


def _place(rng: np.random.Generator, n: int, shape: int, edge: float, min_dist: float) -> np.ndarray:
    """Up to ``n`` positions ``(y, x)``, ``min_dist`` apart and ``edge`` from the border."""
    pts: list[np.ndarray] = []
    for _ in range(200 * n):
        p = rng.uniform(edge, shape - edge, 2)
        if all(np.hypot(*(p - q)) >= min_dist for q in pts):
            pts.append(p)
            if len(pts) == n:
                break
    return np.array(pts).reshape(-1, 2)


def _drift(rng: np.random.Generator, n_frames: int, max_drift: float) -> np.ndarray:
    """Per-frame rigid drift ``(dy, dx)`` px: fast early, slowing, with jitter; frame 0 at 0."""
    total = rng.uniform(0.4, 1.0) * max_drift
    angle = rng.uniform(0, 2 * np.pi)
    t = np.arange(n_frames, dtype=np.float64)
    tau = max(n_frames / 3.0, 1.0)
    path = (1 - np.exp(-t / tau)) / (1 - np.exp(-(n_frames - 1) / tau)) if n_frames > 1 else t
    d = total * path[:, None] * np.array([np.sin(angle), np.cos(angle)])
    d[1:] += rng.normal(scale=0.15, size=(n_frames - 1, 2))
    return d


def _micrograph(spec: SimulationSpec, phantom, rng: np.random.Generator, name: str):
    """Simulate one exposure; returns (frames, aligned sum, truth dict)."""
    margin = int(np.ceil(spec.max_drift_px)) + 8
    size = spec.shape + 2 * margin
    radius_px = spec.particle_diameter_A / 2 / spec.psize_A
    pos = _place(rng, spec.particles_per_micrograph, spec.shape,
                 edge=spec.box / 2 + 2, min_dist=2.6 * radius_px)
    rots = random_rotations(rng, len(pos))
    potential = np.zeros((size, size), dtype=np.float64)
    for (y, x), rot in zip(pos, rots):
        paint_projection(potential, phantom, rot, y + margin, x + margin, spec.psize_A)
    # Ice: smooth-ish random density, independent of the particles.
    ice = np.fft.irfft2(np.fft.rfft2(rng.normal(size=(size, size)))
                        * np.exp(-0.5 * (np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.rfftfreq(size),
                                                              indexing="ij")) / 0.35) ** 2), s=(size, size))
    df_mean = rng.uniform(*spec.defocus_range_A)
    astig = rng.uniform(*spec.astigmatism_range_A)
    angle = rng.uniform(0, np.pi)
    df1, df2 = df_mean + astig / 2, df_mean - astig / 2
    ky, kx = freq_grid((size, size), spec.psize_A)
    ctf = ctf_2d(ky, kx, df1, df2, angle, spec.accel_kv, spec.cs_mm, spec.amp_contrast, bfactor=spec.bfactor)
    signal = np.real(np.fft.ifft2(np.fft.fft2(potential) * ctf))
    ice_img = np.real(np.fft.ifft2(np.fft.fft2(ice) * ctf))
    # Scale against the particle signal inside the particle discs, so "snr" means
    # the same thing whatever the particle density.
    yy, xx = np.mgrid[:size, :size]
    inside = np.zeros((size, size), bool)
    for y, x in pos + margin:
        inside |= (yy - y) ** 2 + (xx - x) ** 2 <= radius_px**2
    sig_var = signal[inside].var() if inside.any() else 1.0
    noise_sigma = np.sqrt(sig_var / spec.snr)
    image = signal + ice_img * (np.sqrt(spec.ice_level) * noise_sigma / ice_img.std())
    drift = _drift(rng, spec.n_frames, spec.max_drift_px)
    crop = (slice(margin, margin + spec.shape),) * 2
    frames = np.empty((spec.n_frames, spec.shape, spec.shape), dtype=np.float32)
    aligned = np.zeros((spec.shape, spec.shape), dtype=np.float64)
    frame_sigma = noise_sigma / np.sqrt(spec.n_frames)
    for f in range(spec.n_frames):
        noise = rng.normal(scale=frame_sigma, size=(spec.shape, spec.shape))
        moved = fourier_shift(image, drift[f, 0], drift[f, 1])[crop]
        frames[f] = moved / spec.n_frames + noise + 1.0  # +1: a positive mean "dose" per frame
        aligned += image[crop] / spec.n_frames + noise + 1.0
    truth = {
        "name": name,
        "defocus_u_A": float(df1), "defocus_v_A": float(df2), "astigmatism_angle_rad": float(angle),
        "shifts_px": drift[:, ::-1].round(4).tolist(),  # stored (x, y) like MotionCor2 logs
        "noise_sigma": float(noise_sigma),
        "particles": [{"x": float(x), "y": float(y), "rotation": r.round(6).tolist()}
                      for (y, x), r in zip(pos, rots)],
    }
    return frames, aligned.astype(np.float32), truth


def simulate_dataset(out_dir: Path | str, size: str | SimulationSpec = "small", seed: int = 0,
                     **overrides) -> dict:
    """Write a synthetic dataset and its ground truth; return the truth dict.

    Parameters
    ----------
    out_dir : path
        Created if needed.  Receives ``movies/movie_NNN.mrc`` (frame stacks),
        ``micrographs/mic_NNN.mrc`` (exactly aligned sums), ``phantom.mrc`` and
        ``ground_truth.json``.
    size : {"small", "medium"} or SimulationSpec
        Preset name or a full spec.
    seed : int
        Everything (phantom, orientations, defocus, drift, noise) follows from it.
    **overrides
        Fields of :class:`SimulationSpec` to change, e.g. ``n_micrographs=2``.

    Returns
    -------
    dict
        The ground truth, as written to ``ground_truth.json``; ``shifts_px`` per
        frame are ``(x, y)`` relative to frame 0 (content moved by +shift).
    """
    spec = SIZES[size] if isinstance(size, str) else size
    spec = replace(spec, **overrides)
    out = Path(out_dir)
    (out / "movies").mkdir(parents=True, exist_ok=True)
    (out / "micrographs").mkdir(exist_ok=True)
    root = np.random.SeedSequence(seed)
    phantom_seed, *mic_seeds = root.spawn(spec.n_micrographs + 1)
    phantom = make_phantom(np.random.default_rng(phantom_seed), spec.particle_diameter_A)
    write_mrc(out / "phantom.mrc", render_volume(phantom, spec.box, spec.psize_A), spec.psize_A)
    truth = {"seed": seed, "spec": asdict(spec), "phantom": phantom.to_json(), "micrographs": []}
    for i, ss in enumerate(mic_seeds):
        frames, aligned, t = _micrograph(spec, phantom, np.random.default_rng(ss), f"mic_{i:03d}")
        t["movie_path"] = f"movies/movie_{i:03d}.mrc"
        t["micrograph_path"] = f"micrographs/mic_{i:03d}.mrc"
        write_mrc(out / t["movie_path"], frames, spec.psize_A, stack=True)
        write_mrc(out / t["micrograph_path"], aligned, spec.psize_A)
        truth["micrographs"].append(t)
    atomic_write(out / "ground_truth.json", json.dumps(truth, indent=1))
    return truth


def load_truth(out_dir: Path | str) -> dict:
    """Read ``ground_truth.json`` written by :func:`simulate_dataset`."""
    return json.loads((Path(out_dir) / "ground_truth.json").read_text())
