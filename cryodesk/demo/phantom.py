"""An asymmetric phantom made of Gaussian blobs, and its exact projections.

A sum of isotropic 3-D Gaussians projects along any direction to a sum of 2-D
Gaussians centred on the rotated blob centres, so projections are computed
analytically: no volume interpolation, exact at any orientation and sub-pixel
position, and cheap enough to paint hundreds of particles per micrograph.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Phantom:
    """Blobs in Å relative to the particle centre.

    Attributes
    ----------
    centers_A : ndarray, shape (K, 3)
        Blob centres ``(x, y, z)``.
    sigmas_A : ndarray, shape (K,)
        Gaussian widths.
    weights : ndarray, shape (K,)
        Integrated density of each blob.
    """

    centers_A: np.ndarray
    sigmas_A: np.ndarray
    weights: np.ndarray

    @property
    def radius_A(self) -> float:
        """Radius that contains every blob out to two sigmas."""
        return float(np.max(np.linalg.norm(self.centers_A, axis=1) + 2 * self.sigmas_A))

    def to_json(self) -> dict:
        return {
            "centers_A": self.centers_A.round(4).tolist(),
            "sigmas_A": self.sigmas_A.round(4).tolist(),
            "weights": self.weights.round(6).tolist(),
        }


def make_phantom(rng: np.random.Generator, diameter_A: float, n_blobs: int = 14) -> Phantom:
    """A random, asymmetric blob phantom fitting in ``diameter_A``.

    One heavy off-centre "domain" and an elongated arm of blobs break every
    symmetry, so 2-D class averages of different views look different.
    """
    r = 0.5 * diameter_A
    sig = rng.uniform(0.14, 0.22, n_blobs) * r
    # Random directions, radii biased outwards so the particle is not a ball.
    d = rng.normal(size=(n_blobs, 3))
    d /= np.linalg.norm(d, axis=1, keepdims=True)
    centers = d * (rng.uniform(0.25, 1.0, n_blobs) ** 0.5)[:, None] * (r - 2 * sig)[:, None]
    arm = np.linspace(0.0, 1.0, 4)[:, None] * np.array([0.75 * r, 0.1 * r, -0.2 * r]) * 0.9
    centers = np.concatenate([centers, arm])
    sig = np.concatenate([sig, np.full(len(arm), 0.12 * r)])
    weights = np.concatenate([rng.uniform(0.6, 1.4, n_blobs), np.full(len(arm), 0.8)])
    weights[0] *= 1.8  # the heavy domain
    # Keep every blob inside the sphere; otherwise boxes would clip density.
    scale = min(1.0, (r - 2 * sig.max()) / max(np.linalg.norm(centers, axis=1).max(), 1e-6))
    return Phantom(centers * scale, sig, weights)


def random_rotations(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` rotation matrices drawn uniformly (normalised Gaussian quaternions)."""
    q = rng.normal(size=(n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    return np.stack([
        np.stack([1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)], -1),
        np.stack([2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)], -1),
        np.stack([2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)], -1),
    ], axis=1)


def paint_projection(canvas: np.ndarray, phantom: Phantom, rotation: np.ndarray,
                     cy: float, cx: float, psize_A: float) -> None:
    """Add the projection of ``phantom`` rotated by ``rotation`` centred at ``(cy, cx)`` px.

    Only a window around the particle is touched, so painting scales with the
    number of particles, not the micrograph area.
    """
    rotated = phantom.centers_A @ rotation.T / psize_A  # (K, 3) in px
    sig = phantom.sigmas_A / psize_A
    # Line integral of a 3-D Gaussian: the 2-D Gaussian keeps sigma, amplitude w/(2 pi s^2).
    amp = phantom.weights / (2 * np.pi * sig**2)
    half = int(np.ceil(phantom.radius_A / psize_A + 3 * sig.max()))
    y0, x0 = int(np.floor(cy)) - half, int(np.floor(cx)) - half
    y1, x1 = y0 + 2 * half + 2, x0 + 2 * half + 2
    ys = np.arange(max(y0, 0), min(y1, canvas.shape[0]))
    xs = np.arange(max(x0, 0), min(x1, canvas.shape[1]))
    if ys.size == 0 or xs.size == 0:
        return
    dy = ys[None, :] - (cy + rotated[:, 1])[:, None]  # (K, ny)
    dx = xs[None, :] - (cx + rotated[:, 0])[:, None]  # (K, nx)
    gy = np.exp(-0.5 * (dy / sig[:, None]) ** 2) * amp[:, None]
    gx = np.exp(-0.5 * (dx / sig[:, None]) ** 2)
    # Separable Gaussians: the window is one small matrix product.
    canvas[ys[0]:ys[-1] + 1, xs[0]:xs[-1] + 1] += (gy.T @ gx).astype(canvas.dtype)


def render_volume(phantom: Phantom, box: int, psize_A: float) -> np.ndarray:
    """The phantom sampled on a ``box``³ grid (z, y, x), for viewing and reference."""
    ax = (np.arange(box) - box // 2) * psize_A
    vol = np.zeros((box, box, box), dtype=np.float64)
    for c, s, w in zip(phantom.centers_A, phantom.sigmas_A, phantom.weights):
        gz, gy, gx = (np.exp(-0.5 * ((ax - c[i]) / s) ** 2) for i in (2, 1, 0))
        vol += w / ((2 * np.pi) ** 1.5 * s**3) * gz[:, None, None] * gy[None, :, None] * gx[None, None, :]
    return vol.astype(np.float32)
