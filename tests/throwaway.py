"""A throw-away database + project for code that cannot use fixtures (hypothesis examples)."""

from __future__ import annotations

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
