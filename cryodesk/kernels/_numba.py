"""Optional numba: one switch for every kernel module (see :mod:`cryodesk.base.jit`).

Each kernel module defines a numpy reference (always available) and, when
numba imports, a compiled twin; the public name is bound to one of them at
import.  Setting ``disable_numba`` (``CRYODESK_DISABLE_NUMBA=1``) forces the
numpy versions (useful to compare behaviour, or when the numba cache
directory is not writable).
"""

from __future__ import annotations

# the switch itself lives in base (io uses it too); kernels keep importing it from here
from ..base.jit import _DISABLED, HAVE_NUMBA, _numba, jit  # noqa: F401


def have_rocket_fft() -> bool:
    """Whether ``numpy.fft`` is usable inside numba kernels (the rocket-fft package)."""
    if _numba is None:
        return False
    try:
        import rocket_fft  # noqa: F401  (importing registers the numba overloads)
    except ImportError:
        return False
    return True
