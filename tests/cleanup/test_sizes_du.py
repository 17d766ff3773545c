"""Issue 12, item 7: a job's size is its whole directory as ``du -sb`` counts it (job.json, logs,
directory entries and symlinks included, hard links once); the project total likewise; raw data
reached through links is reported apart."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from cryodesk.core import actions, finals, jobs, runner, sizes
from cryodesk.db.models import Job, Project

pytestmark = pytest.mark.skipif(shutil.which("du") is None, reason="needs du")


def du_sb(path: Path) -> int:
    """What ``du -sb PATH`` reports on this machine."""
    return int(subprocess.run(["du", "-sb", str(path)], check=True, capture_output=True, text=True).stdout.split()[0])


def _tree(root: Path, raw: Path) -> None:
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "f.bin").write_bytes(b"x" * 1234)
    (root / "a" / "g.bin").write_bytes(b"y" * 77)
    (root / "a" / "b" / "c" / "h.txt").write_text("hello")
    os.link(root / "f.bin", root / "a" / "hard.bin")  # a hard link: counted once
    (root / "a" / "raw").symlink_to(raw, target_is_directory=True)  # the link itself counts, not its target
    (root / "movie.mrc").symlink_to(raw / "m.mrc")
    (root / "dangling").symlink_to(root / "nothing")
    many = root / "many"
    many.mkdir()
    for k in range(300):  # a directory whose own size grew past one block
        (many / f"file_with_a_long_name_{k:04d}.dat").write_bytes(b"")


def test_du_size_matches_du_sb_exactly(tmp_path):
    from cryodesk.base.fsio import du_size

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "m.mrc").write_bytes(b"r" * 50_000)
    root = tmp_path / "tree"
    root.mkdir()
    _tree(root, raw)
    assert du_size(root) == du_sb(root)
    for sub in ("a", "a/b", "empty", "many", "f.bin", "movie.mrc", "dangling"):
        assert du_size(root / sub) == du_sb(root / sub), sub
    assert du_size(tmp_path / "missing") == 0


def test_job_size_is_du_of_its_directory_and_the_project_total_too(project):
    j1 = runner.run_job(project, jobs.create_job(project, "c_source", "W1", params={"nbytes": "1069"}))
    j2 = runner.run_job(project, jobs.create_job(project, "c_step", "W1", [jobs.InputSpec("particles", j1.uid)],
                                                 {"nbytes": "300"}))
    pdir = Path(project.directory)
    for j in (j1, j2):
        assert Job.get_by_id(j.id).size_bytes == du_sb(pdir / j.directory), j.uid
    # rewriting the manifests (mark final, a status change) keeps the recorded size exact
    finals.set_final(project, [Job.get_by_id(j2.id)])
    for j in (j1, j2):
        assert Job.get_by_id(j.id).size_bytes == du_sb(pdir / j.directory), j.uid
    new = jobs.create_job(project, "c_step", "W1", [jobs.InputSpec("particles", j1.uid)], {"nbytes": "10"})
    assert Job.get_by_id(new.id).size_bytes == du_sb(pdir / new.directory)  # a building job: dir + job.json
    d = sizes.refresh_project_size(Project.get_by_id(project.id))
    assert d["size_bytes"] == du_sb(pdir)
    assert d["jobs_bytes"] == sum(du_sb(pdir / f"J{n}") for n in (1, 2, 3))
    # a clear leaves the directory and its record: that is the job's size afterwards, and what it freed
    finals.set_final(project, [Job.get_by_id(j2.id)], False)
    before = du_sb(pdir / j1.directory)
    json_before = os.lstat(pdir / j1.directory / "job.json").st_size
    result = actions.clear_jobs(project, [Job.get_by_id(j1.id)])
    assert result.ok
    after = Job.get_by_id(j1.id).size_bytes
    assert after == du_sb(pdir / j1.directory) == os.lstat(pdir / j1.directory).st_size + \
        os.lstat(pdir / j1.directory / "job.json").st_size
    assert result.bytes_freed == before - os.lstat(pdir / j1.directory).st_size - json_before
    sizes.refresh_project_size(Project.get_by_id(project.id))
    assert sizes.size_summary(Project.get_by_id(project.id))["size_bytes"] == du_sb(pdir)
