"""The size scanner: exact, never follows symlinks, same result in parallel."""

from __future__ import annotations

import os
from pathlib import Path

from cryodesk.core import jobs, projects, runner, sizes
from cryodesk.db.models import Job, Project, Session


def _reference(root: Path) -> int:
    """``du -sb``'s sum: every entry's own size, directories and links included (nothing followed)."""
    total = os.lstat(root).st_size
    for dirpath, dirs, files in os.walk(root):  # os.walk does not follow directory links
        for f in files + dirs:
            total += os.lstat(os.path.join(dirpath, f)).st_size
    return total


def _tree(root: Path, raw: Path) -> None:
    for j in range(1, 41):
        d = root / f"J{j}" / "sub"
        d.mkdir(parents=True)
        (root / f"J{j}" / "job.json").write_text("{}" * j)
        for k in range(j % 5 + 1):
            (d / f"f{k}.bin").write_bytes(b"x" * (j * 10 + k))
    (root / "S1").mkdir()
    (root / "S1" / "movie.tif").write_bytes(b"s" * 5000)
    (root / "notes.txt").write_text("hello")
    (root / "J3" / "raw").symlink_to(raw, target_is_directory=True)
    (root / "J4" / "movie.mrc").symlink_to(raw / "a.mrc")
    (root / "J5" / "loop").symlink_to(root, target_is_directory=True)  # a link back into the project


def test_scan_matches_a_reference_walk_serial_and_parallel(tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.mrc").write_bytes(b"r" * 7000)
    (raw / "b.mrc").write_bytes(b"r" * 3000)
    root = tmp_path / "proj"
    root.mkdir()
    _tree(root, raw)
    serial = sizes.scan_project_dir(root, workers=1)
    monkeypatch.setattr(sizes, "PARALLEL_MIN_TASKS", 2)
    parallel = sizes.scan_project_dir(root, workers=2)
    assert serial == parallel
    assert serial.total == _reference(root)
    dir_entry = os.lstat(root / "S1").st_size
    assert serial.sessions == {1: 5000 + dir_entry} and serial.other_bytes == 5 + os.lstat(root).st_size
    j7 = root / "J7"
    assert serial.jobs[7] == sizes.job_size(j7) == 70 + 71 + 72 + 14 + os.lstat(j7).st_size + \
        os.lstat(j7 / "sub").st_size  # files, job.json ("{}" * 7) and the two directories
    assert serial.jobs_bytes == serial.total - serial.sessions[1] - serial.other_bytes
    assert serial.linked_bytes == 10000  # raw/ once (a.mrc is inside it), the loop link not at all


def test_refresh_records_jobs_sessions_and_staleness(project):
    j = runner.run_job(project, jobs.create_job(project, "c_source", "W1", params={"nbytes": "2000"}))
    s = projects.create_session(project, "live")
    (Path(project.directory) / "S1" / "m.tif").write_bytes(b"s" * 300)
    Job.update(size_bytes=1).where(Job.id == j.id).execute()  # a wrong recorded size gets fixed
    p = Project.get_by_id(project.id)
    d = sizes.refresh_project_size(p)
    s1 = Path(project.directory) / "S1"
    assert not d["stale"] and d["sessions_bytes"] == 300 + os.lstat(s1).st_size and d["sessions"] == 1
    assert Session.get_by_id(s.id).size_bytes == 300 + os.lstat(s1).st_size
    assert Job.get_by_id(j.id).size_bytes == sizes.job_size(Path(project.directory) / "J1") > 2000
    sizes.mark_jobs_changed(p)
    assert sizes.is_stale(Project.get_by_id(project.id))
