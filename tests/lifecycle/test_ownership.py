"""One project directory, one database: the ownership lock, attach (twice, of a copy, --force), detach.

Every test runs on SQLite and on PostgreSQL (two databases of the backend).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from cryodesk.base.errors import CryodeskError, DataError, UsageError
from cryodesk.core import actions, attach, finals, jobs, manifest, ownership, project_lifecycle, projects
from cryodesk.core.guard import ProjectReadOnly
from cryodesk.db.models import Job, Meta, Project

from .helpers import build, manifests, rows, tree


def test_create_writes_a_lock_naming_this_database_and_an_id(dbs, tmp_path):
    p, _ = build("A", tmp_path / "a", tmp_path / "raw")
    lock = json.loads((Path(p.directory) / ".cryodesk" / "owner.json").read_text())
    assert lock["database"] == Meta.get_by_id("instance_id").value == ownership.instance_id()
    assert lock["project"] == p.uuid and len(p.uuid) == 32 and lock["uid"] == "P1"
    assert json.loads((Path(p.directory) / "project.json").read_text())["id"] == p.uuid
    with dbs.use(dbs.b):
        assert ownership.instance_id() != lock["database"]  # every database has its own


def test_two_databases_on_one_directory_refused_then_force_takes_over(dbs, tmp_path):
    """The issue's story: a second database unmarked and deleted a job the first still showed as final."""
    with dbs.use(dbs.a):
        p, js = build("Shared", tmp_path / "shared", tmp_path / "raw")
        pdir = Path(p.directory)
        label_a = ownership.database_label()
    with dbs.use(dbs.b):
        with pytest.raises(ownership.NotOwned, match="owned by another database") as err:
            attach.attach_project(pdir)
        assert label_a in str(err.value) and "--force" in str(err.value)
        assert projects.list_projects() == []
        q = attach.attach_project(pdir, force=True)
        assert q.taken_over_from["database"] != ownership.instance_id()
        lock = ownership.read_lock(pdir)
        assert ownership.is_ours(lock) and lock["action"] == "taken over"
        assert lock["previous"]["label"] == label_a  # the takeover is recorded in the directory
        assert rows(q)["jobs"] == rows_a_jobs(dbs, p)
        # the new owner may do what the first one forbade nobody: unmark and delete
        assert finals.set_final(q, [jobs.get_job(q, "J3")], final=False).ok
        assert actions.delete_jobs(q, [jobs.get_job(q, "J3")]).ok
    with dbs.use(dbs.a):
        before = tree(pdir)
        j3 = jobs.get_job(p, "J3")  # the first database still shows it as final...
        assert j3.is_final
        for attempt in (lambda: actions.delete_jobs(p, [j3]),  # ...but can no longer act on its stale view
                        lambda: finals.set_final(p, [j3], final=False),
                        lambda: jobs.create_job(p, "l_source", "W1"),
                        lambda: projects.create_workspace(p, "x"),
                        lambda: jobs.set_params(p, jobs.get_job(p, "J4"), {"nbytes": 5}),
                        lambda: actions.link(p, [jobs.get_job(p, "J1")], "W1")):
            with pytest.raises(CryodeskError, match="owned by another database") as err:
                attach_result = attempt()
                if hasattr(attach_result, "ok"):
                    assert attach_result.ok, attach_result
            assert "taken over from this database" in str(err.value)
        assert tree(pdir) == before
        assert projects.project_summaries()[0]["state"] == "elsewhere"
        # and it can hand it back: detach drops only its own stale rows, the directory is untouched
        out = project_lifecycle.detach_project(p)
        assert out["foreign"] and not out["lock_removed"]
        assert tree(pdir) == before and ownership.is_ours(ownership.read_lock(pdir)) is False


def rows_a_jobs(dbs, p):
    with dbs.use(dbs.a):
        return rows(p)["jobs"]


def test_attach_twice_never_duplicates(dbs, tmp_path):
    with dbs.use(dbs.a):
        p, _ = build("Twice", tmp_path / "t", tmp_path / "raw")
        pdir = Path(p.directory)
        with pytest.raises(UsageError, match="already attached to this database as P1"):
            attach.attach_project(pdir)
        with pytest.raises(UsageError, match="already attached"):
            attach.attach_project(pdir, force=True)
        copy = tmp_path / "copy"
        shutil.copytree(pdir, copy, symlinks=True)
        with pytest.raises(UsageError, match="is a copy of P1"):
            attach.attach_project(copy)
        with pytest.raises(UsageError, match="is a copy of P1"):
            attach.attach_project(copy, force=True)
        # moved by hand: recognised by its id, pointed at, never attached as P2
        shutil.rmtree(copy)
        moved = tmp_path / "moved"
        os.rename(pdir, moved)
        with pytest.raises(UsageError, match="is P1 of this database.*project move P1"):
            attach.attach_project(moved)
        assert [q.uid for q in projects.list_projects()] == ["P1"]
        from cryodesk.core import project_move

        out = project_move.move_project(p, moved)
        assert out["mode"] == "rebind"
        assert Project.get_by_id(p.id).directory == str(moved)
        assert [q.uid for q in projects.list_projects()] == ["P1"]
        assert jobs.create_job(p, "l_source", "W1").uid == "J5"  # writable at its new place


def test_detach_then_attach_elsewhere_keeps_everything_and_touches_no_data(dbs, tmp_path):
    with dbs.use(dbs.a):
        p, _ = build("Roundtrip", tmp_path / "r", tmp_path / "raw")
        pdir = Path(p.directory)
        before, disk = rows(p), tree(pdir)
        out = project_lifecycle.detach_project(p)
        assert out["lock_removed"] and out["manifests"] == 4
        assert projects.list_projects() == [] and Job.select().count() == 0
        assert not ownership.lock_path(pdir).exists()
        assert tree(pdir) == disk  # manifests rewritten with the same content, nothing else touched
        with pytest.raises(CryodeskError, match="no project P1"):
            projects.get_project("P1")
    with dbs.use(dbs.b):
        q = attach.attach_project(pdir)  # not owned by anyone: no --force needed
        assert q.taken_over_from is None and q.uuid == p.uuid
        after = rows(q)
        assert after["jobs"] == before["jobs"] and after["workspaces"] == before["workspaces"]
        assert ownership.is_ours(ownership.read_lock(pdir))
    with dbs.use(dbs.a):  # and the first database cannot take it back without saying so
        with pytest.raises(ownership.NotOwned):
            attach.attach_project(pdir)


def test_a_project_from_before_locks_is_adopted_by_its_first_write(dbs, tmp_path):
    with dbs.use(dbs.a):
        p, _ = build("Old", tmp_path / "old", tmp_path / "raw")
        pdir = Path(p.directory)
        # as cryodesk left it before this issue: no lock, no id
        ownership.lock_path(pdir).unlink()
        doc = json.loads((pdir / "project.json").read_text())
        doc.pop("id")
        (pdir / "project.json").write_text(json.dumps(doc))
        Project.update(uuid=None).where(Project.id == p.id).execute()
        assert rows(p)["jobs"]  # reading changes nothing
        assert not ownership.lock_path(pdir).exists()
    with dbs.use(dbs.b):  # a second database attached it too (allowed then): it gets the same id
        q = attach.attach_project(pdir)
        ownership.lock_path(pdir).unlink()  # ... as it would have before locks
        Project.update(uuid=None).where(Project.id == q.id).execute()
    with dbs.use(dbs.a):
        p = projects.get_project("P1")
        assert finals.set_final(p, [jobs.get_job(p, "J2")]).ok  # the first write adopts it
        lock = ownership.read_lock(pdir)
        assert ownership.is_ours(lock) and lock["action"] == "adopted"
        pid = Project.get_by_id(p.id).uuid
        assert pid and json.loads((pdir / "project.json").read_text())["id"] == pid == lock["project"]
    with dbs.use(dbs.b):  # the other one is now refused, not silently writing
        q = projects.get_project("P1")
        with pytest.raises(ProjectReadOnly, match="owned by another database"):
            finals.set_final(q, [jobs.get_job(q, "J2")], final=False)
        assert jobs.get_job(q, "J2").is_final is False  # its view is stale, and read-only


def test_a_symlinked_or_broken_lock_is_refused(dbs, tmp_path):
    with dbs.use(dbs.a):
        p, _ = build("L", tmp_path / "l", tmp_path / "raw")
        lock = ownership.lock_path(p.directory)
        target = tmp_path / "elsewhere.json"
        target.write_text(lock.read_text())
        lock.unlink()
        lock.symlink_to(target)
        with pytest.raises(DataError, match="is a symlink"):
            jobs.create_job(p, "l_source", "W1")
        lock.unlink()
        lock.write_text("{not json")
        with pytest.raises(DataError, match="unreadable"):
            jobs.create_job(p, "l_source", "W1")
        assert json.loads(target.read_text())["uid"] == "P1"  # never written through


def test_manifests_are_never_written_into_another_databases_directory(dbs, tmp_path):
    with dbs.use(dbs.a):
        p, _ = build("M", tmp_path / "m", tmp_path / "raw")
        pdir = Path(p.directory)
    with dbs.use(dbs.b):
        attach.attach_project(pdir, force=True)
    with dbs.use(dbs.a):
        before = manifests(pdir)
        for job in jobs.list_jobs(p):  # the last line of defence, below every service
            with pytest.raises(ownership.NotOwned):
                manifest.write_job(job, pdir)
        with pytest.raises(ownership.NotOwned):
            manifest.write_project(Project.get_by_id(p.id))
        assert manifests(pdir) == before


ATTACH_CHILD = """
import json, sys, time
sys.path.insert(0, sys.argv[3])
import jobtypes
jobtypes.family("l")
from cryodesk import db as dbmod
from cryodesk.base import hooks
from cryodesk.base.errors import CryodeskError
from cryodesk.core import attach
hooks.register("attach.lock_read", lambda **kw: time.sleep(1.0))  # both read "no lock" if nothing serialises them
dbmod.open_database(sys.argv[1])
with dbmod.db.connection_context():
    try:
        print(json.dumps({"ok": attach.attach_project(sys.argv[2]).uid}))
    except CryodeskError as exc:
        print(json.dumps({"ok": None, "error": str(exc)}))
"""


def test_two_databases_attaching_one_directory_at_once_take_turns(dbs, tmp_path):
    import subprocess
    import sys

    with dbs.use(dbs.a):
        p, _ = build("Race", tmp_path / "race", tmp_path / "raw")
        pdir = Path(p.directory)
        project_lifecycle.detach_project(p)  # free: both may try
    tests_dir = str(Path(__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    procs = [subprocess.Popen([sys.executable, "-c", ATTACH_CHILD, dbs.url[d], str(pdir), tests_dir],
                              stdout=subprocess.PIPE, text=True, env=env) for d in (dbs.a, dbs.b)]
    results = [json.loads(proc.communicate(timeout=120)[0]) for proc in procs]
    winners = [r for r in results if r["ok"]]
    assert len(winners) == 1, results
    loser = next(r for r in results if not r["ok"])
    assert "owned by another database" in loser["error"]
    winner_db = dbs.a if results[0]["ok"] else dbs.b
    with dbs.use(winner_db):
        assert ownership.is_ours(ownership.read_lock(pdir))
