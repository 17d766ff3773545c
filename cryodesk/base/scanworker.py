"""A size-scan worker *process* (``cryodesk _scan-worker``, or ``python -m cryodesk.base.scanworker``).

The scan is Python work per directory entry, so threads serialise on the
GIL; processes scale.  They are started fresh (never forked: the app runs
Qt and database threads, and a frozen bundle cannot fork-and-import), get a
JSON object ``{"paths": [...], "apart": NAME}`` on stdin and print one JSON
list of :class:`~cryodesk.base.fsio.TreeStats`, one per path, where the
bytes of a top-level file ``NAME`` (or of an interrupted rewrite of it) are
also counted apart.
"""

from __future__ import annotations

import json
import sys
from dataclasses import asdict

from .fsio import is_temp_name, walk


def apart_predicate(name: str | None):
    """``count_apart`` for :func:`~cryodesk.base.fsio.walk`: the file ``name`` and its temp files."""
    if not name:
        return None
    return lambda entry: entry == name or is_temp_name(entry, name)


def main() -> int:
    request = json.load(sys.stdin)
    apart = apart_predicate(request.get("apart"))
    json.dump([asdict(walk(p, apart)) for p in request["paths"]], sys.stdout)
    return 0


def command() -> list[str]:
    """How to start a worker: the bundle's own executable, or this interpreter."""
    if getattr(sys, "frozen", False):
        return [sys.executable, "_scan-worker"]
    return [sys.executable, "-m", "cryodesk.base.scanworker"]


if __name__ == "__main__":
    sys.exit(main())
