"""Without numba (``CRYODESK_DISABLE_NUMBA=1``) every kernel falls back to numpy."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
import numpy as np
from cryodesk.kernels import _numba, checks, float16, fourier
from cryodesk.kernels.batch import ParticleTransform
assert not _numba.HAVE_NUMBA
assert {checks.IMPLEMENTATION, float16.IMPLEMENTATION, fourier.IMPLEMENTATION} == {"numpy"}
from cryodesk.io import star_numbers
assert star_numbers.implementation() == "numpy"
assert star_numbers.format_numbers(np.array([0.1, -0.0] * 2000)).tolist()[:2] == [b"0.1", b"-0.0"]
assert star_numbers.parse_floats(np.array([b"1e-05"] * 3000))[0] == 1e-05
x = np.ones((2, 8, 8), np.float32)
t = ParticleTransform(2, (8, 8), np.float32, new_shape=4, float16=True)
out = t(x, np.empty((2, 4, 4), np.float16), 0)
assert np.allclose(out, 1.0)
print("ok")
"""


def test_numpy_fallback_works_without_numba():
    env = {**os.environ, "CRYODESK_DISABLE_NUMBA": "1", "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "ok"


def test_a_kernel_does_not_load_every_numba_extension():
    """numba's automatic extension loading is off: a STAR number kernel does not import rocket-fft
    (and SciPy's FFT with it); the Fourier kernel imports rocket-fft itself and still compiles."""
    import subprocess
    import sys

    code = (
        "import sys, numpy as np\n"
        "from cryodesk.base.jit import HAVE_NUMBA\n"
        "from cryodesk.io import star_numbers as sn\n"
        "v = np.linspace(-5, 5, sn.MIN_SIZE + 7)\n"
        "assert (sn.format_numbers(v) == sn.format_numbers_numpy(v)).all() and sn._k() is not None\n"
        "assert 'rocket_fft' not in sys.modules and 'scipy.fft' not in sys.modules, 'extensions loaded'\n"
        "from cryodesk.kernels import fourier\n"
        "x = np.random.default_rng(1).standard_normal((2, 32, 32)).astype(np.float32)\n"
        "a = fourier.fourier_crop(x, (16, 16))\n"
        "b = fourier.fourier_crop_numpy(x, (16, 16))\n"
        "assert np.allclose(a, b, atol=1e-5), 'crop differs'\n"
        "assert HAVE_NUMBA and fourier.fourier_crop is fourier.fourier_crop_numba, 'numpy crop'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
