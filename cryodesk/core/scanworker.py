"""A size-scan worker *process* (``cryodesk _scan-worker``, or ``python -m cryodesk.core.scanworker``).

The scan is Python work per directory entry, so threads serialise on the
GIL; processes scale.  They are started fresh (never forked: the app runs
Qt and database threads, and a frozen bundle cannot fork-and-import), get a
JSON list of directories on stdin and print one JSON list of results.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict


def main() -> int:
    from .sizes import _walk

    paths = json.load(sys.stdin)
    json.dump([asdict(_walk(p)) for p in paths], sys.stdout)
    return 0


def command() -> list[str]:
    """How to start a worker: the bundle's own executable, or this interpreter."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "_scan-worker"]
    return [sys.executable, "-m", "cryodesk.core.scanworker"]


if __name__ == "__main__":
    sys.exit(main())
