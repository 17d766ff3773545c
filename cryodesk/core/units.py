"""Human-readable quantities, shared by the CLI and the GUI."""

from __future__ import annotations


def human_bytes(n: int | float) -> str:
    """``1536`` → ``'1.5 KiB'``; binary units, as ``du -h`` prints them."""
    n = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"


def decimal_bytes(n: int | float) -> str:
    """``263296000000`` → ``'263.3 GB'``; decimal (SI) units, as the SSD caching guide and disk vendors print them."""
    n = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(n) < 1000 or unit == "PB":
            return f"{int(n)} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} PB"
