"""Real subprocesses sharing one SSD directory: copy once, kill -9 mid-copy, concurrent load."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from cryodesk.base.fsio import tree_size
from cryodesk.cache import Cache

from .conftest import MB, config, finish, start_worker


def _wait_for(path: Path, proc, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.01)


def test_two_jobs_copy_the_same_files_once(stacks, ssd, tmp_path):
    files = stacks(6, n=200)  # 13 steps of 64 KiB each, 40 ms per step: ~1.6 s of copying
    total = sum(f.stat().st_size for f in files)
    # a copies its first chunk, then waits until b has started up (slow on a loaded machine) and
    # is about to ask the cache: b then finds a's locks held while a copies on
    a = start_worker(ssd, files, tmp_path / "a.json", slow=0.04, hold=0.2, gate=tmp_path / "b.json.staging")
    _wait_for(Path(f"{tmp_path / 'a.json'}.copying"), a)
    b = start_worker(ssd, files, tmp_path / "b.json", hold=0.2)
    ra, rb = finish(a, tmp_path / "a.json"), finish(b, tmp_path / "b.json")
    assert ra["errors"] == [] and rb["errors"] == []
    assert ra["bytes_copied"] + rb["bytes_copied"] == total  # every byte copied exactly once
    assert ra["files_copied"] == 6 and rb["files_copied"] == 0
    assert any("waiting for requested files to become unlocked" in m for m in rb["messages"])
    assert rb["cached"] == ra["cached"] and all(p.startswith(str(ssd)) for p in rb["cached"].values())


def test_sigkill_of_the_copier_never_leaves_a_lock_or_a_partial_file(stacks, ssd, tmp_path):
    files = stacks(2, n=400)  # ~1.6 MB each, copied in 64 KiB steps of 20 ms
    out_a, out_b = tmp_path / "a.json", tmp_path / "b.json"
    a = start_worker(ssd, files, out_a, slow=0.02, threads=1)
    _wait_for(Path(f"{out_a}.copying"), a)
    b = start_worker(ssd, files, out_b)  # waits for a's lock
    time.sleep(0.3)
    assert not Path(f"{out_b}.held").exists()
    parts = list(ssd.rglob("*.cryodesk-part"))
    assert parts, "the copier should be mid-copy"
    os.kill(a.pid, signal.SIGKILL)
    a.wait()
    rb = finish(b, out_b)
    assert rb["errors"] == [] and rb["files_copied"] == 2  # b copied them again, completely
    for f in files:
        assert Path(rb["cached"][str(f)]).read_bytes() == f.read_bytes()
    assert not list(ssd.rglob("*.cryodesk-part"))
    st = Cache(config(ssd)).status()
    assert st["entries"] == 2 and st["locks"] == []  # nothing stale held by the dead process


def _load(ssd, tmp_path, files, cfg_kw, limit_check):
    """Four jobs with overlapping file sets under a tight quota; a monitor samples the SSD."""
    groups = [files[0:5], files[3:8], files[6:11], files[0:2] + files[9:12]]
    violations: list[str] = []
    stop = threading.Event()

    def monitor():
        while not stop.is_set():
            msg = limit_check()
            if msg:
                violations.append(msg)
            time.sleep(0.005)

    t = threading.Thread(target=monitor)
    t.start()
    try:
        procs = [(start_worker(ssd, g, tmp_path / f"w{k}.json", hold=0.3, slow=0.0005, **cfg_kw),
                  tmp_path / f"w{k}.json") for k, g in enumerate(groups)]
        results = [finish(p, out) for p, out in procs]
    finally:
        stop.set()
        t.join()
    assert violations == []
    for r in results:
        assert r["errors"] == []  # nothing held was evicted, every cached byte right
    return results


def test_concurrent_load_never_exceeds_the_quota(stacks, ssd, tmp_path):
    files = stacks(12, n=100)  # ~410 kB each
    size = files[0].stat().st_size
    quota = 6.5 * size
    root = ssd / "cryodesk_cache" / "files"

    def check():
        used = tree_size(root)  # completed copies and partial ones
        return f"cache holds {used} > quota {quota}" if used > quota else ""

    results = _load(ssd, tmp_path, files, {"quota_mb": quota / MB}, check)
    assert sum(r["fallback_files"] for r in results) >= 1  # the quota really was tight
    assert Cache(config(ssd)).status()["used_bytes"] <= quota


def test_concurrent_load_keeps_the_reserve_on_a_real_disk(stacks, tmpfs_ssd, tmp_path):
    files = stacks(12, n=600, box=64)  # ~9.8 MB each on a 64 MB disk
    reserve = 12 * MB

    def check():
        vfs = os.statvfs(tmpfs_ssd)
        free = vfs.f_bavail * vfs.f_frsize
        return f"free {free} < reserve {reserve}" if free < reserve else ""

    results = _load(tmpfs_ssd, tmp_path, files, {"reserve_mb": reserve / MB}, check)
    assert sum(r["files_copied"] for r in results) >= 4


def test_two_jobs_share_one_subset(stacks, ssd, tmp_path):
    files = stacks(8, n=50)
    sel = {str(f): list(range(k % 3, 50, 7)) for k, f in enumerate(files)}
    a = start_worker(ssd, [], tmp_path / "a.json", particles=sel, hold=0.2)
    b = start_worker(ssd, [], tmp_path / "b.json", particles=sel, hold=0.2)
    ra, rb = finish(a, tmp_path / "a.json"), finish(b, tmp_path / "b.json")
    assert ra["mode"] == rb["mode"] == "subset"
    assert ra["subset_sha"] == rb["subset_sha"]
    assert (ra["bytes_copied"] > 0) != (rb["bytes_copied"] > 0)  # exactly one built it
    assert len(list((ssd / "cryodesk_cache" / "subsets").iterdir())) == 1


@pytest.mark.parametrize("n_files", [3])
def test_status_lists_the_locks_of_a_running_job(stacks, ssd, tmp_path, n_files):
    files = stacks(n_files)
    out = tmp_path / "a.json"
    a = start_worker(ssd, files, out, hold=30)
    try:
        _wait_for(Path(f"{out}.held"), a)
        st = Cache(config(ssd)).status()
        assert len(st["locks"]) == n_files and {lk["pid"] for lk in st["locks"]} == {a.pid}
        assert st["held_bytes"] == sum(f.stat().st_size for f in files)
        assert Cache(config(ssd)).clear()["held_skipped"] == n_files  # held: never removed
    finally:
        a.kill()
        a.wait()
    assert Cache(config(ssd)).status()["locks"] == []
    assert Cache(config(ssd)).clear()["removed"] == n_files


def test_next_job_purges_expired_entries_and_heals_hand_deletions(stacks, ssd, tmp_path):
    import sqlite3

    files = stacks(4)
    finish(start_worker(ssd, files, tmp_path / "a.json"), tmp_path / "a.json")
    root = ssd / "cryodesk_cache"
    con = sqlite3.connect(root / "index.sqlite")
    con.execute("UPDATE entries SET last_access = last_access - 10 * 86400")  # ten days unused
    con.commit()
    con.close()
    cached = {f: Cache(config(ssd)).file_dest(os.path.realpath(f)) for f in files}
    cached[files[0]].unlink()  # deleted by hand
    rb = finish(start_worker(ssd, files[:2], tmp_path / "b.json", lifetime_days=7), tmp_path / "b.json")
    assert rb["errors"] == [] and rb["files_copied"] == 1  # the deleted one, copied again
    assert rb["bytes_reused"] == files[1].stat().st_size  # expired, but this job uses it: kept
    assert not cached[files[2]].exists() and not cached[files[3]].exists()  # purged
    st = Cache(config(ssd)).status()
    assert st["entries"] == 2 and st["used_bytes"] == sum(f.stat().st_size for f in files[:2])
