"""float16 overflow detection: exactly the finite values that float16 rounds to infinity."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cryodesk.kernels.minmax import F16_OVERFLOW, float16_overflow


def _overflows(x: np.ndarray) -> np.ndarray:
    """Reference: which images have a finite pixel that astype(float16) makes infinite."""
    with np.errstate(over="ignore"):
        h = x.astype(np.float16)
    return (np.isfinite(x) & np.isinf(h)).reshape(len(x), -1).any(axis=1)


def test_boundary_is_where_float16_rounds_to_infinity():
    below = np.nextafter(np.float32(F16_OVERFLOW), np.float32(0))
    x = np.zeros((4, 2, 2), np.float32)
    x[0, 0, 0] = 65504.0
    x[1, 0, 0] = below  # rounds down to 65504
    x[2, 1, 1] = -F16_OVERFLOW  # rounds to -inf
    assert _overflows(x).tolist() == [False, False, True, False]
    assert float16_overflow(x) == (2, -F16_OVERFLOW)
    assert float16_overflow(x[:2]) is None


def test_nan_and_inf_are_not_overflows_but_do_not_hide_one():
    x = np.zeros((3, 2, 2), np.float32)
    x[0, 0, 0] = np.inf
    x[1, 0, 0] = np.nan
    assert float16_overflow(x) is None
    x[2, 0, 1] = 1e6
    assert float16_overflow(x) == (2, 1e6)
    x[1, 1, 1] = -7e4  # beside the NaN, which the reductions return
    assert float16_overflow(x) == (1, -7e4)


def test_uint16_above_the_range_overflows_and_float16_sources_never_do():
    x = np.full((2, 2, 2), 100, np.uint16)
    x[1, 0, 0] = 65535
    assert float16_overflow(x) == (1, 65535.0)
    assert float16_overflow(np.full((1, 2, 2), np.inf, np.float16)) is None


@settings(max_examples=150, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=3, max_dims=3, max_side=5),
                  elements=st.sampled_from([0.0, 1.0, -3.0, 65504.0, 65519.99, 65520.0, -65520.0, 1e30,
                                            -1e30, np.nan, np.inf, -np.inf])))
def test_first_overflowing_image_property(x):
    want = np.flatnonzero(_overflows(x))
    got = float16_overflow(x)
    assert (got is None) == (want.size == 0)
    if got is not None:
        assert got[0] == want[0] and abs(got[1]) >= F16_OVERFLOW and np.isfinite(got[1])
