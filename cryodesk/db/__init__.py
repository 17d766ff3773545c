"""Database: peewee models behind a proxy, SQLite by default, PostgreSQL by URL.

Use :func:`open_database` once per process; worker threads wrap their bodies
in ``with db.connection_context():``.
"""

from __future__ import annotations

import os
from pathlib import Path

import peewee as pw

from ..core.errors import UsageError
from .migrations import SCHEMA_VERSION, upgrade
from .models import ALL_MODELS as ALL_MODELS_FOR_TESTS  # noqa: F401
from .models import (  # noqa: F401
    ACTIVE_STATUSES,
    JOB_STATUSES,
    Connection,
    Job,
    JobWorkspace,
    Meta,
    OutputFile,
    Project,
    Session,
    Worker,
    Workspace,
    db,
    utcnow,
)

ENV_VAR = "CRYODESK_DB"


def default_url() -> str:
    """The embedded default: an SQLite file in the user data directory."""
    from platformdirs import user_data_dir

    return str(Path(user_data_dir("cryodesk", appauthor=False)) / "cryodesk.sqlite")


def resolve_url(url: str | None = None) -> str:
    return url or os.environ.get(ENV_VAR) or default_url()


def make_database(url: str) -> pw.Database:
    """A peewee database for ``url`` (a path, ``sqlite:///path`` or ``postgresql://...``)."""
    if url.startswith(("postgres://", "postgresql://")):
        from playhouse.db_url import connect

        try:
            return connect(url.replace("postgres://", "postgresql://", 1))
        except ImportError as exc:  # psycopg2 missing
            raise UsageError(
                "PostgreSQL needs the 'postgres' extra: pip install 'cryodesk[postgres]'"
            ) from exc
    if url.startswith("sqlite:///"):
        url = url[len("sqlite:///") :]  # sqlite:///rel/path, sqlite:////abs/path
    elif "://" in url:
        raise UsageError(f"unsupported database URL {url!r} (use a path or postgresql://...)")
    path = Path(url).expanduser()
    if url != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    return pw.SqliteDatabase(
        str(path) if url != ":memory:" else url,
        pragmas={
            "journal_mode": "wal",
            "foreign_keys": 1,
            "busy_timeout": 30000,
            "synchronous": "normal",
        },
        timeout=30,
    )


def open_database(url: str | None = None) -> pw.Database:
    """Bind the models to the database at ``url`` (or $CRYODESK_DB, or the default) and migrate it."""
    url = resolve_url(url)
    database = make_database(url)
    db.initialize(database)
    try:
        with db.connection_context():
            upgrade(database)
    except (pw.OperationalError, pw.DatabaseError) as exc:  # unreachable server, corrupt file, ...
        from ..core.errors import CryodeskError

        shown = url.split("@")[-1] if "://" in url else url  # never print a password
        raise CryodeskError(f"cannot open the database {shown}: {str(exc).strip() or type(exc).__name__}") from None
    return database


def close_database() -> None:
    if db.obj is not None and not db.is_closed():
        db.close()
