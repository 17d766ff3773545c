"""``ctf_estimation``: defocus and astigmatism from the power spectrum (a lightweight built-in).

1. Periodogram: Hann-windowed, half-overlapping tiles, power spectra averaged.
2. Background and envelope: the same smoothing operator ``S`` (a moving
   average over radius) is applied to the data and to every model, and both
   are compared as ``(x - S x)`` normalised by their local RMS.  Removing the
   smooth part identically from data and model keeps the fit unbiased even
   where the background estimate is crude (wide low-resolution rings).
3. Mean defocus: exhaustive 1-D search of the rotational average against
   ``CTF²`` on a defocus grid, then a finer grid around the best value.
4. Astigmatism: the same 1-D fit per angular sector near the mean defocus,
   then ``df(φ) = mean + Δ/2·cos 2(φ-θ)`` by linear least squares.

Not CTFFIND: no 2-D joint refinement, phase plate or tilt; the fit is only as
good as the Thon rings within ``res_min_A``–``res_max_A``.
"""

from __future__ import annotations

import numpy as np

from cryodesk.core.context import JobContext
from cryodesk.core.registry import InputSlot, JobType, OutputGroup, Param, register

from .preprocess_common import (
    electron_wavelength_A,
    input_dataset,
    read_mrc,
    text,
    with_columns,
    write_dataset,
    write_mrc,
)


def power_spectrum(image: np.ndarray, tile: int) -> np.ndarray:
    """Average power spectrum (unshifted, ``tile`` × ``tile``) of half-overlapping tiles."""
    tile = min(tile, *image.shape)
    win = np.outer(np.hanning(tile), np.hanning(tile))
    step = tile // 2
    acc = np.zeros((tile, tile))
    count = 0
    for y in range(0, image.shape[0] - tile + 1, step):
        for x in range(0, image.shape[1] - tile + 1, step):
            t = image[y:y + tile, x:x + tile].astype(np.float64)
            acc += np.abs(np.fft.fft2((t - t.mean()) * win)) ** 2
            count += 1
    return acc / max(count, 1)


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average along the last axis, edges handled by renormalising."""
    kernel = np.ones(width)
    num = np.apply_along_axis(lambda r: np.convolve(r, kernel, "same"), -1, x)
    den = np.convolve(np.ones(x.shape[-1]), kernel, "same")
    return num / den


def _flatten(profiles: np.ndarray, width: int) -> np.ndarray:
    """Subtract the smooth part and divide by the local RMS (rows are profiles)."""
    hp = profiles - _smooth(profiles, width)
    rms = np.sqrt(_smooth(hp * hp, 2 * width) + 1e-30)
    return hp / rms


def _ctf2(k: np.ndarray, df: np.ndarray, lam: float, cs_A: float, w: float) -> np.ndarray:
    """Isotropic ``CTF²`` for each defocus (rows) at frequencies ``k`` (columns)."""
    k2 = k * k
    chi = np.pi * lam * df[:, None] * k2 - 0.5 * np.pi * cs_A * lam**3 * k2 * k2
    return np.sin(chi + w) ** 2


def _fit_1d(profile: np.ndarray, k: np.ndarray, band: np.ndarray, grid: np.ndarray,
            lam: float, cs_A: float, w: float, width: int) -> tuple[float, float]:
    """Best defocus on ``grid`` for one radial profile, and its correlation score."""
    data = _flatten(profile[None, :], width)[0][band]
    data = (data - data.mean()) / (data.std() + 1e-30)
    models = _flatten(_ctf2(k, grid, lam, cs_A, w), width)[:, band]
    models -= models.mean(axis=1, keepdims=True)
    models /= models.std(axis=1, keepdims=True) + 1e-30
    scores = models @ data / band.sum()
    best = int(np.argmax(scores))
    return float(grid[best]), float(scores[best])


def estimate_ctf(image: np.ndarray, psize_A: float, accel_kv: float = 300.0, cs_mm: float = 2.7,
                 amp_contrast: float = 0.1, tile: int = 256, res_min_A: float = 30.0,
                 res_max_A: float = 5.0, df_range_A: tuple[float, float] = (3000.0, 50000.0),
                 n_sectors: int = 12, fit_astigmatism: bool = True) -> dict:
    """Fit defocus (and astigmatism) of one micrograph.

    Returns
    -------
    dict
        ``df1_A``, ``df2_A`` (df1 ≥ df2), ``df_angle_rad`` (direction of df1
        from +x), ``cross_corr`` (1-D fit score, -1..1) and ``spectrum`` (the
        centred periodogram, for diagnostics).
    """
    ps = power_spectrum(image, tile)
    n = ps.shape[0]
    ky = np.fft.fftfreq(n, psize_A)[:, None]
    kx = np.fft.fftfreq(n, psize_A)[None, :]
    r = np.hypot(ky, kx) * n * psize_A  # radius in Fourier pixels
    phi = np.arctan2(ky, kx) % np.pi  # the spectrum is centrosymmetric
    nbins = n // 2
    k = np.arange(nbins) / (n * psize_A)
    rbin = np.minimum(np.rint(r).astype(int), nbins)
    band = (k >= 1.0 / res_min_A) & (k <= 1.0 / max(res_max_A, 2.05 * psize_A))
    lam, cs_A, w = electron_wavelength_A(accel_kv), cs_mm * 1e7, np.arcsin(amp_contrast)
    width = max(3, nbins // 24)

    def profile(mask: np.ndarray) -> np.ndarray:
        s = np.bincount(rbin[mask], ps[mask], nbins + 1)[:nbins]
        c = np.bincount(rbin[mask], None, nbins + 1)[:nbins]
        return s / np.maximum(c, 1)

    full = profile(np.ones_like(ps, bool))
    coarse = np.arange(df_range_A[0], df_range_A[1], 100.0)
    df0, _ = _fit_1d(full, k, band, coarse, lam, cs_A, w, width)
    df0, score = _fit_1d(full, k, band, np.arange(df0 - 150, df0 + 150, 5.0), lam, cs_A, w, width)
    result = {"df1_A": df0, "df2_A": df0, "df_angle_rad": 0.0, "cross_corr": score}
    if fit_astigmatism and n_sectors >= 3:
        local = np.arange(df0 - 0.15 * df0, df0 + 0.15 * df0, max(5.0, df0 / 2000))
        centres = (np.arange(n_sectors) + 0.5) * np.pi / n_sectors
        dfs = np.array([
            _fit_1d(profile(np.abs(((phi - c + np.pi / 2) % np.pi) - np.pi / 2) < np.pi / n_sectors / 2 + 1e-9),
                    k, band, local, lam, cs_A, w, width)[0]
            for c in centres])
        design = np.stack([np.ones_like(centres), np.cos(2 * centres), np.sin(2 * centres)], 1)
        # A robust refit: drop the worst sector if one ring fit went astray.
        coef = np.linalg.lstsq(design, dfs, rcond=None)[0]
        resid = np.abs(design @ coef - dfs)
        keep = resid < max(3 * np.median(resid), 50.0)
        if keep.sum() >= 3:
            coef = np.linalg.lstsq(design[keep], dfs[keep], rcond=None)[0]
        mean, a, b = coef
        half = float(np.hypot(a, b))
        result.update(df1_A=float(mean + half), df2_A=float(mean - half),
                      df_angle_rad=float(0.5 * np.arctan2(b, a) % np.pi))
    result["spectrum"] = np.fft.fftshift(ps).astype(np.float32)
    return result


def run_ctf_estimation(ctx: JobContext) -> None:
    """Fit every input micrograph; write ``micrographs_ctf.cs`` and diagnostic spectra."""
    p = ctx.params
    mics = input_dataset(ctx, "micrographs")
    fits, diag_paths = [], []
    for i, row in enumerate(mics):
        ctx.check_cancel()
        path = ctx.project_dir / text(row["micrograph_blob/path"])
        image = read_mrc(path)
        image = image[0] if image.ndim == 3 else image
        psize = float(row["micrograph_blob/psize_A"])
        kv = float(row["mscope_params/accel_kv"]) if "mscope_params/accel_kv" in mics.dtype.names else 300.0
        cs = float(row["mscope_params/cs_mm"]) if "mscope_params/cs_mm" in mics.dtype.names else 2.7
        fit = estimate_ctf(image, psize, kv, cs, p["amp_contrast"], p["tile_px"], p["res_min_A"],
                           p["res_max_A"], (p["df_min_A"], p["df_max_A"]), fit_astigmatism=p["fit_astigmatism"])
        name = path.name.rsplit(".", 1)[0]
        diag = write_mrc(ctx.job_dir / "ctf" / f"{name}_spectrum.mrc", np.log1p(fit.pop("spectrum")), psize)
        ctx.add_output("micrographs", diag, kind="diagnostic")
        diag_paths.append(ctx.rel(diag))
        fit.update(accel_kv=kv, cs_mm=cs)
        fits.append(fit)
        ctx.log.info("%s: df1 %.0f Å, df2 %.0f Å, angle %.1f°, cc %.3f", name, fit["df1_A"], fit["df2_A"],
                     np.degrees(fit["df_angle_rad"]), fit["cross_corr"])
        ctx.progress((i + 1) / len(mics), f"fitted {name}")
    n = len(mics)
    col = lambda key: np.array([f[key] for f in fits], np.float32).reshape(n)  # noqa: E731
    data = with_columns(mics, {
        "ctf/type": np.full(n, b"builtin"),
        "ctf/accel_kv": col("accel_kv"), "ctf/cs_mm": col("cs_mm"),
        "ctf/amp_contrast": np.full(n, p["amp_contrast"], np.float32),
        "ctf/df1_A": col("df1_A"), "ctf/df2_A": col("df2_A"), "ctf/df_angle_rad": col("df_angle_rad"),
        "ctf/phase_shift_rad": np.zeros(n, np.float32),
        "ctf_stats/cross_corr": col("cross_corr"),
        "ctf_stats/diag_spectrum_path": np.array(diag_paths, dtype="S").reshape(n),
    })
    ctx.add_output("micrographs", write_dataset(ctx.job_dir / "micrographs_ctf.cs", data), kind="dataset")
    ctx.results["defocus_A"] = {text(r["micrograph_blob/path"]).rsplit("/", 1)[-1]: round(
        (f["df1_A"] + f["df2_A"]) / 2, 1) for r, f in zip(mics, fits)}


register(JobType(
    name="ctf_estimation", title="CTF Estimation", category="ctf_estimation",
    params=(
        Param("amp_contrast", 0.1, "float", "amplitude contrast fraction"),
        Param("tile_px", 256, "int", "periodogram tile size (px)", minimum=8, maximum=8192),
        Param("res_min_A", 30.0, "float", "lowest resolution used in the fit (Å)"),
        Param("res_max_A", 5.0, "float", "highest resolution used in the fit (Å)"),
        Param("df_min_A", 3000.0, "float", "smallest defocus searched (Å)"),
        Param("df_max_A", 50000.0, "float", "largest defocus searched (Å)"),
        Param("fit_astigmatism", True, "bool", "fit df1/df2/angle from angular sectors"),
    ),
    inputs=(InputSlot("micrographs", "micrograph", help="aligned micrographs"),),
    outputs=(OutputGroup("micrographs", "micrograph", help="micrographs with ctf/* fields"),),
    run=run_ctf_estimation,
    description="Built-in periodogram CTF fit (defocus + astigmatism by sectors); not CTFFIND.",
))
