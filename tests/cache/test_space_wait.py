"""Issue 12, item 12: an SSD full of what other running jobs hold is waited for (the guide: the job
"will try to free up space as soon as it can, and it will continue processing"), within a limit;
an SSD full of files the cache does not own is not."""

from __future__ import annotations

import os
import threading
import time

from cryodesk.cache import stage
from cryodesk.cache.acquire import SPACE_MESSAGE

from .conftest import MB, config


def test_waits_for_space_another_job_holds_then_copies(stacks, ssd):
    files = stacks(2, n=50)
    size = files[0].stat().st_size
    cfg = config(ssd, quota_mb=1.5 * size / MB, space_wait_s=30)
    holding = threading.Event()

    def other_job():  # holds files[0] for a while, as a running job does
        with stage(None, files[:1], config=cfg, cache_on=True):
            holding.set()
            time.sleep(0.8)

    t = threading.Thread(target=other_job)
    t.start()
    try:
        assert holding.wait(10)
        seen = []
        t0 = time.monotonic()
        with stage(None, files[1:], config=cfg, cache_on=True,
                   progress=lambda done, total, msg: seen.append(msg)) as st:
            s = st.stats()
            waited = time.monotonic() - t0
            assert s["files_copied"] == 1 and s["fallback_files"] == 0, s  # it continued on the SSD
            assert st.path_for(files[1]) != files[1]
        assert 0.3 < waited < 20 and s["waited_s"] > 0.3
        assert any(SPACE_MESSAGE in m for m in s["messages"])
        assert any(SPACE_MESSAGE in m and "of at most 30 s" in m for m in seen)  # progress while it waits
    finally:
        t.join()


def test_gives_up_after_the_limit_with_a_clear_line(stacks, ssd):
    files = stacks(2, n=50)
    size = files[0].stat().st_size
    cfg = config(ssd, quota_mb=1.5 * size / MB, space_wait_s=0.6)
    with stage(None, files[:1], config=cfg, cache_on=True):  # held for the whole wait
        t0 = time.monotonic()
        with stage(None, files[1:], config=cfg, cache_on=True) as st:
            s = st.stats()
        assert 0.5 < time.monotonic() - t0 < 10
    assert s["fallback_files"] == 1 and s["files_copied"] == 0
    line = s["messages"][-1]
    assert "gave up waiting for SSD space after" in line and "cache_space_wait_s" in line
    assert "reading 1 files from the project directory instead" in line


def test_an_ssd_full_of_other_files_falls_back_at_once(stacks, ssd):
    files = stacks(1, n=50)
    vfs = os.statvfs(ssd)
    free_mb = vfs.f_bavail * vfs.f_frsize / MB
    cfg = config(ssd, reserve_mb=free_mb + 1000, space_wait_s=30)  # the disk's free space is others' files'
    t0 = time.monotonic()
    with stage(None, files, config=cfg, cache_on=True) as st:
        s = st.stats()
    assert time.monotonic() - t0 < 5  # nobody holds anything that could be freed: no wait
    assert s["fallback_files"] == 1 and not any(SPACE_MESSAGE in m for m in s["messages"])
    assert "nothing that can be deleted" in s["messages"][-1]
