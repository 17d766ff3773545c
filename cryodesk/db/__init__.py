"""Database: peewee models behind a proxy, SQLite by default, PostgreSQL by URL.

Use :func:`open_database` once per process; worker threads wrap their bodies
in ``with db.connection_context():``.  The models live in
:mod:`cryodesk.db.models` and only the service layers (core, cache) import
them: the UI, the CLI, the engine and the job types reach the database
through services (an import-linter contract keeps it so).
"""

from __future__ import annotations

import peewee as pw

from ..base import settings
from ..base.dburl import has_password, is_server_url, parse_pg_url, redact  # noqa: F401
from ..base.errors import CryodeskError, UsageError
from .backend import is_postgres, is_sqlite, lock_rows, write_transaction  # noqa: F401
from .migrations import SCHEMA_VERSION, upgrade  # noqa: F401
from .models import ACTIVE_STATUSES, JOB_STATUSES, db, utcnow  # noqa: F401

#: how long (ms) an SQLite connection waits for another process's write lock before giving up
BUSY_TIMEOUT_MS = 30000


def resolve_url(url: str | None = None) -> str:
    """``url`` if given, else the ``db_url`` setting (``$CRYODESK_DB``, else the embedded default)."""
    return url or settings.resolve("db_url")


def make_database(url: str) -> pw.Database:
    """A peewee database for ``url`` (a path, ``sqlite:///path`` or ``postgresql://...``)."""
    from pathlib import Path

    if is_server_url(url):
        # parsed here, not by urllib: a password holding "#" or "?" made urlparse raise with part of it
        params = parse_pg_url(url)
        try:
            import psycopg2  # noqa: F401
        except ImportError as exc:  # psycopg2 missing
            raise UsageError(
                "PostgreSQL needs the 'postgres' extra: pip install 'cryodesk[postgres]'"
            ) from exc
        return pw.PostgresqlDatabase(params.pop("database"), **params)
    if url.startswith("sqlite:///"):
        url = url[len("sqlite:///") :]  # sqlite:///rel/path, sqlite:////abs/path
    elif "://" in url:
        raise UsageError(f"unsupported database URL {redact(url)!r} (use a path or postgresql://...)")
    path = Path(url).expanduser()
    if url != ":memory:":
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CryodeskError(f"cannot open the database {path}: cannot make its directory "
                                f"{path.parent} ({exc.strerror or exc})") from None
    return pw.SqliteDatabase(
        str(path) if url != ":memory:" else url,
        pragmas={
            "journal_mode": "wal",
            "foreign_keys": 1,
            "busy_timeout": BUSY_TIMEOUT_MS,
            "synchronous": "normal",
        },
        timeout=BUSY_TIMEOUT_MS / 1000,
        # every transaction takes the write lock at its start: a transaction that reads and then
        # writes can never fail with "database is locked" because another process wrote in between
        # (a deferred one cannot wait for the busy timeout there); readers are not blocked (WAL)
        lock_type="IMMEDIATE",
    )


def lock_message(exc: BaseException) -> str | None:
    """A sentence for a database lock that outlasted the busy timeout (None: ``exc`` is no such error)."""
    if not isinstance(exc, pw.OperationalError):
        return None
    text = str(exc).lower()
    if "locked" not in text and "busy" not in text:
        return None
    return ("the database is busy: another cryodesk process held its write lock for more than "
            f"{BUSY_TIMEOUT_MS / 1000:g} s; nothing was changed — try again when it has finished")


def shown_url(url: str) -> str:
    """``url`` as it may be printed (never a password: :func:`cryodesk.base.dburl.redact`)."""
    return redact(url)


def open_database(url: str | None = None) -> pw.Database:
    """Bind the models to the database at ``url`` (or $CRYODESK_DB, or the default) and migrate it."""
    url = resolve_url(url)
    database = make_database(url)
    db.initialize(database)
    try:
        with db.connection_context():
            upgrade(database)
    except (pw.OperationalError, pw.DatabaseError) as exc:  # unreachable server, corrupt file, ...
        raise CryodeskError(f"cannot open the database {shown_url(url)}: "
                            f"{lock_message(exc) or str(exc).strip() or type(exc).__name__}") from None
    return database


def close_database() -> None:
    if db.obj is not None and not db.is_closed():
        db.close()
