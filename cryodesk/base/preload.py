"""Compiled kernels loaded in a background thread, as a head start.

numba's first load of a kernel (from its cache) costs ~0.5-2 s of CPU in every
process.  A job that knows which kernels it will call starts loading them while
it does I/O that releases the GIL (reading a file, headers), instead of after.
A loader that fails is ignored: the caller loads the kernel again where it needs
it, and reports what is wrong there.
"""

from __future__ import annotations

import threading
from typing import Callable

__all__ = ["preload"]


def preload(name: str, *loaders: Callable[[], object]) -> threading.Thread:
    """Run ``loaders`` one after the other in a started daemon thread ``name``; join it before exiting."""
    def run() -> None:
        for load in loaders:
            try:
                load()
            except Exception:  # noqa: BLE001 - only a head start (see the module doc)
                pass

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread
