"""Fourier crop: numba and numpy agree; the crop is the band-limited downsampling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryodesk.kernels import fourier

numba_only = pytest.mark.skipif(not hasattr(fourier, "fourier_crop_numba"),
                                reason="numba or rocket-fft not installed")
IMPLS = [fourier.fourier_crop_numpy] + ([fourier.fourier_crop_numba]
                                        if hasattr(fourier, "fourier_crop_numba") else [])


def _images(n, ny, nx, seed=0):
    return (np.random.default_rng(seed).standard_normal((n, ny, nx)) + 5).astype(np.float32)


@numba_only
@pytest.mark.parametrize("n,m", [(64, 32), (65, 33), (64, 40), (50, 37), (320, 160), (16, 16), (8, 1)])
def test_numba_matches_numpy(n, m):
    x = _images(3, n, n)
    ref = fourier.fourier_crop_numpy(x, m)
    got = fourier.fourier_crop_numba(x, m)
    assert got.shape == (3, m, m) and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-5 * np.abs(ref).max())


@numba_only
@settings(max_examples=40, deadline=None)
@given(st.integers(4, 40), st.integers(4, 40), st.data())
def test_numba_matches_numpy_property(ny, nx, data):
    my = data.draw(st.integers(1, ny))
    mx = data.draw(st.integers(1, nx))
    x = _images(2, ny, nx, seed=ny * 100 + nx)
    ref = fourier.fourier_crop_numpy(x, (my, mx))
    np.testing.assert_allclose(fourier.fourier_crop_numba(x, (my, mx)), ref,
                               rtol=0, atol=2e-5 * np.abs(ref).max())


@pytest.mark.parametrize("impl", IMPLS, ids=lambda f: f.__name__)
def test_band_limited_image_is_resampled_exactly(impl):
    # A cosine below the new Nyquist frequency is the same function on the coarser grid.
    n, m = 64, 32
    y, x = np.mgrid[0:n, 0:n]
    img = 3 + np.cos(2 * np.pi * (3 * x + 5 * y) / n)
    yy, xx = np.mgrid[0:m, 0:m] * (n / m)
    expect = 3 + np.cos(2 * np.pi * (3 * xx + 5 * yy) / n)
    got = impl(img.astype(np.float32), m)[0]
    np.testing.assert_allclose(got, expect, atol=1e-5)


@pytest.mark.parametrize("impl", IMPLS, ids=lambda f: f.__name__)
def test_mean_is_preserved_and_same_box_is_identity(impl):
    x = _images(4, 48, 48)
    np.testing.assert_allclose(impl(x, 24).mean(axis=(1, 2)), x.mean(axis=(1, 2)), rtol=1e-5)
    np.testing.assert_allclose(impl(x, 48), x, atol=1e-5)


def test_bad_box_is_rejected():
    with pytest.raises(ValueError, match="between 1 and the current box"):
        fourier.fourier_crop(np.zeros((1, 8, 8), np.float32), 9)
    with pytest.raises(ValueError):
        fourier.fourier_crop(np.zeros((8,), np.float32), 4)
