"""A benchmark's scratch directory: made below ``--dir`` (or the system's temp dir), removed afterwards."""

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
