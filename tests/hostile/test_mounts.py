"""A file system mounted inside a job directory: deleting or clearing the job must not empty it.

Users bind-mount (or NFS-mount) raw data into a job's directory as often as
they symlink it.  cryodesk deletes by renaming into the project's trash and
then ``rmtree`` of the trash: a rename of a directory that *contains* a
mount point succeeds (the mount moves with it), and ``rmtree`` crosses
into the mount, so the raw data on the other file system is deleted.
"""

from __future__ import annotations

import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest

from cryodesk.core import actions, jobs, runner
from cryodesk.db.models import Job


@contextmanager
def bind_mount(src: Path, dest: Path):
    dest.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "--bind", str(src), str(dest)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot bind-mount here ({proc.stderr.strip() or 'not permitted'})")
    try:
        yield dest
    finally:
        # the mount may have moved with its directory into the trash: unmount wherever it is now
        for line in Path("/proc/self/mounts").read_text().splitlines():
            target = line.split()[1]
            if target.endswith("/" + dest.name):
                subprocess.run(["umount", "-l", target], capture_output=True)


def _raw(tmp_path: Path) -> Path:
    raw = tmp_path / "raw_on_other_fs"
    raw.mkdir()
    (raw / "movie_000.tif").write_bytes(b"precious raw movie" * 100)
    return raw


@pytest.mark.parametrize("depth", ["top", "nested"])
def test_delete_never_empties_a_mount_inside_the_job_dir(project, tmp_path, depth):
    raw = _raw(tmp_path)
    j = jobs.create_job(project, "h_source", "W1", params={"nbytes": 100})
    runner.run_job(project, j)
    jdir = Path(project.directory) / j.directory
    where = jdir / "rawdata" if depth == "top" else jdir / "imported" / "rawdata"
    with bind_mount(raw, where):
        result = actions.delete_jobs(project, [Job.get_by_id(j.id)])
        # whatever cryodesk decides (refuse, or delete the job but not the mount), the raw data stays
        assert (raw / "movie_000.tif").read_bytes() == b"precious raw movie" * 100, result.to_dict()


def test_clear_never_empties_a_mount_inside_the_job_dir(project, tmp_path):
    raw = _raw(tmp_path)
    j = jobs.create_job(project, "h_source", "W1", params={"nbytes": 100})
    runner.run_job(project, j)
    jdir = Path(project.directory) / j.directory
    with bind_mount(raw, jdir / "imported" / "rawdata"):
        result = actions.clear_jobs(project, [Job.get_by_id(j.id)])
        assert (raw / "movie_000.tif").read_bytes() == b"precious raw movie" * 100, result.to_dict()
