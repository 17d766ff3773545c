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
