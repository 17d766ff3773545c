"""The benchmarks' cold mode: evict only the benchmark's own files from the page cache.

``fsync`` first (``POSIX_FADV_DONTNEED`` skips dirty pages), then drop the
file's pages; never the whole system's caches.  Links are not followed and
files that vanished or cannot be opened are skipped.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

__all__ = ["evict", "evict_tree"]


def evict(paths: Iterable[Path | str]) -> None:
    """Write back and drop the pages of these files."""
    for p in paths:
        try:
            fd = os.open(p, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def evict_tree(root: Path | str) -> None:
    """:func:`evict` every regular file below ``root``."""
    evict(os.path.join(d, f) for d, _, files in os.walk(root) for f in files)
