"""Reducing the database's size: what differs between SQLite and PostgreSQL (the rules are in core.compact).

* :func:`size_bytes` — the database's size now (SQLite: the file with its
  write-ahead log; PostgreSQL: ``pg_database_size``), and :func:`tables_bytes`,
  cryodesk's own tables (PostgreSQL counts its catalogs in the database too).
* :func:`other_writers` — who else is writing now: SQLite, whether another
  connection holds the write lock; PostgreSQL, the other sessions on this
  database with a transaction that has written (or is waiting idle in one).
* :func:`prune_orphans` — rows whose parent row is gone (a database used
  without foreign keys, or by an old cryodesk).
* :func:`vacuum` — ``VACUUM`` (then a WAL checkpoint that truncates) on SQLite,
  ``VACUUM (FULL, ANALYZE)`` of cryodesk's tables on PostgreSQL, with a short
  lock timeout so that it is refused rather than left waiting behind a writer.
"""

from __future__ import annotations

import os

import peewee as pw

from .backend import is_sqlite
from .models import ALL_MODELS, db


class Busy(Exception):
    """Another process writes (or holds a lock the vacuum needs)."""


def _database(database=None) -> pw.Database:
    return database if database is not None else db.obj


def size_bytes(database=None) -> int:
    database = _database(database)
    if is_sqlite(database):
        path = str(database.database)
        return sum(os.path.getsize(p) for p in (path, path + "-wal") if os.path.exists(p))
    return int(database.execute_sql("SELECT pg_database_size(current_database())").fetchone()[0])


def tables_bytes(database=None) -> int:
    """Bytes of cryodesk's own tables and their indexes."""
    database = _database(database)
    if is_sqlite(database):
        page = database.execute_sql("PRAGMA page_size").fetchone()[0]
        used = (database.execute_sql("PRAGMA page_count").fetchone()[0]
                - database.execute_sql("PRAGMA freelist_count").fetchone()[0])
        return int(page * used)
    names = [m._meta.table_name for m in ALL_MODELS]
    marks = ", ".join(["%s"] * len(names))
    row = database.execute_sql(
        f"SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
        f"JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'r' "
        f"AND n.nspname = current_schema() AND c.relname IN ({marks})", names).fetchone()
    return int(row[0])


def other_writers(database=None) -> list[str]:
    """What else is writing to the database now (empty: nothing)."""
    database = _database(database)
    if is_sqlite(database):
        timeout = database.execute_sql("PRAGMA busy_timeout").fetchone()[0]
        database.execute_sql("PRAGMA busy_timeout = 0")
        try:
            database.execute_sql("BEGIN IMMEDIATE")
        except pw.OperationalError as exc:
            return [f"another connection holds the write lock of {database.database} ({exc})"]
        else:
            database.execute_sql("ROLLBACK")
        finally:
            database.execute_sql(f"PRAGMA busy_timeout = {int(timeout)}")
        return []
    rows = database.execute_sql(
        "SELECT pid, COALESCE(application_name, ''), COALESCE(client_addr::text, 'local'), state, "
        "xact_start FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND xact_start IS NOT NULL AND (backend_xid IS NOT NULL OR state LIKE 'idle in transaction%%')"
    ).fetchall()
    return [f"session {pid} ({app or 'no name'}, from {addr}) is {state} since {str(start)[:19]}"
            for pid, app, addr, state, start in rows]


def prune_orphans(database=None) -> dict[str, int]:
    """Delete rows whose parent row is gone; returns how many per table."""
    database = _database(database)
    checks = {
        "workspace": "NOT EXISTS (SELECT 1 FROM project p WHERE p.id = workspace.project_id)",
        "session": "NOT EXISTS (SELECT 1 FROM project p WHERE p.id = session.project_id)",
        "job": "NOT EXISTS (SELECT 1 FROM project p WHERE p.id = job.project_id)",
        "job_workspace": "NOT EXISTS (SELECT 1 FROM job j WHERE j.id = job_workspace.job_id) OR NOT EXISTS "
                         "(SELECT 1 FROM workspace w WHERE w.id = job_workspace.workspace_id)",
        "connection": "NOT EXISTS (SELECT 1 FROM job j WHERE j.id = connection.child_id) OR NOT EXISTS "
                      "(SELECT 1 FROM job j WHERE j.id = connection.parent_id)",
        "output_file": "NOT EXISTS (SELECT 1 FROM job j WHERE j.id = output_file.job_id)",
    }
    out = {}
    for table, where in checks.items():  # parents first: a job removed here takes its rows with it below
        cur = database.execute_sql(f'DELETE FROM "{table}" WHERE {where}')
        out[table] = cur.rowcount if cur.rowcount and cur.rowcount > 0 else 0
    return out


def vacuum(database=None, lock_timeout_s: float = 3.0) -> None:
    """Give free space back to the file system (outside any transaction); :class:`Busy` if another holds a lock."""
    database = _database(database)
    if database.in_transaction():
        raise RuntimeError("vacuum() must run outside a transaction")
    if is_sqlite(database):
        timeout = database.execute_sql("PRAGMA busy_timeout").fetchone()[0]
        database.execute_sql(f"PRAGMA busy_timeout = {int(lock_timeout_s * 1000)}")
        try:
            database.execute_sql("VACUUM")
            database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        except pw.OperationalError as exc:
            raise Busy(str(exc)) from None
        finally:
            database.execute_sql(f"PRAGMA busy_timeout = {int(timeout)}")
        return
    names = ", ".join(f'"{m._meta.table_name}"' for m in ALL_MODELS)
    database.execute_sql(f"SET lock_timeout = '{int(lock_timeout_s * 1000)}ms'")
    try:
        database.execute_sql(f"VACUUM (FULL, ANALYZE) {names}")
    except (pw.OperationalError, pw.DatabaseError) as exc:
        raise Busy(str(exc).strip()) from None
    finally:
        try:
            database.execute_sql("RESET lock_timeout")
        except pw.DatabaseError:
            pass
