"""What differs between SQLite and PostgreSQL, in one place.

A *write transaction* is where a service reads the state it is about to
judge and writes its change, so that no other process can slip in between:

* SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock at once (every
  other writer waits on ``busy_timeout``), so what the transaction reads
  stays true until it commits.
* PostgreSQL: a transaction plus ``SELECT ... FOR UPDATE`` on the rows the
  decision depends on (:func:`lock_rows`); at READ COMMITTED each later
  statement then sees everything committed before the lock was granted.

Backends are told apart by class (``isinstance``), never by name.
"""

from __future__ import annotations

from contextlib import contextmanager

import peewee as pw

from .models import db


def _database(database=None) -> pw.Database:
    return database if database is not None else db.obj


def is_sqlite(database=None) -> bool:
    return isinstance(_database(database), pw.SqliteDatabase)


def is_postgres(database=None) -> bool:
    return isinstance(_database(database), pw.PostgresqlDatabase)


@contextmanager
def write_transaction(database=None):
    """A transaction that holds the write lock from its first statement (see the module doc).

    Nested inside another transaction it is a savepoint of that one (whose
    locks then already apply).
    """
    database = _database(database)
    if database.in_transaction():
        with database.atomic():
            yield
        return
    with database.atomic("IMMEDIATE") if is_sqlite(database) else database.atomic():  # (SQLite: as every one)
        yield


def lock_rows(model, ids, database=None) -> None:
    """Row locks (``FOR UPDATE``) on ``model`` rows ``ids``, in id order (no deadlocks between lockers).

    A no-op on SQLite, where :func:`write_transaction` already holds the
    whole database's write lock.  Call it inside :func:`write_transaction`.
    """
    database = _database(database)
    if not is_postgres(database):
        return
    ordered = sorted({int(i) for i in ids})
    table = model._meta.table_name
    for k in range(0, len(ordered), 1000):
        chunk = ordered[k:k + 1000]
        marks = ", ".join(["%s"] * len(chunk))
        database.execute_sql(f'SELECT id FROM "{table}" WHERE id IN ({marks}) ORDER BY id FOR UPDATE', chunk)
