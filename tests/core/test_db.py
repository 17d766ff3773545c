from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from cryodesk import db as dbmod
from cryodesk.base.errors import CryodeskError, UsageError
from cryodesk.core import graph
from cryodesk.db.migrations import SCHEMA_VERSION
from cryodesk.db.models import Job, Meta, Project

V1 = Path(__file__).resolve().parents[1] / "data" / "schema_v1.sql"
#: made by cryodesk at schema v3 (commit 450545e): runtime records still inside Job.settings
V3 = Path(__file__).resolve().parents[1] / "data" / "schema_v3.sql"
#: made by cryodesk at schema v4 (commit 6e30a96): no lanes, exposures or other programs' projects
V4 = Path(__file__).resolve().parents[1] / "data" / "schema_v4.sql"
#: made by cryodesk at schema v5 (commit a3a4243): three jobs, J2 final, J1 its ancestor
V5 = Path(__file__).resolve().parents[1] / "data" / "schema_v5.sql"


def test_fresh_database_has_current_schema_and_pragmas(tmp_path):
    dbmod.open_database(str(tmp_path / "a.sqlite"))
    try:
        with dbmod.db.connection_context():
            assert Meta.get_by_id("schema_version").value == str(SCHEMA_VERSION)
            assert dbmod.db.execute_sql("PRAGMA journal_mode").fetchone()[0] == "wal"
            assert dbmod.db.execute_sql("PRAGMA foreign_keys").fetchone()[0] == 1
            assert dbmod.db.execute_sql("PRAGMA busy_timeout").fetchone()[0] == 30000
    finally:
        dbmod.close_database()


def _open_dump(tmp_path, dump: Path) -> None:
    """Open (and so migrate) a database made from an SQL dump of an older schema."""
    path = tmp_path / f"{dump.stem}.sqlite"
    con = sqlite3.connect(path)
    con.executescript(dump.read_text())
    con.close()
    dbmod.open_database(str(path))


def test_database_from_schema_v1_is_migrated_without_loss(tmp_path):
    _open_dump(tmp_path, V1)
    try:
        with dbmod.db.connection_context():
            assert Meta.get_by_id("schema_version").value == str(SCHEMA_VERSION)
            p = Project.get()
            assert p.title == "Old project" and p.settings == {}
            j2 = Job.get(Job.number == 2)
            assert j2.params == {"particles_per_file": 5} and j2.is_final and j2.status_history == []
            assert j2.error is None and j2.settings == {}
            assert p.size_bytes is None and p.size_refreshed_at is None  # v3: sizes computed on first use
            assert "worker" in dbmod.db.get_tables()
            assert [j.uid for j in graph.ancestors(j2)] == ["J1"]
            j2.error = "now writable"
            j2.save()
    finally:
        dbmod.close_database()


def test_database_from_a_newer_cryodesk_is_refused(tmp_path):
    path = tmp_path / "new.sqlite"
    dbmod.open_database(str(path))
    with dbmod.db.connection_context():
        Meta.replace(key="schema_version", value=str(SCHEMA_VERSION + 1)).execute()
    dbmod.close_database()
    with pytest.raises(CryodeskError, match="newer than this cryodesk"):
        dbmod.open_database(str(path))


def test_url_forms(tmp_path, monkeypatch):
    monkeypatch.setenv("CRYODESK_DB", str(tmp_path / "env.sqlite"))
    assert dbmod.resolve_url() == str(tmp_path / "env.sqlite")
    assert dbmod.resolve_url("x.sqlite") == "x.sqlite"
    monkeypatch.delenv("CRYODESK_DB")
    assert dbmod.resolve_url().endswith("cryodesk.sqlite")
    d = dbmod.make_database(f"sqlite:///{tmp_path}/u.sqlite")
    assert d.database == f"{tmp_path}/u.sqlite"
    with pytest.raises(UsageError, match="unsupported database URL"):
        dbmod.make_database("mysql://x")


def test_database_from_schema_v3_moves_runtime_records_into_columns(tmp_path):
    import datetime as dt

    _open_dump(tmp_path, V3)
    try:
        with dbmod.db.connection_context():
            assert Meta.get_by_id("schema_version").value == str(SCHEMA_VERSION)
            j1, j2, j3 = (Job.get(Job.number == n) for n in (1, 2, 3))
            # the user's override stays a setting; the owner becomes columns
            assert j1.settings == {"delete_intermediate": True}
            assert (j1.owner_host, j1.owner_pid, j1.owner_boot, j1.owner_start, j1.owner_engine) == (
                "oldhost", 4242, "b-1", "123", "abcdef123456")
            assert j2.settings == {} and j2.kill_requested_at == dt.datetime(2026, 11, 30, 10, 0)
            assert j2.owner_engine == "fedcba654321" and j2.owner_boot is None
            assert j3.settings == {} and j3.owner_engine is None and j3.kill_requested_at is None
            assert "change" in dbmod.db.get_tables()
            assert Project.get().settings["delete_intermediate"] is False
            # v4 lifecycle: no project id yet (given on its first write), not archived, the op journal, an instance id
            p = Project.get()
            assert p.uuid is None and p.archived_at is None
            assert "project_op" in dbmod.db.get_tables()
            assert len(Meta.get_by_id("instance_id").value) == 32
            uuid_indexes = [i for i in dbmod.db.get_indexes("project") if i.columns == ["uuid"]]
            assert uuid_indexes and uuid_indexes[0].unique
    finally:
        dbmod.close_database()


def test_a_v3_project_is_adopted_by_its_first_write_after_the_migration(tmp_path):
    """A project made before v4 has no lock file and no id: its first write gives it both."""
    import json

    from cryodesk.core import ownership, projects

    _open_dump(tmp_path, V3)
    try:
        with dbmod.db.connection_context():
            pdir = tmp_path / "v3proj"
            pdir.mkdir()
            (pdir / "project.json").write_text(json.dumps({"format": 1, "uid": "P1", "title": "Old project v3"}))
            Project.update(directory=str(pdir)).execute()
            assert ownership.read_lock(pdir) is None
            projects.create_workspace(projects.get_project("P1"), "new")
            p = Project.get()
            lock = ownership.read_lock(pdir)
            assert p.uuid and lock["project"] == p.uuid and ownership.is_ours(lock) and lock["action"] == "adopted"
            doc = json.loads((pdir / "project.json").read_text())
            assert doc["id"] == p.uuid and [w["title"] for w in doc["workspaces"]] == ["main", "new"]
    finally:
        dbmod.close_database()


def test_database_from_schema_v4_gains_lanes_sessions_and_project_kinds(tmp_path):
    from cryodesk.db.models import Exposure, Lane, Session

    _open_dump(tmp_path, V4)
    try:
        with dbmod.db.connection_context():
            assert Meta.get_by_id("schema_version").value == str(SCHEMA_VERSION) == "6"
            p, j = Project.get(), Job.get()
            assert p.title == "Old v4 project" and p.kind == "cryodesk" and p.uuid  # kept, and a cryodesk project
            assert j.params == {"particle_blob_path": None, "particle_meta_path": "/data/x.cs"}
            assert (j.lane, j.cluster_job_id, j.path) == (None, None, None)
            assert {"lane", "exposure"} <= set(dbmod.db.get_tables())
            Lane.create(name="hpc", type="slurm", config={})
            s = Session.create(project=p, number=1, title="live", params={"x": 1})
            Exposure.create(session=s, number=1, movie="/raw/a.mrc")
            assert Session.get().lane == "local" and Exposure.get().stage == "found"
    finally:
        dbmod.close_database()


def test_a_v4_database_of_a_development_build_with_some_v5_columns_migrates(tmp_path):
    """A v4 database that already had lanes (a pre-release build): the step adds only what is missing."""
    path = tmp_path / "dev.sqlite"
    con = sqlite3.connect(path)
    con.executescript(V4.read_text())
    con.executescript('ALTER TABLE "job" ADD COLUMN "lane" VARCHAR(64);'
                      'CREATE TABLE "lane" ("id" INTEGER NOT NULL PRIMARY KEY, "name" VARCHAR(64) NOT NULL, '
                      '"type" VARCHAR(16) NOT NULL, "config" TEXT NOT NULL, "created_at" DATETIME NOT NULL);')
    con.close()
    dbmod.open_database(str(path))
    try:
        with dbmod.db.connection_context():
            assert Meta.get_by_id("schema_version").value == str(SCHEMA_VERSION)
            cols = {c.name for c in dbmod.db.get_columns("job")}
            assert {"lane", "cluster_job_id", "path"} <= cols
            assert Job.get().lane is None and Project.get().kind == "cryodesk"
    finally:
        dbmod.close_database()


def test_a_v5_database_gains_the_covering_index_of_the_ancestor_flags_and_keeps_them(tmp_path):
    from cryodesk.core import finals

    _open_dump(tmp_path, V5)
    try:
        with dbmod.db.connection_context():
            assert Meta.get_by_id("schema_version").value == str(SCHEMA_VERSION) == "6"
            index = [i for i in dbmod.db.get_indexes("job")
                     if i.columns == ["project_id", "is_ancestor_of_final", "id"]]
            assert index and not index[0].unique
            plan = " ".join(str(r) for r in dbmod.db.execute_sql(
                "EXPLAIN QUERY PLAN SELECT id FROM job WHERE project_id = ? AND is_ancestor_of_final = ?",
                (1, True)).fetchall())
            assert "COVERING INDEX" in plan
            flags = {j.uid: (j.is_final, j.is_ancestor_of_final) for j in Job.select()}
            assert flags == {"J1": (False, True), "J2": (True, False), "J3": (False, False)}
            assert finals.recompute_ancestor_flags(Project.get(), write_manifests=False) == set()  # consistent
    finally:
        dbmod.close_database()


@pytest.mark.skipif(not os.environ.get("CRYODESK_TEST_PG_URL"), reason="set CRYODESK_TEST_PG_URL")
def test_a_v5_postgresql_database_is_brought_to_v6():
    """The steps record each version with an upsert PostgreSQL has (it has no INSERT OR REPLACE)."""
    from cryodesk.db.models import ALL_MODELS

    url = os.environ["CRYODESK_TEST_PG_URL"]
    dbmod.open_database(url)
    try:
        with dbmod.db.connection_context():
            dbmod.db.drop_tables(ALL_MODELS, cascade=True)
    finally:
        dbmod.close_database()
    dbmod.open_database(url)  # a fresh v6 database, made into a v5 one
    try:
        with dbmod.db.connection_context():
            name = [i.name for i in dbmod.db.get_indexes("job")
                    if i.columns == ["project_id", "is_ancestor_of_final", "id"]]
            assert name
            dbmod.db.execute_sql(f'DROP INDEX "{name[0]}"')
            Meta.update(value="5").where(Meta.key == "schema_version").execute()
    finally:
        dbmod.close_database()
    dbmod.open_database(url)
    try:
        with dbmod.db.connection_context():
            assert Meta.get_by_id("schema_version").value == str(SCHEMA_VERSION) == "6"
            assert [i for i in dbmod.db.get_indexes("job") if i.columns == ["project_id", "is_ancestor_of_final", "id"]]
    finally:
        dbmod.close_database()
