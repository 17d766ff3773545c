"""Job types: one module per family; each registers its types on import.

Importing this package imports (and so registers) every module in it, so
adding a job type means adding a module here, nothing else.  The layers
that run or show jobs (engine, demo, CLI, app) import it; core, below it,
only holds the registry.
"""

import pkgutil
from importlib import import_module

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        import_module(f"{__name__}.{_info.name}")
