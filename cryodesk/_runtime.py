"""Process-wide setup that must happen before numba (or Qt) is imported.

:func:`configure` is the first thing ``cryodesk`` runs (``cli.main.main`` and
the frozen entry point of the installed app both call it).  It is cheap,
idempotent, and imports neither numba nor Qt.

Why a numba cache directory of our own: the kernels are compiled with
``cache=True``.  Without ``NUMBA_CACHE_DIR`` numba writes its cache next to
the source (``__pycache__``) when that is writable, else in ``~/.cache/numba``.
In the installed app the source lives in root-owned ``/opt/cryodesk``, and in a
frozen app numba stamps every cache entry with the *bootloader* executable,
which is byte-identical across builds made with one PyInstaller version — so a
rebuilt kernel could silently load a stale machine-code entry.  A directory per
user, per version (and, in the frozen app, per hash of the shipped kernel
sources) makes every kernel compile once and be reused from any working
directory, and never mixes builds.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from . import __version__

#: File written into the frozen bundle by packaging/cryodesk.spec: one line,
#: a short hash of the kernel sources shipped as ``.py``.
BUILD_ID_FILE = "cryodesk-build-id.txt"

_configured: dict[str, str] = {}
_OPENBLAS_MARK = "CRYODESK_OPENBLAS_DEFAULT"  # beside it while it is set: "cryodesk's value, not the user's"


def is_frozen() -> bool:
    """Whether we run from the PyInstaller bundle (the installed app)."""
    return bool(getattr(sys, "frozen", False))


def bundle_dir() -> Path | None:
    """The bundle's data directory (``_internal``) in the frozen app, else ``None``."""
    base = getattr(sys, "_MEIPASS", None)
    return Path(base) if base else None


def build_id() -> str:
    """The kernel-source hash recorded at build time ("" when not frozen or unknown)."""
    base = bundle_dir()
    if base is None:
        return ""
    try:
        return (base / BUILD_ID_FILE).read_text().strip()
    except OSError:
        return ""


def _user_cache_root() -> Path:
    # XDG by hand rather than platformdirs: configure() must stay import-light.
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    return Path(xdg) if xdg and os.path.isabs(xdg) else Path.home() / ".cache"


def _writable_dir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        tempfile.TemporaryFile(dir=path).close()
    except OSError:
        return False
    return True


def numba_cache_dir() -> Path:
    """Where compiled kernels are cached: ``~/.cache/cryodesk/<version>/numba[/<build id>]``.

    Falls back to a per-user directory under the system temp dir when the home
    cache is not writable (a read-only or missing home on a shared machine):
    numba refuses to even *define* a ``cache=True`` kernel without a writable
    cache directory.
    """
    parts = ["cryodesk", __version__, "numba"] + ([build_id()] if build_id() else [])
    preferred = _user_cache_root().joinpath(*parts)
    if _writable_dir(preferred):
        return preferred
    fallback = Path(tempfile.gettempdir(), f"cryodesk-{os.getuid()}", *parts[1:])
    _writable_dir(fallback)
    return fallback


def configure() -> dict[str, str]:
    """Set the process environment cryodesk needs; call before numba or Qt loads.

    * ``NUMBA_CACHE_DIR`` — see the module docstring; a value the user set is kept.
    * ``OPENBLAS_NUM_THREADS=1`` (a value the user set is kept; only while
      numpy is not imported yet, as OpenBLAS reads it when it loads; marked
      as ours by ``CRYODESK_OPENBLAS_DEFAULT``, so that the programs cryodesk
      starts that are not cryodesk get their own default: :func:`foreign_env`).
      numpy's OpenBLAS otherwise starts a thread per core at import, and
      each spins on its core for about 0.1 s of CPU before it sleeps, in
      every cryodesk process, right when a job starts its own threads (two
      gather workers on a 2-core machine); cryodesk's own BLAS calls are
      3 × 3 rotations and small fits, and its parallel work has threads of
      its own.

    Returns
    -------
    dict
        The environment variables this call set or kept (name -> value), for
        ``cryodesk self-test`` to report.
    """
    if _configured:
        return dict(_configured)
    # Kernels already defined keep the cache directory they were defined with
    # (numba picks the locator at decoration time), hence "call first".
    cache = os.environ.get("NUMBA_CACHE_DIR") or str(numba_cache_dir())
    os.environ["NUMBA_CACHE_DIR"] = cache
    _configured["NUMBA_CACHE_DIR"] = cache
    value = os.environ.get("OPENBLAS_NUM_THREADS")
    # ours, passed on by a cryodesk process (marked as ours): not the user's
    inherited = value is not None and os.environ.get(_OPENBLAS_MARK) == value
    if value is not None and not inherited:
        _configured["OPENBLAS_NUM_THREADS"] = value  # the user's
    elif "numpy" not in sys.modules or inherited:
        _configured["OPENBLAS_NUM_THREADS"] = os.environ["OPENBLAS_NUM_THREADS"] = os.environ[_OPENBLAS_MARK] = "1"
    return dict(_configured)


def foreign_env(environ=None) -> dict[str, str]:
    """The environment for a program cryodesk starts that is not cryodesk (an ``external`` job's command,
    the lane's ``sbatch``/``squeue``): ``environ`` (default ``os.environ``) without the
    ``OPENBLAS_NUM_THREADS=1`` that :func:`configure` set for cryodesk itself, so that the program's own
    BLAS keeps its own default; a value the user set is kept.
    """
    env = dict(os.environ if environ is None else environ)
    mark = env.pop(_OPENBLAS_MARK, None)
    if mark is not None and env.get("OPENBLAS_NUM_THREADS") == mark:
        del env["OPENBLAS_NUM_THREADS"]
    return env
