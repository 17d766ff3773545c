"""Shared test fixtures.  Qt runs headless: the platform is set before Qt loads."""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

import cryodesk.jobs  # noqa: E402,F401  (registers the built-in job types, as the CLI and the app do)
from cryodesk.core.deletion import trash as _trash  # noqa: E402

# Tests remove their temporary directories at once: empty the trash in-process, not in a
# background emptier (tests/core/test_deletion_journal.py exercises the background one).
_trash.SYNC = True

REPO = Path(__file__).resolve().parents[1]
# importlib mode puts no test directory on sys.path; the shared job-type module lives here
if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="session")
def realdata_dir() -> Path:
    """Real cryo-EM files written by other software (``../shared/realdata``)."""
    path = Path(os.environ.get("CRYODESK_REALDATA", REPO.parent / "shared" / "realdata"))
    if not (path / "empiar_10076_7.mrc").exists():
        pytest.skip(f"real test data not found at {path}")
    return path


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests save screenshots and other things a person should look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


_counter = itertools.count()


@pytest.fixture
def database(tmp_path):
    """A fresh SQLite database bound to the models for this test."""
    from cryodesk import db as dbmod

    database = dbmod.open_database(str(tmp_path / f"db{next(_counter)}.sqlite"))
    with dbmod.db.connection_context():
        yield database
    dbmod.close_database()


@pytest.fixture
def project(database, tmp_path):
    """Project P1 ("Test project") with workspace W1, in a fresh database."""
    from cryodesk.core import projects

    p = projects.create_project("Test project", tmp_path / "proj")
    projects.create_workspace(p, "main")
    return p
