"""``project move``: a rename on one file system; copy, verify, switch, remove across two (a tmpfs)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from mounts import small_tmpfs

from cryodesk.base.errors import DataError, Refused, UsageError
from cryodesk.core import jobs, lifecycle, project_lifecycle, project_move, projects
from cryodesk.db.models import Project, ProjectOp

from .helpers import build, rows, tree


def _check_moved(p, before_tree, before_rows, src: Path, dst: Path, raw: Path):
    assert not os.path.lexists(src), "the old copy is gone"
    assert Project.get_by_id(p.id).directory == str(dst)
    assert tree(dst) == before_tree  # every file, byte for byte; links as links with the same target
    assert {**rows(p), "directory": None} == {**before_rows, "directory": None}
    assert os.readlink(dst / "J1" / "movie.mrc") == str(raw / "movie.mrc")  # moved as a link...
    assert (raw / "movie.mrc").read_bytes() == b"raw movie " * 300  # ...its target untouched
    st1, st2 = os.stat(dst / "J2" / "step.bin"), os.stat(dst / "J2" / "sub" / "hard.bin")
    assert st1.st_ino == st2.st_ino  # a hard link stays one
    assert ProjectOp.select().count() == 0
    assert not list(dst.parent.glob(".*cryodesk*"))  # no temp copy, no lock file left beside it


def test_move_on_one_file_system_is_a_rename(dbs, tmp_path):
    with dbs.use(dbs.a):
        p, _ = build("Mv", tmp_path / "mv", tmp_path / "raw")
        src = Path(p.directory)
        before_tree, before_rows = tree(src), rows(p)
        ino = os.stat(src / "J1" / "data.bin").st_ino
        (tmp_path / "new").mkdir()
        plan = project_move.plan_move(p, tmp_path / "new" / "mv")
        assert plan.mode == "rename" and plan.links == 1 and plan.hardlinks == 1 and not plan.problems
        out = project_move.move_project(p, tmp_path / "new" / "mv")
        dst = tmp_path / "new" / "mv"
        assert out["mode"] == "rename" and out["errors"] == []
        _check_moved(p, before_tree, before_rows, src, dst, tmp_path / "raw")
        assert os.stat(dst / "J1" / "data.bin").st_ino == ino  # renamed, not copied
        assert jobs.create_job(p, "l_source", "W1").uid == "J5"


def test_move_across_file_systems_copies_verifies_then_removes_the_old_copy(dbs, tmp_path):
    with dbs.use(dbs.a), small_tmpfs(tmp_path, "64m") as fs:
        p, _ = build("Across", tmp_path / "across", tmp_path / "raw", nbytes=3 << 20)
        (Path(p.directory) / "J3" / "rel_link").symlink_to("../J1/data.bin")  # relative, inside: fine
        (Path(p.directory) / "J3" / "escaping").symlink_to("../../raw/movie.mrc")  # relative, leaves the project
        (Path(p.directory) / "J3" / "abs_inside").symlink_to(Path(p.directory) / "J1" / "data.bin")
        src = Path(p.directory)
        before_tree, before_rows = tree(src), rows(p)
        seen = []
        plan = project_move.plan_move(p, fs / "apo")
        assert plan.mode == "copy" and plan.escaping_links == ["J3/escaping"]
        assert plan.inside_links == ["J3/abs_inside"]  # (listed: they point at the old place afterwards)
        out = project_move.move_project(p, fs / "apo", progress=lambda f, m: seen.append(f))
        assert out["mode"] == "copy" and out["bytes"] >= 3 << 20 and out["errors"] == []
        _check_moved(p, before_tree, before_rows, src, fs / "apo", tmp_path / "raw")
        assert seen and seen == sorted(seen) and seen[-1] == 1.0  # progress, monotonic, to the end
        assert (fs / "apo" / ".cryodesk" / "reserve").is_file()  # the deletion reserve made again there
        # and back again (tmpfs -> disk), then it is an ordinary writable project
        out = project_move.move_project(p, tmp_path / "back")
        assert out["mode"] == "copy" and tree(tmp_path / "back") == before_tree
        assert projects.create_workspace(p, "after the move").uid == "W2"


def test_a_failed_verification_keeps_the_project_where_it_was(dbs, tmp_path, monkeypatch):
    with dbs.use(dbs.a), small_tmpfs(tmp_path, "16m") as fs:
        p, _ = build("Verify", tmp_path / "v", tmp_path / "raw")
        src = Path(p.directory)
        before = tree(src)
        monkeypatch.setattr(project_move, "_crc_of", lambda path, buf=None: 12345)  # as if the disk returned other bytes
        with pytest.raises(DataError, match="does not match the original"):
            project_move.move_project(p, fs / "v")
        assert tree(src) == before and Project.get_by_id(p.id).directory == str(src)
        assert list(fs.iterdir()) == [] and ProjectOp.select().count() == 0


def test_not_enough_room_is_refused_before_anything_is_copied(dbs, tmp_path):
    with dbs.use(dbs.a), small_tmpfs(tmp_path, "1m") as fs:
        p, _ = build("Big", tmp_path / "big", tmp_path / "raw", nbytes=2 << 20)
        with pytest.raises(DataError, match="free; the copy needs"):
            project_move.move_project(p, fs / "big")
        assert list(fs.iterdir()) == []


def test_move_refusals(dbs, tmp_path):
    with dbs.use(dbs.a):
        p, js = build("Ref", tmp_path / "ref", tmp_path / "raw")
        src = Path(p.directory)
        (tmp_path / "taken").mkdir()
        with pytest.raises(UsageError, match="must be a new directory"):
            project_move.move_project(p, tmp_path / "taken")
        with pytest.raises(UsageError, match="inside P1's own directory"):
            project_move.move_project(p, src / "J9")
        with pytest.raises(UsageError, match="make it first"):
            project_move.move_project(p, tmp_path / "no" / "such" / "dir")
        other, _ = build("Other", tmp_path / "other", tmp_path / "raw")
        with pytest.raises(UsageError, match="inside the directory of project P2"):
            project_move.move_project(p, Path(other.directory) / "nested")
        os.mkfifo(src / "J2" / "fifo")
        with pytest.raises(DataError, match="socket, FIFO or device"):
            project_move.move_project(p, tmp_path / "fifo")
        os.unlink(src / "J2" / "fifo")
        plan = lifecycle.plan_queue(p, [jobs.get_job(p, "J4")])
        lifecycle.mark_queued(plan.jobs)
        with pytest.raises(Refused, match="cannot move it while jobs are queued or running"):
            project_move.move_project(p, tmp_path / "busy")
        assert Project.get_by_id(p.id).directory == str(src) and ProjectOp.select().count() == 0


def test_an_archived_project_can_be_moved_and_unarchived_there(dbs, tmp_path):
    with dbs.use(dbs.a), small_tmpfs(tmp_path, "16m") as fs:
        p, _ = build("Tape", tmp_path / "tape", tmp_path / "raw")
        project_lifecycle.archive_project(p)
        before = tree(Path(p.directory))
        out = project_move.move_project(p, fs / "longterm")
        assert out["mode"] == "copy" and tree(fs / "longterm") == before
        q = Project.get_by_id(p.id)
        assert q.archived_at is not None and q.directory == str(fs / "longterm")
        q = project_lifecycle.unarchive_project(q)
        assert q.archived_at is None


MOVER = """
import json, sys, time
from cryodesk import db as dbmod
from cryodesk.core import project_move, project_ops

def hold(step):
    if step == "sync":  # the copy is made, not yet verified: the project must not change now
        print("copied", flush=True)
        time.sleep(4)

project_ops.STEP_HOOK = hold
dbmod.open_database(sys.argv[1])
with dbmod.db.connection_context():
    out = project_move.move_project("P1", sys.argv[2])
    print(json.dumps(out["mode"]), flush=True)
"""


def test_writes_are_refused_while_a_live_process_moves_the_project(dbs, tmp_path):
    import subprocess
    import sys

    from cryodesk.core.guard import ProjectReadOnly

    with dbs.use(dbs.a), small_tmpfs(tmp_path, "16m") as fs:
        p, _ = build("Live", tmp_path / "live", tmp_path / "raw")
        env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
        mover = subprocess.Popen([sys.executable, "-c", MOVER, dbs.url[dbs.a], str(fs / "live")],
                                 stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert mover.stdout.readline().strip() == "copied"
            with pytest.raises(ProjectReadOnly, match=r"P1 is being moved to .*live \(by process \d+"):
                jobs.create_job(p, "l_source", "W1")  # its mover is alive: nothing is rolled back under it
            assert projects.project_summaries()[0]["state"] == "moving"
            assert mover.stdout.readline().strip() == '"copy"'
        finally:
            mover.wait(60)
        assert mover.returncode == 0
        assert Project.get_by_id(p.id).directory == str(fs / "live")
        assert jobs.create_job(projects.get_project("P1"), "l_source", "W1").uid == "J5"
