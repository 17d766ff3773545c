"""Issue 20, item 10: ~9 concurrent writers on SQLite gave ``database is locked`` tracebacks.

Nine CLI processes (forked, each with its own connection) write to one project
at once — mark final, clone jobs (a read-then-write transaction): every
command succeeds (no "database is locked", no traceback), and afterwards the
database and every manifest agree.  Every SQLite transaction is ``BEGIN
IMMEDIATE`` (it waits its turn on the busy timeout instead of failing when
upgrading a read snapshot), a busy ``BEGIN`` is retried with backoff, and a
lock held longer than that is a one-line error (see test_locked_message).
"""

from __future__ import annotations

import sqlite3

from statecheck import disagreements, run_concurrently

from cryodesk.core import jobs, projects, runner

N = 9


def test_nine_concurrent_cli_writers_all_succeed_and_agree(database, project):
    projects.create_workspace(project, "second")
    building = [jobs.create_job(project, "h_source", "W1", params={"nbytes": 10}) for _ in range(N)]
    done = [jobs.create_job(project, "h_source", "W1", params={"nbytes": 10}) for _ in range(N)]
    for j in done:
        runner.run_job(project, j)
    scripts = []
    for b, d in zip(building, done):
        scripts.append([["job", "final", "P1", d.uid], ["job", "clone", "P1", b.uid, "-w", "W2"]])
    results = run_concurrently(database.database, scripts)
    for code, text in results:
        assert "Traceback" not in text and "locked" not in text, text
        assert code == 0, text
    assert disagreements(project) == []
    assert len(jobs.list_jobs(project)) == 3 * N  # every clone made


def test_locked_message_is_one_line(database, project, monkeypatch):
    """A lock another process holds past the busy timeout: a clear sentence, exit 1, no traceback."""
    from cryodesk import db as dbmod

    monkeypatch.setattr(dbmod, "BUSY_TIMEOUT_MS", 200)
    other = sqlite3.connect(database.database)
    other.execute("BEGIN IMMEDIATE")
    try:  # (in a forked child: the CLI binds the database of its own process)
        [(code, err)] = run_concurrently(database.database, [[["job", "create", "P1", "h_source", "-w", "W1"]]])
    finally:
        other.rollback()
        other.close()
    assert code == 1, err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert "busy" in err and "another" in err, err


def test_a_busy_begin_is_retried(tmp_path, monkeypatch):
    """The busy timeout ran out at ``BEGIN IMMEDIATE`` (nothing read or written yet): tried again, it succeeds."""
    import threading

    from cryodesk import db as dbmod
    from cryodesk.db import backend

    monkeypatch.setattr(dbmod, "BUSY_TIMEOUT_MS", 100)
    path = str(tmp_path / "busy.sqlite")
    database = dbmod.make_database(path)
    database.connect()
    database.execute_sql("CREATE TABLE t (x INTEGER)")
    other = sqlite3.connect(path, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    timer = threading.Timer(0.3, other.rollback)  # longer than one busy timeout, shorter than the retries
    timer.start()
    try:
        with backend.write_transaction(database):
            database.execute_sql("INSERT INTO t VALUES (1)")
    finally:
        timer.join()
        other.close()
    assert database.execute_sql("SELECT count(*) FROM t").fetchone()[0] == 1
    database.close()
