"""ParticleTransform: checks, crop and float16 composed as the restack uses them."""

from __future__ import annotations

import numpy as np
import pytest

from cryodesk.kernels import f16c, fourier
from cryodesk.kernels.batch import ParticleTransform
from cryodesk.kernels.checks import ALL_ZERO, NONFINITE


def _src():
    x = np.random.default_rng(1).standard_normal((5, 32, 32)).astype(np.float32)
    x[2] = 0
    x[4, 1, 1] = np.nan
    return x


def test_identity_returns_the_source_itself_and_records_flags():
    x = _src()
    t = ParticleTransform(10, (32, 32), np.float32)
    assert t.identity and t.out_dtype == np.float32
    assert t(x, np.empty_like(x), 3) is x
    assert not t.flags.any()  # checks run in inspect(), on the gather's reading thread
    t.inspect(x[:2], 3)
    t.inspect(x[2:], 5)
    assert t.flags.tolist() == [0] * 5 + [ALL_ZERO, 0, NONFINITE, 0, 0]
    assert t.summary() == {"nonfinite": 1, "all_zero": 1}
    assert t.flagged(ALL_ZERO).tolist() == [5]


def test_float16_output():
    x = _src()
    t = ParticleTransform(5, (32, 32), np.float32, float16=True)
    dst = np.empty((5, 32, 32), np.float16)
    out = t(x, dst, 0)
    assert out is dst
    np.testing.assert_array_equal(out.view(np.uint16)[:4], x[:4].astype(np.float16).view(np.uint16))


def test_crop_then_float16():
    x = _src()[:2]
    t = ParticleTransform(2, (32, 32), np.float32, new_shape=16, float16=True)
    assert t.out_shape == (16, 16) and t.out_dtype == np.float16
    out = t(x, np.empty((2, 16, 16), np.float16), 0)
    ref = fourier.fourier_crop_numpy(x, 16).astype(np.float16)
    np.testing.assert_allclose(out.astype(np.float32), ref.astype(np.float32), atol=2e-3)


def test_crop_of_int16_source_gives_float32():
    x = (np.random.default_rng(2).integers(-100, 100, (2, 16, 16))).astype(np.int16)
    t = ParticleTransform(2, (16, 16), np.int16, new_shape=8, check=False)
    assert t.out_dtype == np.float32
    out = t(x, np.empty((2, 8, 8), np.float32), 0)
    np.testing.assert_allclose(out, fourier.fourier_crop_numpy(x, 8), atol=1e-4)
    assert not t.flags.any()


def test_big_endian_source_is_byteswapped_not_reinterpreted():
    x = _src()[:2].astype(">f4")
    t = ParticleTransform(2, (32, 32), x.dtype)
    assert not t.identity and t.out_dtype == np.dtype("=f4")
    out = t(x, np.empty((2, 32, 32), np.float32), 0)
    np.testing.assert_array_equal(out, x.astype(np.float32))


def test_one_image_reads_give_the_flags_of_whole_batches():
    x = _src()
    x[0, 0, 0] = -np.inf
    x[3] = -0.0
    one = ParticleTransform(5, (32, 32), np.float32)
    for k in range(5):
        one.inspect(x[k:k + 1], k)  # the fast path of a one-image read
    many = ParticleTransform(5, (32, 32), np.float32)
    many.inspect(x, 0)
    assert one.flags.tolist() == many.flags.tolist() == [NONFINITE, 0, ALL_ZERO, ALL_ZERO, NONFINITE]


def test_float16_range_check_uses_what_inspect_saw(monkeypatch):
    """Items inspect() saw finite and inside ±65520 skip the second look; any other item gets it."""
    import pytest

    from cryodesk.kernels import batch
    from cryodesk.kernels.batch import Float16Overflow

    x = _src()[:2]
    looks = []
    real = batch.float16_overflow
    monkeypatch.setattr(batch, "float16_overflow", lambda a: looks.append(len(a)) or real(a))
    for single in (True, False):
        t = ParticleTransform(4, (32, 32), np.float32, float16=True, float16_kernel="numpy")
        if single:
            t.inspect(x[:1], 0), t.inspect(x[1:], 1)
        else:
            t.inspect(x, 0)
        out = t(x, np.empty((2, 32, 32), np.float16), 0)
        assert out.tobytes() == x.astype(np.float16).tobytes() and looks == []
        big = x.copy()
        big[1, 5, 5] = 65520.0  # rounds to inf in float16
        t.inspect(big[1:], 3) if single else t.inspect(big, 2)
        with pytest.raises(Float16Overflow) as err:
            t(big, np.empty((2, 32, 32), np.float16), 2)
        assert err.value.item == 3 and looks == [2]
        looks.clear()
        with pytest.raises(Float16Overflow):  # never inspected: looked at as before
            ParticleTransform(2, (32, 32), np.float32, float16=True,
                              float16_kernel="numpy")(big, np.empty((2, 32, 32), np.float16), 0)
        looks.clear()


@pytest.mark.skipif(not f16c.AVAILABLE, reason="no F16C in this CPU or build")
@pytest.mark.parametrize("clip", [False, True])
@pytest.mark.parametrize("inspected", [False, True])
def test_f16c_checks_the_range_on_the_converted_pixels(monkeypatch, clip, inspected):
    """With F16C, items the sum of squares cannot prove inside the range are converted first and the
    float16 pixels looked at (an overflow is a ±inf there); the exact look of the input only when the
    output has ±inf or NaN.  Bytes, errors and clip counts are those of the numpy kernel's path."""
    from cryodesk.kernels import batch
    from cryodesk.kernels.batch import Float16Overflow

    rng = np.random.default_rng(5)
    x = (rng.standard_normal((6, 32, 32)) * 3000 + 20000).astype(np.float32)  # sums too big to prove the range
    x[1, 2, 3] = np.nan  # the source's own NaN and infinities: no overflow
    x[2, 0, 0], x[2, 0, 1] = np.inf, -np.inf
    x[4] = 0.0
    looks = []
    real = batch.float16_overflow
    monkeypatch.setattr(batch, "float16_overflow", lambda a: looks.append(len(a)) or real(a))

    def both(a, first=0):
        got = {}
        for kernel in ("f16c", "numpy"):
            t = ParticleTransform(first + len(a), (32, 32), np.float32, float16=True, clip_f16=clip, float16_kernel=kernel)
            if inspected:
                t.inspect(a, first)
            try:
                got[kernel] = (t(a, np.empty(a.shape, np.float16), first).tobytes(), t.clipped, t.flags.tolist())
            except Float16Overflow as exc:
                got[kernel] = (exc.item, exc.value)
        assert got["f16c"] == got["numpy"]
        return got["f16c"]

    looks.clear()
    clean = x[[0, 3, 5]]
    assert both(clean)[0] == clean.astype(np.float16).tobytes()
    # F16C found no ±inf in its output: no look at the input; numpy's path looks before converting
    # (in inspect(), with min/max, when it ran)
    assert looks == ([] if inspected else [3])
    looks.clear()
    both(x, 7)  # NaN and ±inf of the source: the exact look finds no overflow
    assert looks.count(6) == 2
    big = x.copy()
    big[3, 9, 9] = -70000.0
    res = both(big, 7)
    assert res == (10, -70000.0) if not clip else res[1] == 1


def test_float16_kernel_follows_the_input_size_and_all_give_the_same_bits(monkeypatch):
    from cryodesk.kernels import f16c
    from cryodesk.kernels.batch import F16_NUMBA_MIN_BYTES, float16_kernel_for

    if f16c.AVAILABLE:  # F16C whatever the size: no numba, ~18x numpy's speed
        assert float16_kernel_for(1) == float16_kernel_for(F16_NUMBA_MIN_BYTES * 8) == "f16c"
        assert ParticleTransform(10, (32, 32), np.float32, float16=True, new_shape=16).float16_kernel == "f16c"
    monkeypatch.setattr(f16c, "AVAILABLE", False)  # a build without the extension, or a CPU without F16C
    assert float16_kernel_for(F16_NUMBA_MIN_BYTES - 1) == "numpy" and float16_kernel_for(F16_NUMBA_MIN_BYTES) == "numba"
    assert ParticleTransform(10, (32, 32), np.float32, float16=True).float16_kernel == "numpy"
    assert ParticleTransform(1 << 20, (32, 32), np.float32, float16=True).float16_kernel == "numba"
    assert ParticleTransform(10, (32, 32), np.float32, float16=True, new_shape=16).float16_kernel == "numba"
    monkeypatch.undo()
    x = _src()
    x[0, :3, :3] = [[1e-8, -3e-6, 6.1e-5], [65519.0, -65504.0, 2.0 ** -24], [np.inf, -np.inf, -0.0]]
    got = {}
    for kernel in ("numpy", "numba") + (("f16c",) if f16c.AVAILABLE else ()):
        t = ParticleTransform(5, (32, 32), np.float32, float16=True, float16_kernel=kernel)
        got[kernel] = t(x, np.empty((5, 32, 32), np.float16), 0).tobytes()
    with np.errstate(over="ignore"):
        assert set(got.values()) == {x.astype(np.float16).tobytes()}, sorted(got)
    ints = (np.arange(5 * 32 * 32) % 60000).astype(np.uint16).reshape(5, 32, 32)
    t = ParticleTransform(5, (32, 32), np.uint16, float16=True, float16_kernel="numpy")
    assert t(ints, np.empty((5, 32, 32), np.float16), 0).tobytes() == ints.astype(np.float32).astype(np.float16).tobytes()


def test_a_big_batch_is_cast_by_two_threads_to_the_same_bits(monkeypatch):
    """A batch of CAST_SPLIT_MIN_PIXELS or more is cast in two halves on two threads: the same bits
    as one cast, NaNs, infinities and subnormals included, for an odd number of pixels too."""
    import threading

    from cryodesk.kernels import batch

    rng = np.random.default_rng(7)
    n = batch.CAST_SPLIT_MIN_PIXELS // (31 * 33) + 1  # odd image size, more than the threshold
    x = (rng.standard_normal((n, 31, 33)) * 10.0 ** rng.integers(-9, 4, (n, 31, 33))).astype(np.float32)
    x[0, 0, :4] = [np.nan, np.inf, -np.inf, -0.0]
    x[-1, -1, -3:] = [np.nan, 1e-8, 65519.0]
    threads = []
    real = batch._cast_into
    monkeypatch.setattr(batch, "_cast_into",
                        lambda a, o: (threads.append(threading.current_thread().name), real(a, o)))
    t = ParticleTransform(n, (31, 33), np.float32, float16=True, float16_kernel="numpy", check=False)
    got = t(x, np.empty(x.shape, np.float16), 0)
    with np.errstate(over="ignore"):
        want = x.astype(np.float16)
    nan = np.isnan(want)
    assert np.array_equal(got.view(np.uint16)[~nan], want.view(np.uint16)[~nan])
    assert np.isnan(got[nan]).all() and nan.sum() == 2
    assert len(threads) == 2 and any(name.startswith("cryodesk-f16cast") for name in threads)
