"""Job types: one module per family; each registers its types on import.

Every module in this package is imported when the registry is first
consulted, so adding a job type means adding a module here, nothing else.
"""

import pkgutil
from importlib import import_module

for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        import_module(f"{__name__}.{_info.name}")
