"""float32 -> float16 with F16C (the C extension cryodesk.kernels._f16c) against numpy's IEEE rounding."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from cryodesk.kernels import f16c

from .test_float16 import _boundary_values

needs_f16c = pytest.mark.skipif(not f16c.AVAILABLE, reason="no F16C conversion in this build or CPU")


def _cpu_has_f16c() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return " f16c" in flags and " avx" in flags


def test_the_extension_is_built_where_it_can_be():
    """With a C compiler on an x86 CPU that has F16C (as here and in CI), the install must have built it:
    otherwise every float16 restack silently falls back to numba (~120 MB more) or numpy (~18x slower)."""
    cc = (sysconfig.get_config_var("CC") or "cc").split()[0]
    headers = Path(sysconfig.get_paths()["include"]) / "Python.h"
    if platform.machine() not in ("x86_64", "AMD64") or not _cpu_has_f16c() or shutil.which(cc) is None \
            or not headers.is_file():
        pytest.skip("no x86 CPU with F16C, no C compiler or no Python headers here")
    assert f16c._f16c is not None, "cryodesk.kernels._f16c was not built (pip install -e . with a C compiler)"
    assert f16c._f16c.available == 1 and f16c.AVAILABLE


def _same_as_numpy(x: np.ndarray, got: np.ndarray) -> None:
    with np.errstate(over="ignore"):
        want = x.astype(np.float16)
    nan = np.isnan(x)
    np.testing.assert_array_equal(got.view(np.uint16)[~nan], want.view(np.uint16)[~nan])
    a = x[nan].view(np.uint32)  # NaN: quiet, top 10 payload bits, sign kept (the numba kernel's bits)
    np.testing.assert_array_equal(got[nan].view(np.uint16),
                                  (((a >> 16) & 0x8000) | 0x7E00 | ((a >> 13) & 0x3FF)).astype(np.uint16))


@needs_f16c
def test_f16c_matches_numpy_at_every_rounding_boundary():
    x = _boundary_values()
    _same_as_numpy(x, f16c.to_float16_f16c(x))


@needs_f16c
def test_f16c_matches_numpy_on_a_sweep_of_bit_patterns_nans_included():
    x = np.arange(0, 2**32, 4099, dtype=np.uint64).astype(np.uint32).view(np.float32)
    assert np.isnan(x).sum() > 1000 and (np.abs(x) < 2.0**-14).sum() > 1000  # NaNs and subnormal results
    _same_as_numpy(x, f16c.to_float16_f16c(x))


@needs_f16c
@settings(max_examples=200, deadline=None)
@given(hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=19),
                  elements=st.floats(width=32, allow_nan=True, allow_infinity=True)))
def test_f16c_matches_numpy_property(x):
    _same_as_numpy(x, f16c.to_float16_f16c(x))


@needs_f16c
def test_every_length_and_a_non_contiguous_input():
    rng = np.random.default_rng(3)
    for n in range(0, 40):  # the 16-wide loop and the one-by-one tail
        x = (rng.standard_normal(n) * 1000).astype(np.float32)
        _same_as_numpy(x, f16c.to_float16_f16c(x))
    x = rng.standard_normal((7, 9, 11)).astype(np.float64)[:, ::2, 1:]  # float64, strided: converted first
    out = np.empty(x.shape, np.float16)
    assert f16c.to_float16_f16c(x, out=out) is out
    _same_as_numpy(x.astype(np.float32), out)


@needs_f16c
def test_wrong_destinations_are_refused():
    x = np.ones((3, 4), np.float32)
    for out in (np.empty((3, 4), np.float32), np.empty((4, 3), np.float16), np.empty((3, 8), np.float16)[:, ::2]):
        with pytest.raises(ValueError, match="C-contiguous float16"):
            f16c.to_float16_f16c(x, out=out)
    with pytest.raises(ValueError, match="n float32 values"):
        f16c._f16c.convert(x.reshape(-1), np.empty(11, np.float16))


def test_disabled_by_the_environment_and_refused_when_unavailable():
    code = ("from cryodesk.kernels import f16c, batch; import numpy as np\n"
            "print(f16c.AVAILABLE, batch.float16_kernel_for(10))\n"
            "try:\n    f16c.to_float16_f16c(np.ones(3, np.float32))\nexcept RuntimeError as e:\n    print('refused')\n"
            "try:\n    batch.ParticleTransform(2, (4, 4), np.float32, float16=True, float16_kernel='f16c')\n"
            "except ValueError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, CRYODESK_DISABLE_F16C="1",
                                  PYTHONPATH=str(Path(__file__).resolve().parents[2])))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[:2] == ["False numpy", "refused"], out.stdout
    assert "no F16C conversion" in lines[2]


def _conversions():
    from cryodesk.kernels import float16

    out = [pytest.param(float16.to_float16_numpy, id="numpy")]
    if hasattr(float16, "to_float16_numba"):
        out.append(pytest.param(float16.to_float16_numba, id="numba"))
    out.append(pytest.param(f16c.to_float16_f16c, id="f16c", marks=needs_f16c))
    return out


@pytest.mark.parametrize("convert", _conversions())
def test_every_conversion_refuses_a_read_only_destination_the_same_way(convert):
    # (the F16C wrapper raised the C extension's TypeError where numpy raises ValueError)
    out = np.zeros(8, np.float16)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        convert(np.ones(8, np.float32), out)
    assert not out.any()


@pytest.mark.parametrize("convert", _conversions())
def test_every_conversion_is_right_when_the_destination_overlaps_the_source(convert):
    # out written front to back over the source's later half: it read values it had already overwritten
    base = np.arange(1001, dtype=np.float32) * 1.5
    ref = base.astype(np.float16)
    out = base.view(np.float16)[1001:]
    got = convert(base, out=out)
    assert got is out
    np.testing.assert_array_equal(out, ref)


@pytest.mark.parametrize("convert", _conversions())
def test_every_conversion_keeps_a_0d_input_0d(convert):
    got = convert(np.float32(3.5))
    assert got.shape == () and got == np.float16(3.5)
