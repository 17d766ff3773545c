"""Per-particle checks: numba and numpy agree; the flags mean what they say."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cryodesk.kernels import checks, minmax
from cryodesk.kernels.checks import ALL_ZERO, NONFINITE

numba_only = pytest.mark.skipif(not hasattr(checks, "particle_flags_numba"), reason="numba not installed")
IMPLS = [checks.particle_flags_numpy, minmax.particle_flags_minmax] + (
    [checks.particle_flags_numba] if hasattr(checks, "particle_flags_numba") else [])


def _batch(dtype=np.float32) -> np.ndarray:
    x = np.random.default_rng(0).standard_normal((8, 6, 5)).astype(dtype)
    x[1, 2, 3] = np.nan
    x[2, 0, 0] = -np.inf
    x[3] = 0
    x[4] = -0.0
    x[5] = 0
    x[5, 5, 4] = np.inf  # all zero but one inf: both flags
    x[6] = 0
    x[6, 3, 3] = np.finfo(dtype).smallest_subnormal  # tiny but not zero
    return x


EXPECTED = [0, NONFINITE, NONFINITE, ALL_ZERO, ALL_ZERO, NONFINITE, 0, 0]


@pytest.mark.parametrize("impl", IMPLS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_flags(impl, dtype):
    assert impl(_batch(dtype)).tolist() == EXPECTED


@pytest.mark.parametrize("impl", IMPLS, ids=lambda f: f.__name__)
def test_integer_images_only_have_the_zero_check(impl):
    x = np.ones((3, 4, 4), dtype=np.int16)
    x[1] = 0
    assert impl(x).tolist() == [0, ALL_ZERO, 0]


def test_single_image_is_a_batch_of_one():
    assert checks.particle_flags(np.zeros((4, 4), np.float32)).tolist() == [ALL_ZERO]


@numba_only
@settings(max_examples=150, deadline=None)
@given(st.sampled_from([np.float32, np.float16]).flatmap(
    lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=3, max_dims=3, max_side=6),
                          elements=st.sampled_from([0.0, -0.0, 1.0, -2.5, np.nan, np.inf, -np.inf, 1e-40]))))
def test_numba_matches_numpy_property(x):
    np.testing.assert_array_equal(checks.particle_flags_numba(x), checks.particle_flags_numpy(x))


@numba_only
def test_big_endian_input_falls_back_to_numpy():
    x = _batch().astype(">f4")
    assert checks.particle_flags_numba(x).tolist() == EXPECTED


@settings(max_examples=150, deadline=None)
@given(st.sampled_from([np.float32, np.float16]).flatmap(
    lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=3, max_dims=3, max_side=6),
                          elements=st.sampled_from([0.0, -0.0, 1.0, -2.5, np.nan, np.inf, -np.inf, 1e-40]))))
def test_minmax_flags_match_numpy_property(x):
    """The restack's checks (two reductions, no numba) are the reference's flags."""
    np.testing.assert_array_equal(minmax.particle_flags_minmax(x), checks.particle_flags_numpy(x))
