"""The cache in one process: copy, reuse, validity, healing, purge, eviction, space, subsets."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from cryodesk.base.errors import JobCancelled
from cryodesk.cache import Cache, CacheFullError, stage
from cryodesk.io.cs import ParticleSet, from_columns
from cryodesk.io.mrc import read_images

from .conftest import MB, config


def _same(a: Path, b: Path) -> bool:
    return Path(a).read_bytes() == Path(b).read_bytes()


def test_copy_then_reuse(stacks, ssd):
    files = stacks(5)
    cfg = config(ssd)
    with stage(None, files, config=cfg, cache_on=True) as st:
        assert st.mode == "files" and st.stats()["files_copied"] == 5
        for f in files:
            p = st.path_for(f)
            assert p != f and str(p).startswith(str(ssd)) and _same(p, f)
            assert os.stat(p).st_mtime_ns == os.stat(f).st_mtime_ns
    with stage(None, files, config=cfg, cache_on=True) as st:
        s = st.stats()
        assert s["files_copied"] == 0 and s["bytes_reused"] == sum(f.stat().st_size for f in files)
    assert not list(ssd.rglob("*.cryodesk-part"))


def test_changed_source_is_recopied(stacks, ssd):
    (f,) = stacks(1)
    cfg = config(ssd)
    with stage(None, [f], config=cfg, cache_on=True) as st:
        old = st.path_for(f).read_bytes()
    data = bytearray(f.read_bytes())
    data[-4:] = b"\x01\x02\x03\x04"
    f.write_bytes(bytes(data))
    os.utime(f, ns=(time.time_ns(), time.time_ns() + 5_000_000_000))
    with stage(None, [f], config=cfg, cache_on=True) as st:
        assert st.stats()["files_copied"] == 1
        assert st.path_for(f).read_bytes() == bytes(data) != old


@pytest.mark.parametrize("how", ["copy", "symlink"])
def test_file_placed_by_hand_is_accepted(stacks, ssd, tmp_path, how):
    (f,) = stacks(1)
    cfg = config(ssd)
    dest = Cache(cfg).file_dest(os.path.realpath(f))
    dest.parent.mkdir(parents=True)
    if how == "copy":
        shutil.copy2(f, dest)  # cp -p: same size and mtime
    else:
        other = tmp_path / "fast" / f.name
        other.parent.mkdir()
        shutil.copy2(f, other)
        dest.symlink_to(other)
    with stage(None, [f], config=cfg, cache_on=True) as st:
        assert st.stats()["files_copied"] == 0 and st.path_for(f) == dest
    st = Cache(cfg).status()
    assert st["entries"] == 1 and st["used_bytes"] == (f.stat().st_size if how == "copy" else 0)


def test_hand_deleted_files_heal(stacks, ssd):
    files = stacks(3)
    cfg = config(ssd)
    with stage(None, files, config=cfg, cache_on=True) as st:
        victim = st.path_for(files[0])
    victim.unlink()
    status = Cache(cfg).status()
    assert status["entries"] == 2
    with stage(None, files, config=cfg, cache_on=True) as st:
        assert st.stats()["files_copied"] == 1 and _same(st.path_for(files[0]), files[0])
    (ssd / "cryodesk_cache" / "index.sqlite").unlink()  # even the index itself
    with stage(None, files, config=cfg, cache_on=True) as st:
        assert st.stats()["files_copied"] == 0
    assert Cache(cfg).status()["entries"] == 3


def test_lifetime_purge_spares_held_entries(stacks, ssd):
    files = stacks(3)
    cfg = config(ssd, lifetime_days=1)
    cache = Cache(cfg)
    with stage(None, files, config=cfg, cache_on=True):
        pass
    with stage(None, files[:1], config=cfg, cache_on=True) as held:
        freed = cache.purge_expired(now=time.time() + 2 * 86400)
        assert freed == sum(f.stat().st_size for f in files[1:])
        assert held.path_for(files[0]).exists()
        assert not held.path_for(files[0]).parent.joinpath(files[1].name).exists()
    assert cache.status()["entries"] == 1


def test_lru_eviction_under_quota_never_evicts_held(stacks, ssd):
    files = stacks(6, n=50)  # ~205 kB each
    size = files[0].stat().st_size
    cfg = config(ssd, quota_mb=3.5 * size / MB)
    cache = Cache(cfg)
    with stage(None, files[:2], config=cfg, cache_on=True):
        pass
    with stage(None, files[2:3], config=cfg, cache_on=True) as held:
        time.sleep(0.01)
        with stage(None, files[3:5], config=cfg, cache_on=True) as st:
            # files 0 and 1 were least recently used; file 2 is held
            assert st.stats()["files_copied"] == 2 and st.stats()["fallback_files"] == 0
            assert held.path_for(files[2]).exists()
            keys = {Path(k["key"]).name for k in cache.status()["locks"]}
            assert keys == {f.name for f in files[2:5]}
        assert cache.status()["used_bytes"] <= cfg.quota_bytes
        names = {Path(e).name for e in os.listdir(held.path_for(files[2]).parent)}
        assert files[0].name not in names and files[2].name in names


def test_not_enough_space_message_and_fallback(stacks, ssd):
    files = stacks(3, n=50)
    size = files[0].stat().st_size
    cfg = config(ssd, quota_mb=1.5 * size / MB, space_wait_s=0)  # no wait: read from the project at once
    log = logging.getLogger("test.cache.full")
    with stage(None, files[:1], config=cfg, cache_on=True) as held:
        ctx = SimpleNamespace(log=log, project_uid="P1", project_dir=None, params={})
        with stage(ctx, files[1:], config=cfg, cache_on=True) as st:
            s = st.stats()
            assert s["fallback_files"] == 2 and s["files_copied"] == 0
            msg = s["messages"][0]
            assert "not enough space" in msg and "nothing that can be deleted" in msg
            assert "held by running jobs" in msg and "quota" in msg
            assert st.path_for(files[1]) == files[1]  # read from the project directory
            assert np.array_equal(st.read_particle(files[1], 3), read_images(files[1], [3])[0])
        with pytest.raises(CacheFullError, match="nothing that can be deleted"):
            with stage(ctx, files[1:], config=cfg, cache_on=True, on_full="error"):
                pass
        assert held.path_for(files[0]) != files[0]


def test_cancel_mid_copy_leaves_nothing(stacks, ssd, monkeypatch):
    import cryodesk.cache.copy as copy_mod

    files = stacks(2, n=200)
    monkeypatch.setattr(copy_mod, "CHUNK", 4096)
    calls = [0]

    def cancel():
        calls[0] += 1
        if calls[0] > 5:
            raise JobCancelled("J9 was cancelled")

    ctx = SimpleNamespace(check_cancel=cancel, log=logging.getLogger("t"), project_uid="P1",
                          project_dir=None, params={}, progress=None)
    cfg = config(ssd, threads=1)
    with pytest.raises(JobCancelled):
        with stage(ctx, files, config=cfg, cache_on=True):
            pass
    assert not list(ssd.rglob("*.cryodesk-part"))
    assert Cache(cfg).status()["entries"] == 0


def test_disk_really_full_falls_back_cleanly(stacks, tmpfs_ssd, monkeypatch):
    """A foreign writer fills the SSD between the space check and the copy: ENOSPC is handled."""
    import cryodesk.cache.staging as stage_mod

    files = stacks(2, n=1000, box=64)  # ~16 MB each
    real = stage_mod.copy_into_cache
    filler = tmpfs_ssd / "foreign.bin"

    def copy_after_filling(*a, **kw):
        if not filler.exists():
            with open(filler, "wb") as fh:
                try:
                    while True:
                        fh.write(b"\0" * (1 << 20))
                except OSError:
                    pass
        return real(*a, **kw)

    monkeypatch.setattr(stage_mod, "copy_into_cache", copy_after_filling)
    cfg = config(tmpfs_ssd, threads=1)
    with stage(None, files, config=cfg, cache_on=True) as st:
        s = st.stats()
        assert s["fallback_files"] == 2 and "full" in " ".join(s["messages"])
        assert all(st.path_for(f) == f for f in files)
    assert not list(tmpfs_ssd.rglob("*.cryodesk-part")) and filler.exists()  # foreign file untouched
    filler.unlink()  # the user frees space: the dead reservations are healed away
    assert Cache(cfg).status()["entries"] == 0


def test_reserve_on_a_real_small_disk(stacks, tmpfs_ssd):
    files = stacks(5, n=1000, box=64)  # 5 x ~16 MB on a 64 MB disk
    (tmpfs_ssd / "foreign.bin").write_bytes(b"\0" * (10 * MB))
    cfg = config(tmpfs_ssd, reserve_mb=8)
    with stage(None, files, config=cfg, cache_on=True) as st:
        s = st.stats()
        assert s["files_copied"] >= 1 and s["fallback_files"] >= 1
        vfs = os.statvfs(tmpfs_ssd)
        assert vfs.f_bavail * vfs.f_frsize >= 8 * MB
    with stage(None, files[-2:], config=cfg, cache_on=True) as st:  # LRU makes room for newer ones
        assert st.stats()["fallback_files"] == 0
        vfs = os.statvfs(tmpfs_ssd)
        assert vfs.f_bavail * vfs.f_frsize >= 8 * MB
    assert (tmpfs_ssd / "foreign.bin").stat().st_size == 10 * MB


def _pset(files, rows, base):
    paths = np.array([str(files[f]) for f, _ in rows])
    idx = np.array([i for _, i in rows], dtype=np.uint32)
    return ParticleSet(from_columns({"blob/path": paths, "blob/idx": idx}), base / "p.cs", base)


def test_subset_cached_packed_shared_and_identical(stacks, ssd, tmp_path):
    files = stacks(10, n=50)
    rng = np.random.default_rng(3)
    rows = [(int(f), int(i)) for f, i in zip(rng.integers(0, 10, 90), rng.integers(0, 50, 90))]
    pset = _pset(files, rows, tmp_path)
    cfg = config(ssd)
    with stage(None, pset, config=cfg, cache_on=False) as off:
        ref = off.read_particles()
    with stage(None, pset, config=cfg, cache_on=True) as st:  # auto: ~18% of the bytes
        assert st.mode == "subset"
        assert np.array_equal(st.read_particles(), ref)
        f, i = rows[7]
        assert np.array_equal(st.read_particle(files[f], i), ref[7])
        used = Cache(cfg).status()["used_bytes"]
        assert used < 0.3 * sum(p.stat().st_size for p in files)
        with stage(None, _pset(files, rows[::-1], tmp_path), config=cfg, cache_on=True) as st2:
            assert st2.mode == "subset" and st2.stats()["bytes_copied"] == 0  # same subset: shared
            assert np.array_equal(st2.read_particles(), ref[::-1])
    with stage(None, pset, config=cfg, cache_on=True, subset=False) as whole:
        assert whole.mode == "files" and np.array_equal(whole.read_particles(), ref)


def test_subset_threshold_picks_whole_files(stacks, ssd, tmp_path):
    files = stacks(2, n=10)
    pset = _pset(files, [(f, i) for f in range(2) for i in range(8)], tmp_path)  # 80 %
    with stage(None, pset, config=config(ssd), cache_on=True) as st:
        assert st.mode == "files"
    with stage(None, pset, config=config(ssd, subset_threshold=0.9), cache_on=True) as st:
        assert st.mode == "subset"


def test_mixed_image_sizes_cache_whole_files(stacks, ssd, tmp_path):
    small = stacks(2, n=30, box=16, prefix="a")
    big = stacks(1, n=30, box=32, prefix="b")
    pset = _pset(small + big, [(0, 1), (2, 3)], tmp_path)
    with stage(None, pset, config=config(ssd), cache_on=True) as st:
        assert st.mode == "files"
        assert st.read_particle(big[0], 3).shape == (32, 32)


def test_missing_ssd_directory_reads_the_originals(stacks, tmp_path, caplog):
    files = stacks(1)
    cfg = config(tmp_path / "not-mounted")
    with caplog.at_level(logging.WARNING, logger="cryodesk.cache"):
        with stage(None, files, config=cfg, cache_on=True) as st:
            assert st.mode == "off" and st.path_for(files[0]) == files[0]
    assert "does not exist" in caplog.text
    with pytest.raises(Exception, match="does not exist"):
        with stage(None, files, config=cfg, cache_on=True, on_full="error"):
            pass


def test_two_jobs_in_one_process_copy_once(stacks, ssd):
    """The engine runs jobs as threads of one process: flock locks still exclude each other."""
    import threading

    import cryodesk.cache.copy as copy_mod

    files = stacks(4, n=100)
    cfg = config(ssd)
    real = copy_mod._kernel_copy

    def slow(*a, **kw):
        time.sleep(0.2)
        return real(*a, **kw)

    copy_mod._kernel_copy = slow
    results = []
    try:
        def job():
            with stage(None, files, config=cfg, cache_on=True) as st:
                results.append(st.stats())
                assert all(_same(st.path_for(f), f) for f in files)
        threads = [threading.Thread(target=job) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        copy_mod._kernel_copy = real
    assert sum(r["files_copied"] for r in results) == 4  # each file once, by one of them
    assert sum(r["bytes_copied"] for r in results) == sum(f.stat().st_size for f in files)
