"""PostgreSQL: every guarded writer must lock the project row before job rows.

``settings_service._write_job`` locks the job row (``lock_rows(Job, ...)``)
and then calls ``set_params``, whose ``project_write`` locks the project
row: job-then-project, while clear / delete / mark-final / set-param lock
project-then-job (core/guard.py: "Every guarded writer of a project takes
the project row first").  Against a concurrent writer of the same job the
two deadlock; PostgreSQL aborts one, and ``cryodesk settings set
cache_particles ... --job P1 J1`` dies with a traceback
(``peewee.OperationalError: deadlock detected``) instead of waiting its turn.

Needs ``CRYODESK_TEST_PG_URL`` (a database of one's own).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from throwaway import PG_URL, empty_database

from cryodesk import db as dbmod
from cryodesk.core import jobs, projects

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.skipif(not PG_URL, reason="CRYODESK_TEST_PG_URL not set")


def test_job_setting_waits_for_a_concurrent_writer_instead_of_deadlocking(tmp_path):
    import psycopg2

    empty_database(PG_URL)
    try:
        with dbmod.db.connection_context():
            p = projects.create_project("PG", tmp_path / "proj")
            projects.create_workspace(p, "main")
            j = jobs.create_job(p, "class_2d", "W1")  # a built-in type with the cache_particles parameter
            project_id, job_id = p.id, j.id
    finally:
        dbmod.close_database()

    # the other writer (as core.guard.project_write does): the project row first ...
    other = psycopg2.connect(PG_URL)
    cur = other.cursor()
    cur.execute("SELECT id FROM project WHERE id = %s FOR UPDATE", [project_id])
    setter = subprocess.Popen(
        [sys.executable, "-m", "cryodesk.cli.main", "--db", PG_URL, "settings", "set", "cache_particles",
         "false", "--job", "P1", j.uid],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    watcher = psycopg2.connect(PG_URL)
    watcher.autocommit = True  # pg_stat_activity is a snapshot per transaction
    wcur = watcher.cursor()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # the setter holds the job row and waits for the project row
        wcur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                     "AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()")
        if wcur.fetchone()[0]:
            break
        time.sleep(0.05)
    else:
        setter.kill()
        pytest.fail("the setter never waited for the project row: " + setter.communicate()[1])
    # ... then the job row
    try:
        cur.execute("SELECT id FROM job WHERE id = %s FOR UPDATE", [job_id])
        other.commit()
        other_ok = True
    except psycopg2.Error:
        other.rollback()
        other_ok = False
    out, err = setter.communicate(timeout=60)
    other.close()
    watcher.close()
    assert "Traceback" not in err, err
    assert other_ok and setter.returncode == 0, (setter.returncode, err)
