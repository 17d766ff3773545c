"""Fixtures for the cleanup tests: the small runnable test job types (copied from tests/core) plus
one per preprocessing category, a fresh database and project, and random-project builders."""

from __future__ import annotations

import itertools

import pytest

from .jobtypes import TEST_TYPES  # noqa: F401  (registers the test job types)

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
    from cryodesk.core import projects

    p = projects.create_project("Cleanup test", tmp_path / "proj")
    projects.create_workspace(p, "main")
    return p
