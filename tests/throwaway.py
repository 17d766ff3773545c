"""Throw-away databases and projects (also for code that cannot use fixtures: hypothesis, subprocesses), and a view of a tree on disk."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

from cryodesk import db as dbmod
from cryodesk.core import projects


@contextmanager
def fresh_project():
    """Yield project P1 (with workspace W1) in a new temporary database and directory."""
    with tempfile.TemporaryDirectory() as tmp:
        dbmod.open_database(str(Path(tmp) / "db.sqlite"))
        try:
            with dbmod.db.connection_context():
                p = projects.create_project("P", Path(tmp) / "proj")
                projects.create_workspace(p, "main")
                yield p
        finally:
            dbmod.close_database()


#: the PostgreSQL server CI starts (tests that need it skip without it)
PG_URL = os.environ.get("CRYODESK_TEST_PG_URL")


def empty_database(url: str) -> None:
    """Bind and migrate the database at ``url``, emptied first when it is a PostgreSQL server."""
    if url.startswith("postgresql://"):
        from cryodesk.db.models import ALL_MODELS

        database = dbmod.make_database(url)
        dbmod.db.initialize(database)
        with database.connection_context():
            database.drop_tables(ALL_MODELS, cascade=True)
    dbmod.open_database(url)


@contextmanager
def pg_project(tmp_path: Path):
    """Project P1 (workspace W1) on the emptied PostgreSQL test database."""
    empty_database(PG_URL)
    try:
        with dbmod.db.connection_context():
            p = projects.create_project("PG", Path(tmp_path) / "proj")
            projects.create_workspace(p, "main")
            yield p
    finally:
        dbmod.close_database()


def disk_files(root: Path, skip_state: bool = False) -> dict[str, int]:
    """Every file and symlink below ``root`` (relative path -> size; links as -1), never followed.

    ``skip_state`` leaves out cryodesk's own ``.cryodesk`` state directory.
    """
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in filenames + [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            if not (skip_state and rel.startswith(".cryodesk")):
                out[rel] = -1 if os.path.islink(full) else os.lstat(full).st_size
    return out
