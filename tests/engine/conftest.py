"""Fixtures for the engine: a fresh database and project, runnable test job types, an engine."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

# importlib mode puts no test directory on sys.path: add ours for the shared job-type module
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))
import enginetypes  # noqa: E402,F401  (registers the test job types)


@pytest.fixture
def gates():
    enginetypes.GATES.clear()
    enginetypes.EVENTS.clear()
    yield enginetypes.GATES
    for g in enginetypes.GATES.values():  # never leave a pool thread blocked
        g.set()


@pytest.fixture
def engine(qtbot, project, gates):
    """A started engine polling fast (100 ms); shut down (and waited for) after the test."""
    from cryodesk.engine import Engine

    eng = Engine(poll_interval_ms=100)
    eng.start()
    yield eng
    assert eng.shutdown(wait_ms=10000), "pool threads still running after the test"
