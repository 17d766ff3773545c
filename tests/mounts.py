"""A small tmpfs for tests where "disk full" must be real (mounting needs root; else the test skips)."""

from __future__ import annotations

import errno
import subprocess
import uuid
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def small_tmpfs(parent: Path, size: str):
    """Mount a tmpfs of ``size`` (``"1m"``, ``"64m"``) below ``parent``; yields its directory."""
    d = Path(parent) / f"tmpfs_{uuid.uuid4().hex[:6]}"
    d.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(d)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or 'not permitted'})")
    try:
        yield d
    finally:
        subprocess.run(["umount", "-l", str(d)], capture_output=True)


def fill(directory: Path) -> None:
    """Fill the file system of ``directory`` to the last byte (big writes, then byte by byte)."""
    for name, chunk in (("filler.bin", 65536), ("filler2.bin", 1)):
        try:
            with open(Path(directory) / name, "wb") as fh:
                while True:
                    fh.write(b"f" * chunk)
                    fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
