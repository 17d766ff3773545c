"""The one-pass check (sum of squares) gives exactly the flags of the reference, and decides the float16 range safely."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cryodesk.kernels.batch import ParticleTransform
from cryodesk.kernels.checks import particle_flags_numpy
from cryodesk.kernels.f16c import AVAILABLE as HAVE_F16C
from cryodesk.kernels.minmax import F16_OVERFLOW
from cryodesk.kernels.sumsq import f16_bound, fast_dtype, proves_clean, sum_squares

SPECIAL = [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, -1e-45, 1e20, -3e38, 65519.99, 65520.0, -65520.0, 1.0]


def _f16_safe_reference(x: np.ndarray) -> list[bool]:
    flat = x.reshape(len(x), -1).astype(np.float64)
    return [bool(np.isfinite(r).all() and (np.abs(r) < F16_OVERFLOW).all()) for r in flat]


@settings(max_examples=120, deadline=None)
@given(st.sampled_from([(1, 1), (3, 5), (17, 19), (64, 64)]), st.sampled_from([np.float32, np.float64]),
       st.integers(1, 4), st.lists(st.tuples(st.integers(0, 10**9), st.sampled_from(SPECIAL)), max_size=6),
       st.sampled_from([0.0, 1.0, 1e-30, 1e19]), st.booleans(), st.integers(0, 2**32 - 1))
def test_flags_and_float16_range_match_the_reference(shape, dtype, n, specials, scale, single, seed):
    x = (np.random.default_rng(seed).standard_normal((n, *shape)) * scale).astype(dtype)
    flat = x.reshape(-1)
    for pos, value in specials:  # anywhere: first, last, inside a SIMD block or its tail
        flat[pos % flat.size] = value
    for f16, kernel in ((False, None), (True, "numpy"), *([(True, "f16c")] if HAVE_F16C else [])):
        t = ParticleTransform(n, shape, dtype, float16=f16, float16_kernel=kernel)
        if single:
            for k in range(n):
                t.inspect(x[k:k + 1], k)
        else:
            t.inspect(x, 0)
        assert t.flags.tolist() == particle_flags_numpy(x).tolist()
        if f16:
            safe = t._f16_safe.tolist()
            ref = _f16_safe_reference(x)
            assert all(r or not s for s, r in zip(safe, ref))  # never claims a range it does not have
            if kernel == "numpy":
                assert safe == ref  # (the exact look decides whatever the sum cannot)
            # F16C: what the sum cannot prove is checked on the converted pixels (tests/kernels/test_batch.py)


@pytest.mark.filterwarnings("ignore:overflow encountered")
def test_the_sum_proves_only_what_it_can():
    one = np.ones(100, np.float32)
    assert proves_clean(sum_squares(one))
    for bad in (np.nan, np.inf, -np.inf):
        y = one.copy()
        y[-1] = bad
        assert not proves_clean(sum_squares(y))
    assert not proves_clean(sum_squares(np.zeros(100, np.float32)))
    assert not proves_clean(sum_squares(np.full(100, 1e-30, np.float32)))  # squares underflow: exact look
    assert not proves_clean(sum_squares(np.full(100, 1e20, np.float32)))  # squares overflow: exact look
    assert fast_dtype(np.float32) and not fast_dtype(">f4") and not fast_dtype(np.int16) and not fast_dtype(np.float16)
    assert 0 < f16_bound(256 * 256, np.float32) < F16_OVERFLOW ** 2 and f16_bound(1 << 24, np.float32) == 0.0


def test_an_image_just_inside_the_float16_range_is_not_passed_by_rounding():
    x = np.zeros((1, 64, 64), np.float32)
    x[0, 0, 0] = np.nextafter(np.float32(F16_OVERFLOW), np.float32(0))
    t = ParticleTransform(1, (64, 64), np.float32, float16=True, float16_kernel="numpy")
    t.inspect(x, 0)
    assert t._f16_safe.tolist() == [True]  # the exact look: below 65520
    x[0, 0, 1] = 1.0
    x[0, 0, 0] = F16_OVERFLOW
    t = ParticleTransform(1, (64, 64), np.float32, float16=True, float16_kernel="numpy")
    t.inspect(x, 0)
    assert t._f16_safe.tolist() == [False]


@pytest.mark.parametrize("dtype", [np.int16, ">f4"])
def test_other_pixel_types_take_the_exact_path(dtype):
    x = np.zeros((2, 4, 4), dtype)
    x[1, 0, 0] = 3
    t = ParticleTransform(2, (4, 4), dtype)
    assert not t._quick
    t.inspect(x, 0)
    assert t.flags.tolist() == particle_flags_numpy(x).tolist()


@pytest.mark.filterwarnings("ignore:overflow encountered")
@pytest.mark.parametrize("npix", [1, 7, 31, 32, 33, 65, 4096 + 3])
def test_batch_sums_decide_as_one_dot_per_image(npix, monkeypatch):
    """The C extension's batch sums (AVX, no BLAS threads) decide every image as a dot per image does."""
    from cryodesk.kernels import sumsq

    rng = np.random.default_rng(npix)
    x = rng.standard_normal((len(SPECIAL) + 3, npix)).astype(np.float32)
    for k, value in enumerate(SPECIAL):  # one special value per image, at a varying place (SIMD block or tail)
        x[k, (k * 5) % npix] = value
    x[len(SPECIAL)] = 0.0  # all zero
    x[len(SPECIAL) + 1] = 1e-30  # squares underflow
    got = sumsq.sum_squares_rows(x)
    want = np.array([float(r.astype(np.float64) @ r.astype(np.float64)) for r in x])
    with np.errstate(over="ignore", invalid="ignore"):
        dots = [sumsq.sum_squares(r) for r in x]
    assert [sumsq.proves_clean(s) for s in got] == [sumsq.proves_clean(s) for s in dots]
    assert [sumsq.proves_clean_all(got[k:k + 1]) for k in range(len(x))] == [sumsq.proves_clean(s) for s in dots]
    fine = np.isfinite(want) & np.isfinite(got) & (want < 1e30)
    np.testing.assert_allclose(got[fine], want[fine], rtol=4 * npix * 2.0 ** -24, atol=1e-30)
    monkeypatch.setattr(sumsq, "_f16c", None)  # the fallback (no extension): one dot per image
    plain = sumsq.sum_squares_rows(x)
    assert [sumsq.proves_clean(s) for s in plain] == [sumsq.proves_clean(s) for s in dots]


def test_batch_sums_refuse_a_wrong_size():
    from cryodesk.kernels import sumsq

    if sumsq._f16c is None:
        pytest.skip("built without the C extension")
    with pytest.raises(ValueError, match="npix"):
        sumsq._f16c.sumsq(np.zeros(10, np.float32), 3, np.zeros(3, np.float64))


def test_batch_sums_refuse_a_size_that_wraps_around():
    """4 × (2⁶² + 1) pixels wraps to 4 in 64 bits: the C check must not read past a 16-byte buffer (a crash)."""
    import subprocess
    import sys

    from cryodesk.kernels import sumsq

    if sumsq._f16c is None:
        pytest.skip("built without the C extension")
    code = ("import numpy as np; from cryodesk.kernels import _f16c\n"
            "try:\n    _f16c.sumsq(np.ones(4, np.float32), (1 << 62) + 1, np.empty(4))\n"
            "except ValueError as e:\n    print('refused', e)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("refused"), (done.returncode, done.stderr[-500:])


def test_batch_sums_odd_inputs():
    """Read-only and odd-sized images are summed; a non-contiguous or read-only destination is refused."""
    from cryodesk.kernels import sumsq

    x = np.arange(3 * 37, dtype=np.float32).reshape(3, 37) / 7
    x.flags.writeable = False  # (a memory-mapped stack)
    want = [float(r.astype(np.float64) @ r.astype(np.float64)) for r in x]
    np.testing.assert_allclose(sumsq.sum_squares_rows(x), want, rtol=1e-5)
    np.testing.assert_allclose(sumsq.sum_squares_rows(np.ascontiguousarray(x[:, ::2])),
                               [float(r.astype(np.float64) @ r.astype(np.float64)) for r in x[:, ::2]], rtol=1e-5)
    np.testing.assert_allclose(sumsq.sum_squares_rows(x[:, ::2]),  # not contiguous: the dots
                               [float(r.astype(np.float64) @ r.astype(np.float64)) for r in x[:, ::2]], rtol=1e-5)
    assert sumsq.sum_squares_rows(np.zeros((0, 5), np.float32)).shape == (0,)
    if sumsq._f16c is not None:
        out = np.empty(3)
        out.flags.writeable = False
        with pytest.raises(TypeError):
            sumsq._f16c.sumsq(x.reshape(-1), 37, out)
        with pytest.raises((ValueError, BufferError, TypeError)):
            sumsq._f16c.sumsq(np.ones((3, 74), np.float32)[:, ::2], 37, np.empty(3))


def test_an_extension_built_before_sumsq_falls_back_to_the_dots(monkeypatch):
    """A development tree whose _f16c was built from an older _f16c.c (convert only, no sumsq): the checks
    take the dot per image instead of failing every restack with an AttributeError."""
    import types

    from cryodesk.kernels import sumsq

    monkeypatch.setattr(sumsq, "_f16c", types.SimpleNamespace(available=1, convert=None))
    monkeypatch.setattr(sumsq, "_sumsq", None, raising=False)
    x = np.random.default_rng(1).standard_normal((4, 64)).astype(np.float32)
    np.testing.assert_allclose(sumsq.sum_squares_rows(x), [float(r @ r) for r in x], rtol=1e-5)
    t = ParticleTransform(4, (8, 8), np.float32)
    t.inspect(x.reshape(4, 8, 8), 0)
    assert t.flags.tolist() == [0, 0, 0, 0]
