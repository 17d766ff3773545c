"""Job types: one module per family; each registers its types on import.

:data:`MODULES` says which module declares which type, so a process loads
only the types it uses: importing this package installs a loader in
:mod:`cryodesk.core.registry`, which imports a type's module the first time
the type is asked for (``registry.get``) and every module when all types are
listed (``registry.all_types``, :func:`load_all`).  ``cryodesk job run`` of
an ``external`` job so never imports numpy or the cache.  A module missing
from :data:`MODULES` still loads (an unknown name loads every module), and
``tests/jobs/test_type_index.py`` fails until it is added.
"""

from __future__ import annotations

import pkgutil
from importlib import import_module
from typing import Iterable

from ..base.errors import CryodeskError
from ..core import registry

#: job type name -> the module of this package that registers it (checked by tests/jobs/test_type_index.py)
MODULES = {
    "cache_particles": "cache_particles",
    "class_2d": "class2d",
    "select_2d": "class2d",
    "external": "external",
    "session_export": "live",
    "import_particles": "particles_io",
    "export_particles": "particles_io",
    "import_movies": "preprocess",
    "import_micrographs": "preprocess",
    "ctf_estimation": "preprocess_ctf",
    "extract_particles": "preprocess_extract",
    "motion_correction": "preprocess_motion",
    "blob_picker": "preprocess_pick",
    "restack_particles": "restack",
    "downsample_particles": "restack",
}

_all_loaded = False


def module_names() -> list[str]:
    """Every module of this package (the ones that may register job types)."""
    return [m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_")]


def all_loaded() -> bool:
    """Whether every job type module has been imported (:func:`load_all`)."""
    return _all_loaded


def load_all() -> None:
    """Import (and so register) every job type module."""
    global _all_loaded
    if not _all_loaded:
        for name in module_names():
            _import(name)
        _all_loaded = True


def load(names: Iterable[str]) -> None:
    """Import the modules of the job types ``names``; a name not in :data:`MODULES` loads every module."""
    for name in names:
        module = MODULES.get(name)
        if module is None:
            if name.startswith(tuple(registry.FOREIGN_PREFIXES)):
                continue  # another program's type: described by the registry itself
            load_all()
            return
        _import(module, name)


def _import(module: str, type_name: str | None = None) -> None:
    """Import this package's ``module``; a module that fails to import is a clear error, not a traceback."""
    try:
        import_module(f"{__name__}.{module}")
    except Exception as exc:  # noqa: BLE001 - a library missing or broken under a job type module
        what = f"job type {type_name!r}" if type_name else "the job types"
        raise CryodeskError(f"cannot load {what}: module {__name__}.{module} failed to import "
                            f"({type(exc).__name__}: {exc}); check the installation (cryodesk self-test)") from exc


def _loader(name: str | None) -> None:
    load_all() if name is None else load([name])


registry.set_loader(_loader)
