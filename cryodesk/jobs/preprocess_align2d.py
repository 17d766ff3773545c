"""2-D image maths for the built-in ``class_2d`` job (no job types here).

Reference-based alignment: every particle is compared with every class
average at ``n_rot`` in-plane rotations, all translations at once by FFT
cross-correlation, and the best (class, angle, shift) wins.  Convention: the
best match means ``particle ≈ shift(rotate(ref, angle), shift)``, so a
particle is brought into its class frame with :func:`unalign`.
"""

from __future__ import annotations

import numpy as np

from .preprocess_common import ctf_2d, freq_grid


def soft_mask(box: int, radius_frac: float, edge_px: float = 2.0) -> np.ndarray:
    """A circular mask with a raised-cosine edge, centred on ``box // 2``."""
    c = box // 2
    yy, xx = np.mgrid[:box, :box]
    r = np.hypot(yy - c, xx - c)
    r0 = radius_frac * box / 2
    t = np.clip((r - r0) / edge_px, 0.0, 1.0)
    return (0.5 + 0.5 * np.cos(np.pi * t)).astype(np.float32)


def rotate(images: np.ndarray, angles: np.ndarray) -> np.ndarray:
    """Rotate each image counter-clockwise by ``angles`` (rad) about ``box // 2``; bilinear."""
    n, ny, nx = images.shape
    c = np.array([ny // 2, nx // 2], float)
    yy, xx = np.mgrid[:ny, :nx].astype(float)
    yy, xx = yy - c[0], xx - c[1]
    cos, sin = np.cos(angles)[:, None, None], np.sin(angles)[:, None, None]
    # Pull: output pixel p samples the input at R(-angle) p.
    sx = cos * xx + sin * yy + c[1]
    sy = -sin * xx + cos * yy + c[0]
    x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
    fx, fy = sx - x0, sy - y0
    out = np.zeros(sx.shape, float)
    idx = np.arange(n)[:, None, None]
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            yi, xi = y0 + dy, x0 + dx
            ok = (yi >= 0) & (yi < ny) & (xi >= 0) & (xi < nx)
            out += np.where(ok, images[idx, np.clip(yi, 0, ny - 1), np.clip(xi, 0, nx - 1)], 0.0) * wy * wx
    return out.astype(np.float32)


def shift(images: np.ndarray, shifts_yx: np.ndarray) -> np.ndarray:
    """Fourier-shift each image by its ``(dy, dx)`` (content moves by +shift)."""
    n, ny, nx = images.shape
    ky = np.fft.fftfreq(ny)[None, :, None]
    kx = np.fft.rfftfreq(nx)[None, None, :]
    ramp = np.exp(-2j * np.pi * (ky * shifts_yx[:, 0, None, None] + kx * shifts_yx[:, 1, None, None]))
    return np.fft.irfft2(np.fft.rfft2(images) * ramp, s=(ny, nx)).astype(np.float32)


def lowpass(images: np.ndarray, psize_A: float, res_A: float) -> np.ndarray:
    """Gaussian low-pass with amplitude 1/2 at ``res_A`` (no-op when ``res_A <= 0``)."""
    if res_A <= 0:
        return images
    ky = np.fft.fftfreq(images.shape[-2], psize_A)[:, None]
    kx = np.fft.rfftfreq(images.shape[-1], psize_A)[None, :]
    filt = np.exp(-np.log(2) * (ky * ky + kx * kx) * res_A**2)
    return np.fft.irfft2(np.fft.rfft2(images) * filt, s=images.shape[-2:]).astype(np.float32)


def phase_flip(images: np.ndarray, psize_A: float, ctf_rows: np.ndarray) -> np.ndarray:
    """Multiply each image's spectrum by the sign of its CTF (``ctf/*`` fields of ``ctf_rows``)."""
    ky, kx = freq_grid(images.shape[1:], psize_A)
    out = np.empty_like(images)
    for i, row in enumerate(ctf_rows):
        c = ctf_2d(ky, kx, float(row["ctf/df1_A"]), float(row["ctf/df2_A"]), float(row["ctf/df_angle_rad"]),
                   float(row["ctf/accel_kv"]), float(row["ctf/cs_mm"]), float(row["ctf/amp_contrast"]))
        out[i] = np.real(np.fft.ifft2(np.fft.fft2(images[i]) * np.sign(c)))
    return out


def align(particles: np.ndarray, refs: np.ndarray, n_rot: int, max_shift: float,
          chunk: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Best ``(class, angle, shift_yx, score)`` of each particle against ``refs``.

    The score is the cross-correlation divided by the rotated reference's norm,
    so classes with more power do not win by default.
    """
    n, box, _ = particles.shape
    k = len(refs)
    angles = np.arange(n_rot) * 2 * np.pi / n_rot
    rot = rotate(np.repeat(refs, n_rot, axis=0), np.tile(angles, k))  # (k*n_rot, box, box)
    norms = np.sqrt((rot.astype(np.float64) ** 2).sum(axis=(1, 2))) + 1e-12
    fr = np.conj(np.fft.rfft2(rot)) / norms[:, None, None]
    dy = np.fft.fftfreq(box, 1.0 / box)
    window = (dy[:, None] ** 2 + dy[None, :] ** 2) <= max_shift**2
    wy, wx = np.nonzero(window)
    best = np.empty(n, int)
    score = np.empty(n)
    sh = np.empty((n, 2))
    # ~4M correlation samples per chunk keeps temporaries near 100 MB at any size.
    chunk = chunk or max(1, 4_000_000 // (k * n_rot * box * box))
    for s in range(0, n, chunk):
        fp = np.fft.rfft2(particles[s:s + chunk])
        cc = np.fft.irfft2(fp[:, None] * fr[None], s=(box, box))[:, :, wy, wx]  # (c, k*n_rot, w)
        flat = cc.reshape(len(fp), -1)
        arg = np.argmax(flat, axis=1)
        m, w = np.divmod(arg, len(wy))
        best[s:s + chunk] = m
        score[s:s + chunk] = flat[np.arange(len(fp)), arg]
        sh[s:s + chunk] = np.column_stack([dy[wy[w]], dy[wx[w]]])
    return best // n_rot, angles[best % n_rot], sh, score


def unalign(particles: np.ndarray, angles: np.ndarray, shifts_yx: np.ndarray) -> np.ndarray:
    """Bring particles into their class frame: undo the shift, then the rotation."""
    return rotate(shift(particles, -shifts_yx), -angles)


def centre(image: np.ndarray) -> np.ndarray:
    """Shift ``image`` so the centre of mass of its positive part is at ``box // 2``."""
    pos = np.clip(image, 0, None)
    total = pos.sum()
    if total <= 0:
        return image
    yy, xx = np.mgrid[:image.shape[0], :image.shape[1]]
    com = np.array([(yy * pos).sum(), (xx * pos).sum()]) / total - np.array(image.shape) // 2
    return shift(image[None], -com[None])[0]


def frc_resolution(half1: np.ndarray, half2: np.ndarray, psize_A: float, threshold: float = 0.143) -> float:
    """Resolution (Å) where the Fourier ring correlation of two half-averages drops below ``threshold``."""
    box = half1.shape[0]
    f1, f2 = np.fft.fft2(half1), np.fft.fft2(half2)
    r = np.rint(np.hypot(*np.meshgrid(np.fft.fftfreq(box, 1 / box), np.fft.fftfreq(box, 1 / box),
                                      indexing="ij"))).astype(int)
    nb = box // 2
    num = np.bincount(r.ravel(), np.real(f1 * np.conj(f2)).ravel(), nb + 1)[1:nb]
    d1 = np.bincount(r.ravel(), (np.abs(f1) ** 2).ravel(), nb + 1)[1:nb]
    d2 = np.bincount(r.ravel(), (np.abs(f2) ** 2).ravel(), nb + 1)[1:nb]
    frc = num / np.sqrt(d1 * d2 + 1e-30)
    below = np.nonzero(frc < threshold)[0]
    ring = (below[0] + 1) if below.size else nb
    return float(box * psize_A / max(ring, 1))
