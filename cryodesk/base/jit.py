"""Optional numba: the one switch for every compiled kernel (``cryodesk.kernels``, ``cryodesk.io``).

Each kernel module defines a numpy reference (always available) and, when
numba imports, a compiled twin; the public name is bound to one of them at
import.  Setting ``disable_numba`` (``CRYODESK_DISABLE_NUMBA=1``) forces the
numpy versions (useful to compare behaviour, or when the numba cache
directory is not writable).  It lives in ``base`` so that both ``kernels``
and ``io`` (STAR number formatting and parsing) use the same switch.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from . import settings
from .errors import UsageError


def _disabled() -> bool:
    try:
        return bool(settings.resolve("disable_numba"))
    except UsageError as exc:
        # read at import: a typo in the variable must not make every kernel module unimportable
        logging.getLogger(__name__).warning("%s; numba stays enabled", exc)
        return False


_DISABLED = _disabled()

try:
    if _DISABLED:
        raise ImportError("disabled by CRYODESK_DISABLE_NUMBA")
    import numba as _numba
except ImportError:  # pragma: no cover - depends on the environment
    _numba = None


def _no_automatic_extensions() -> None:
    """Keep numba from importing every installed extension at its first compile or cache load.

    numba runs the ``numba_extensions`` entry points then; rocket-fft's imports SciPy's FFT when
    SciPy is installed (0.4-1 s, ~25 MB) in every process that runs any kernel, a STAR file's
    numbers included.  The one kernel that needs rocket-fft (:mod:`cryodesk.kernels.fourier`)
    imports it itself, which is all that registering its overloads takes.  numba's flag is
    private: if a numba release drops it, nothing changes but the time.
    """
    try:
        from numba.core import entrypoints
    except ImportError:  # pragma: no cover - depends on the numba version
        return
    if hasattr(entrypoints, "_already_initialized"):
        entrypoints._already_initialized = True


if _numba is not None:
    _no_automatic_extensions()

#: True when compiled kernels are available.
HAVE_NUMBA: bool = _numba is not None


def jit(func: Callable[..., Any]) -> Callable[..., Any]:
    """Compile ``func`` for use from worker threads.

    ``nogil`` lets the GUI thread and the I/O thread run while a kernel works;
    ``cache`` avoids recompiling on every start of the application.
    """
    if _numba is None:  # pragma: no cover - callers only use jit() when HAVE_NUMBA
        raise RuntimeError("numba is not available")
    return _numba.njit(nogil=True, cache=True)(func)
