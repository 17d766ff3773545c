"""Fixtures for the project-lifecycle tests: the ``l`` job types, two databases on either backend, the CLI.

``dbs`` gives two databases of the same backend (``backend`` is ``sqlite`` or
``pg``; the PostgreSQL ones skip without ``CRYODESK_TEST_PG_URL``): the
server's test database and a second one whose name is derived from it
(``<name>_b``), made here if it is missing.  ``dbs.use(dbs.a)`` binds the
models to one of them.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import jobtypes
import pytest
from throwaway import PG_URL

from cryodesk import db as dbmod
from cryodesk.db.migrations import upgrade
from cryodesk.db.models import ALL_MODELS

TEST_TYPES = jobtypes.family("l")
BACKENDS = ["sqlite", pytest.param("pg", marks=pytest.mark.skipif(not PG_URL, reason="set CRYODESK_TEST_PG_URL"))]


def second_pg_url(url: str) -> str:
    """The second PostgreSQL test database: the first one's name + ``_b`` (created if missing)."""
    base, name = url.rsplit("/", 1)
    other = f"{name}_b"
    database = dbmod.make_database(url)
    with database.connection_context():
        if not database.execute_sql("SELECT 1 FROM pg_database WHERE datname = %s", [other]).fetchone():
            database.execute_sql(f'CREATE DATABASE "{other}"')
    return f"{base}/{other}"


def _fresh(url: str):
    database = dbmod.make_database(url)
    dbmod.db.initialize(database)
    with database.connection_context():
        if url.startswith("postgresql://"):
            database.drop_tables(ALL_MODELS, cascade=True)
        upgrade(database)
    return database


class Databases:
    def __init__(self, urls):
        self.urls = urls
        self.a, self.b = (_fresh(u) for u in urls)
        self.url = {self.a: urls[0], self.b: urls[1]}
        for d in (self.a, self.b):
            d.connect(reuse_if_open=True)
        dbmod.db.initialize(self.a)

    @contextmanager
    def use(self, database):
        previous = dbmod.db.obj
        dbmod.db.initialize(database)
        database.connect(reuse_if_open=True)
        try:
            yield database
        finally:
            dbmod.db.initialize(previous)

    def close(self):
        for d in (self.a, self.b):
            if not d.is_closed():
                d.close()


@pytest.fixture(params=BACKENDS)
def backend(request):
    return request.param


@pytest.fixture
def dbs(backend, tmp_path):
    if backend == "pg":
        urls = (PG_URL, second_pg_url(PG_URL))
    else:
        urls = (str(tmp_path / "a.sqlite"), str(tmp_path / "b.sqlite"))
    d = Databases(urls)
    yield d
    d.close()


@pytest.fixture
def cli(monkeypatch, capsys, qapp):
    """``cli(url, *argv)`` -> (exit code, stdout, stderr), in-process (``--db url``).

    (``qapp``: ``job run`` starts the engine, which makes a bare QCoreApplication if there is no
    application yet; a later GUI test of this process then needs a QApplication.)
    """
    from cryodesk.cli.main import main

    monkeypatch.setenv("CRYODESK_DB", os.environ.get("CRYODESK_DB", ""))

    def run(url, *argv):
        previous = dbmod.db.obj
        try:
            code = main(["--db", str(url), *map(str, argv)])
        finally:
            dbmod.db.initialize(previous)
            if previous is not None:
                previous.connect(reuse_if_open=True)
        out, err = capsys.readouterr()
        return code, out, err

    return run
