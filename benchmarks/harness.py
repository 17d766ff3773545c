"""What the benchmarks share: a scratch directory (:func:`run_in_workdir`) and the meter (:data:`METER`)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Callable


def run_in_workdir(directory: Path | None, body: Callable[[Path], int]) -> int:
    """``body(root)`` with a fresh ``root`` below ``directory``; the tree is removed whatever happens."""
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="cryodesk-bench-", dir=directory))
    try:
        return body(root)
    finally:
        shutil.rmtree(root, ignore_errors=True)


#: ``python -c METER cmd...``: runs ``cmd`` and prints its wall time, peak RSS (RUSAGE_CHILDREN: the meter
#: has exactly one child, the measured command), exit code and output tails as one JSON line
METER = r"""
import json, resource, subprocess, sys, time
t0 = time.perf_counter()
rc = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
wall = time.perf_counter() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"wall": wall, "maxrss_kb": ru.ru_maxrss, "rc": rc.returncode,
                  "stdout": rc.stdout.decode(errors="replace")[-4000:],
                  "stderr": rc.stderr.decode(errors="replace")[-4000:]}))
"""
