"""SIGKILL at random points of a move across two file systems (a tmpfs), and of a project delete.

A child process (move_child.py) is killed just before its N-th file-system or
database step; a second one does what the next command does first; then the
state is compared: always exactly one complete copy of the project, the one
the database points to (move), or a project that is either whole and
consistent or entirely gone (delete).  Both backends.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mounts import small_tmpfs

from cryodesk.core import jobs, ownership, project_lifecycle
from cryodesk.db.models import (
    AppliedItem,
    Connection,
    Job,
    JobWorkspace,
    OutputFile,
    Project,
    ProjectOp,
    Session,
    Workspace,
)

from .helpers import build, tree

CHILD = Path(__file__).with_name("move_child.py")
POINTS = 28
TABLES = (Project, Workspace, Session, Job, JobWorkspace, Connection, OutputFile)


def _child(*args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    return subprocess.run([sys.executable, str(CHILD), *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env)


def _points(steps: int, seed: int) -> list[int]:
    rng = random.Random(seed)
    return sorted(set(rng.sample(range(1, steps + 1), min(POINTS, steps))) | {1, 2, steps - 1, steps})


def _restore(template: Path, src: Path, fs: Path, project) -> None:
    for path in (src, *fs.iterdir()):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif os.path.lexists(path):
            path.unlink()
    subprocess.run(["cp", "-a", str(template), str(src)], check=True)  # (-a: hard links stay hard links)
    Project.update(directory=str(src)).where(Project.id == project.id).execute()
    ProjectOp.delete().execute()


@pytest.mark.slow
def test_sigkill_anywhere_in_a_move_leaves_one_complete_copy_the_database_points_to(dbs, tmp_path):
    url = dbs.url[dbs.a]
    raw = tmp_path / "raw"
    with dbs.use(dbs.a), small_tmpfs(tmp_path, "64m") as fs:
        p, _ = build("Crash", tmp_path / "work" / "proj", raw, nbytes=20 << 20)  # a few chunks of copying
        src, dst = Path(p.directory), fs / "apo"
        original = tree(src)
        template = tmp_path / "template"
        subprocess.run(["cp", "-a", str(src), str(template)], check=True)
        done = _child("move", url, dst, 0)
        assert done.returncode == 0, done.stderr
        info = json.loads(done.stdout)
        assert info["mode"] == "copy"
        assert Project.get_by_id(p.id).directory == str(dst) and tree(dst) == original
        ends = {"source": 0, "dest": 0}
        for n in _points(info["steps"], seed=len(url)):
            _restore(template, src, fs, p)
            run = _child("move", url, dst, n)
            assert run.returncode == -9, (n, run.returncode, run.stderr)
            rec = _child("recover", url)
            assert rec.returncode == 0, (n, rec.stderr)
            at = Path(Project.get_by_id(p.id).directory)
            assert ProjectOp.select().count() == 0, n
            assert at in (src, dst), (n, at)
            other = dst if at == src else src
            assert not os.path.lexists(other), f"kill at step {n}/{info['steps']}: two copies ({at} and {other})"
            assert tree(at) == original, f"kill at step {n}/{info['steps']}: the copy at {at} is not complete"
            assert ownership.is_ours(ownership.read_lock(at))
            left = sorted(x.name for x in fs.iterdir() if x.name != "apo")
            assert left in ([], [".apo.cryodesk-op.lock"]), (n, left)  # (an empty lock file may stay)
            assert (raw / "movie.mrc").read_bytes() == b"raw movie " * 300
            ends["source" if at == src else "dest"] += 1
        assert ends["source"] and ends["dest"], ends  # kills before and after the switch were both tried
        assert jobs.create_job(Project.get_by_id(p.id), "l_source", "W1")  # and it is writable where it is


@pytest.mark.slow
def test_sigkill_anywhere_in_a_project_delete_leaves_it_whole_or_gone(dbs, tmp_path):
    url = dbs.url[dbs.a]
    raw = tmp_path / "raw"
    with dbs.use(dbs.a):
        p, _ = build("Doomed", tmp_path / "work" / "proj", raw)
        src = Path(p.directory)
        template = tmp_path / "template"
        subprocess.run(["cp", "-a", str(src), str(template)], check=True)
        snapshot = [(m, list(m.select().dicts())) for m in TABLES]
        done = _child("delete", url, 0)
        assert done.returncode == 0, done.stderr
        info = json.loads(done.stdout)
        assert info["deleted"] and not src.exists() and Project.select().count() == 0
        outcomes = {"gone": 0, "kept": 0}
        for n in _points(info["steps"], seed=7):
            _reset_db(snapshot)
            if src.exists():
                shutil.rmtree(src)
            for tomb in src.parent.glob(".proj.cryodesk-deleted-*"):
                shutil.rmtree(tomb)
            subprocess.run(["cp", "-a", str(template), str(src)], check=True)
            run = _child("delete", url, n)
            assert run.returncode == -9, (n, run.returncode, run.stderr)
            rec = _child("recover", url)
            assert rec.returncode == 0, (n, rec.stderr)
            assert ProjectOp.select().count() == 0
            assert not list(src.parent.glob(".proj.cryodesk-deleted-*")), n
            row = Project.get_or_none(Project.id == p.id)
            if row is None:
                assert not os.path.lexists(src), n
                outcomes["gone"] += 1
            else:  # whole and consistent: every job it lists has its directory, every directory its job
                on_disk = sorted(d.name for d in src.glob("J*"))
                listed = sorted(j.uid for j in Job.select().where(Job.project == row.id))
                assert on_disk == listed, (n, on_disk, listed)
                assert (src / "project.json").is_file()
                out = project_lifecycle.execute_delete(row, project_lifecycle.plan_delete(row, include_finals=True))
                assert out["deleted"], (n, out)  # and deleting it again finishes the job
                outcomes["kept"] += 1
            assert (raw / "movie.mrc").read_bytes() == b"raw movie " * 300  # never followed a link
        assert outcomes["gone"] and outcomes["kept"], outcomes


def _reset_db(snapshot) -> None:
    """Put the project's rows back as they were (what a restore of the database would do)."""
    Project.delete().execute()  # (the rest cascades)
    ProjectOp.delete().execute()
    AppliedItem.delete().execute()
    for model, rows_ in snapshot:
        for row in rows_:
            model.insert(**row).execute()
