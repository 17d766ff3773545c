"""Fixtures for the live-session tests: tiny simulated movies, a session watching a directory."""

from __future__ import annotations

from pathlib import Path

import pytest
from livehelpers import PARAMS, TINY


@pytest.fixture(scope="session")
def movie_source(tmp_path_factory) -> list[Path]:
    """Simulated movies (made once per test run)."""
    from cryodesk.demo import simulate_dataset

    out = tmp_path_factory.mktemp("live_movies")
    simulate_dataset(out, "small", seed=3, **TINY)
    return sorted((out / "movies").glob("*.mrc"))


@pytest.fixture
def watched(tmp_path) -> Path:
    d = tmp_path / "incoming"
    d.mkdir()
    return d


@pytest.fixture
def session(project, watched):
    from cryodesk.core import sessions

    return sessions.create(project, str(watched / "*.mrc"), "live", dict(PARAMS))


@pytest.fixture(autouse=True)
def _qt_app(qapp):
    """The runner drives a Qt event loop: pytest-qt's QApplication, never a bare QCoreApplication
    (``ensure_app`` would make one, and a later GUI test could not create its QApplication)."""
    yield qapp


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """``run(*argv) -> (code, out, err)`` of the real CLI on its own SQLite database."""
    from cryodesk.cli.main import main

    monkeypatch.setenv("CRYODESK_DB", str(tmp_path / "cli.sqlite"))

    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run
