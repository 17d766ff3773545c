"""float32 -> float16: the numba kernel must equal numpy's IEEE rounding bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cryodesk.kernels import float16 as f16

numba_only = pytest.mark.skipif(not hasattr(f16, "to_float16_numba"), reason="numba not installed")


def _boundary_values() -> np.ndarray:
    """Every finite float16 value, its float32 neighbours, and the rounding midpoints around it."""
    h = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16)
    bits = h[np.isfinite(h)].astype(np.float32).view(np.uint32).astype(np.int64)
    mid = (bits + np.roll(bits, 1)) // 2
    cand = np.concatenate([bits + d for d in range(-2, 3)] + [mid + d for d in (-1, 0, 1)]
                          + [np.array([0x477FF000, 0x477FEFFF, 0x47800000, 0x33000000, 0x33000001,
                                       0x7F800000, 0x7F7FFFFF, 0x38800000, 0x387FFFFF])])
    cand = cand[(cand >= 0) & (cand < 2**31)]
    signed = np.concatenate([cand, cand | 0x80000000])
    return signed.astype(np.uint32).view(np.float32)


def _same_bits(a: np.ndarray, b: np.ndarray) -> None:
    nan = np.isnan(a)
    assert np.array_equal(nan, np.isnan(b))
    np.testing.assert_array_equal(a.view(np.uint16)[~nan], b.view(np.uint16)[~nan])


def test_numpy_reference_is_round_to_nearest_even():
    x = np.array([65504.0, 65519.99, 65520.0, 1e6, 2.0**-25, 2.0**-24, 1 + 2.0**-11], dtype=np.float32)
    y = f16.to_float16_numpy(x)
    assert y.tolist() == [65504.0, 65504.0, np.inf, np.inf, 0.0, 2.0**-24, 1.0]


@numba_only
def test_numba_matches_numpy_at_every_rounding_boundary():
    x = _boundary_values()
    _same_bits(f16.to_float16_numpy(x), f16.to_float16_numba(x))


@numba_only
def test_numba_matches_numpy_on_a_sweep_of_bit_patterns():
    x = np.arange(0, 2**32, 4099, dtype=np.uint64).astype(np.uint32).view(np.float32)
    _same_bits(f16.to_float16_numpy(x), f16.to_float16_numba(x))


@numba_only
@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=9),
                  elements=st.floats(width=32, allow_nan=True, allow_infinity=True)))
def test_numba_matches_numpy_property(x):
    _same_bits(f16.to_float16_numpy(x), f16.to_float16_numba(x))


def test_public_name_writes_into_out_and_keeps_shape():
    x = np.linspace(-3, 3, 2 * 5 * 7, dtype=np.float32).reshape(2, 5, 7)
    out = np.empty(x.shape, dtype=np.float16)
    res = f16.to_float16(x, out=out)
    assert res is out and res.shape == (2, 5, 7)
    np.testing.assert_array_equal(res, x.astype(np.float16))


def test_non_float32_input_is_converted_first():
    x = np.arange(-5, 5, dtype=np.int16).reshape(2, 5)
    np.testing.assert_array_equal(f16.to_float16(x), x.astype(np.float16))


def test_bad_out_is_rejected():
    with pytest.raises(ValueError):
        f16.to_float16(np.zeros((2, 3), np.float32), out=np.empty((3, 2), np.float16))
    with pytest.raises(ValueError):
        f16.to_float16(np.zeros((2, 3), np.float32), out=np.empty((2, 3), np.float32))
