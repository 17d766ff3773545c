"""Emptying the trash of finished plans: in the background, or now (tests, ``cryodesk trash empty``)."""

from __future__ import annotations

from pathlib import Path

from ...base import trashworker

#: the emptier processes started by this process (tests wait for them)
STARTED: list = []
#: empty in this process instead (the test suite sets it: temp directories vanish after each test)
SYNC = False


def empty_in_background(project_dir: Path) -> None:
    if SYNC:
        empty_now(project_dir)
        return
    proc = trashworker.start(Path(project_dir))
    if proc is not None:
        STARTED[:] = [p for p in STARTED if p.poll() is None] + [proc]


def empty_now(project_dir: Path) -> list[str]:
    """Empty retired trash in this process; returns errors."""
    return trashworker.collect(Path(project_dir))


def wait_for_emptiers(timeout: float = 60.0) -> None:
    """Wait for the background emptiers this process started (tests, before measuring disks)."""
    for proc in STARTED:
        proc.wait(timeout)
    STARTED.clear()
