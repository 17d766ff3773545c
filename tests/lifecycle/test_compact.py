"""``db compact``: it shrinks a database after a large delete, prunes what can go, and waits for nobody."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cryodesk.base.errors import LockedError
from cryodesk.core import compact, jobs, project_lifecycle, projects
from cryodesk.db import write_transaction
from cryodesk.db.models import AppliedItem, Change, Job, JobWorkspace, OutputFile, utcnow

from .helpers import build


def _big_project(tmp_path, n: int = 400):
    """A project with ``n`` jobs (rows only), each with a long title and output rows: megabytes of rows."""
    p = projects.create_project("Big", tmp_path / "big")
    ws = projects.create_workspace(p, "main")
    pad = secrets.token_hex(1000)  # (incompressible: PostgreSQL compresses long values)
    with write_transaction():
        ids = [Job.create(project=p, number=i, type="l_source", title=f"job {i} {secrets.token_hex(1000)}").id
               for i in range(1, n + 1)]
        JobWorkspace.insert_many([{"job": i, "workspace": ws.id} for i in ids]).execute()
        OutputFile.insert_many([{"job": i, "group": "particles", "kind": "blob", "version": v,
                                 "path": f"J{k}/out_{v}_{pad[:500]}.bin", "size_bytes": 1}
                                for k, i in enumerate(ids, 1) for v in range(4)]).execute()
    return p


@pytest.mark.slow
def test_compact_shrinks_the_database_after_a_large_delete(dbs, tmp_path, cli):
    url = dbs.url[dbs.a]
    with dbs.use(dbs.a):
        p = _big_project(tmp_path)
        full = compact.compact_database()["after_tables_bytes"]
        out = project_lifecycle.execute_delete(p, project_lifecycle.plan_delete(p))
        assert out["deleted"]
        # the deletion's own change-log rows are recent: windows may still read them, so they stay
        dry = compact.compact_database(dry_run=True)
        assert dry["pruned"]["change"] == 0 and dry["after_bytes"] == dry["before_bytes"]
    code, text, err = cli(url, "db", "compact", "--json")
    assert code == 0, err
    result = json.loads(text)
    assert result["after_tables_bytes"] < full / 3, (full, result)
    assert result["after_bytes"] < result["before_bytes"], result  # the whole database (file, or server's) too
    code, text, err = cli(url, "db", "compact")
    assert code == 0 and "->" in text and "bytes" in text, err


def test_compact_prunes_old_events_finished_journal_rows_and_orphans(dbs, tmp_path):
    with dbs.use(dbs.a):
        p, _ = build("Prune", tmp_path / "prune", tmp_path / "raw")
        old = utcnow() - dt.timedelta(days=3)
        Change.update(at=old).execute()
        n_old = Change.select().count()
        AppliedItem.insert(plan_id="0123456789ab", item=0, outcome="applied").execute()  # its journal is gone
        recent = Change.select().where(Change.at > old).count()
        out = compact.compact_database(dry_run=True)
        assert out["pruned"] == {"change": n_old, "applied_item": 1}
        assert Change.select().count() == n_old + recent  # a dry run prunes nothing
        out = compact.compact_database()
        assert out["pruned"]["change"] == n_old and out["pruned"]["applied_item"] == 1
        assert AppliedItem.select().count() == 0
        assert Change.select().where(Change.at <= old).count() == 0
        assert jobs.list_jobs(p)  # the project itself is untouched
        assert set(out["pruned"]["orphans"]) >= {"job", "output_file", "connection"}


HOLD_SQLITE = """
import sqlite3, sys, time
con = sqlite3.connect(sys.argv[1], isolation_level=None)
con.execute("BEGIN IMMEDIATE")
con.execute("INSERT INTO meta VALUES ('holder', 'x')")
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
con.execute("ROLLBACK")
"""

HOLD_PG = """
import sys, time, psycopg2
con = psycopg2.connect(sys.argv[1])
con.cursor().execute("INSERT INTO meta VALUES ('holder', 'x')")
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
con.rollback()
"""


def test_compact_is_refused_while_another_process_writes(dbs, backend, tmp_path):
    url = dbs.url[dbs.a]
    with dbs.use(dbs.a):
        build("Busy", tmp_path / "busy", tmp_path / "raw")
        before = Change.select().count()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_PG if backend == "pg" else HOLD_SQLITE, url, "30"],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        with dbs.use(dbs.a):
            t0 = time.monotonic()
            with pytest.raises(LockedError, match="not compacted while another process writes"):
                compact.compact_database()
            assert time.monotonic() - t0 < 10  # refused at once, not after waiting
            assert Change.select().count() == before  # nothing pruned
    finally:
        holder.kill()
        holder.wait()


def test_compact_is_refused_while_a_job_runs(dbs, tmp_path):
    with dbs.use(dbs.a):
        p, _ = build("Running", tmp_path / "run", tmp_path / "raw")
        sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
        try:
            from cryodesk.core import lifecycle

            owner = {**lifecycle.new_owner(), "pid": sleeper.pid, "start": lifecycle._start_ticks(sleeper.pid)}
            j4 = jobs.get_job(p, "J4")
            Job.update(status="running", **lifecycle._owner_columns(owner)).where(Job.id == j4.id).execute()
            with pytest.raises(LockedError, match=r"P1 J4 is running \(process \d+"):
                compact.compact_database()
        finally:
            sleeper.kill()
            sleeper.wait()
        assert os.path.isdir(Path(p.directory))
