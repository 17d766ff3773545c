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
    if not is_sqlite(database):
        with database.atomic():
            yield
        return
    txn = _begin_immediate(database)
    with txn:
        yield


#: a busy ``BEGIN IMMEDIATE`` (the busy timeout ran out while another process wrote) is tried again this often
BEGIN_RETRIES = 3


def _begin_immediate(database):
    """An entered-ready SQLite transaction whose ``BEGIN IMMEDIATE`` succeeded, retried with backoff.

    Only the transaction's first statement is retried: nothing was read or written yet, so trying
    again is the same transaction.  A lock that outlasts every try raises (the CLI says so in a sentence).
    """
    import random
    import time

    for attempt in range(BEGIN_RETRIES + 1):
        txn = database.atomic("IMMEDIATE")
        try:
            txn.__enter__()
        except pw.OperationalError as exc:
            if attempt == BEGIN_RETRIES or "locked" not in str(exc).lower() and "busy" not in str(exc).lower():
                raise
            time.sleep(min(2.0, 0.05 * 2 ** attempt) * (0.5 + random.random()))
            continue
        return _Entered(txn)
    raise AssertionError("unreachable")


class _Entered:
    """A transaction already entered: its ``with`` only exits it."""

    def __init__(self, txn):
        self.txn = txn

    def __enter__(self):
        return self.txn

    def __exit__(self, *exc):
        return self.txn.__exit__(*exc)


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
