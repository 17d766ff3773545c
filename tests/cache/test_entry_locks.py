"""The entry locks: one byte each of one lock file (OFD byte-range locks)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from cryodesk.base.errors import DataError
from cryodesk.cache.locks import EntryLock, held_offsets, lock_holders, lock_offset


def test_two_descriptions_exclude_each_other_like_two_processes(tmp_path):
    path = tmp_path / "entries.lock"
    a, b, c = EntryLock(path, 7), EntryLock(path, 7), EntryLock(path, 8)
    try:
        assert a.try_exclusive()
        assert not b.try_shared() and not b.try_exclusive() and not b.is_free()
        assert c.try_exclusive()  # another byte: another entry
        assert a.try_shared()  # atomic downgrade
        assert b.try_shared() and not b.try_exclusive()  # two readers; no writer while one reads
        assert held_offsets(path) == {7: ["READ", "READ"], 8: ["WRITE"]}
        holders = lock_holders(path)
        assert sorted(holders[7]) == [(os.getpid(), "READ")] * 2 and holders[8] == [(os.getpid(), "WRITE")]
        a.close()
        b.release()
        assert EntryLock(path, 7).is_free() and not EntryLock(path, 8).is_free()
        c.close()
        assert held_offsets(path) == {}
    finally:
        for lk in (a, b, c):
            lk.close()


def test_colliding_keys_only_wait_for_each_other(tmp_path):
    """Two entries on one byte (a hash collision): never both exclusive, never one missed."""
    path = tmp_path / "entries.lock"
    x, y = EntryLock(path, lock_offset("/a")), EntryLock(path, lock_offset("/a"))  # y is "/b" colliding
    try:
        assert x.try_shared()
        assert not y.try_exclusive()  # cannot copy or evict while x is held: it waits
        x.close()
        assert y.try_exclusive()
    finally:
        x.close()
        y.close()
    assert lock_offset("/a") != lock_offset("/b") and 0 <= lock_offset("/a") < 2**62


def test_a_killed_holder_s_lock_is_released_by_the_kernel(tmp_path):
    path = tmp_path / "entries.lock"
    code = ("import sys, time; from cryodesk.cache.locks import EntryLock; "
            f"lk = EntryLock({str(path)!r}, 3); assert lk.try_exclusive(); print('ok', flush=True); time.sleep(60)")
    p = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "ok"
        lk = EntryLock(path, 3)
        assert not lk.try_shared()
        assert lock_holders(path) == {3: [(p.pid, "WRITE")]}
    finally:
        p.kill()
        p.wait()
    assert lk.try_exclusive()
    lk.close()


def test_the_lock_file_is_never_opened_through_a_symlink(tmp_path):
    target = tmp_path / "elsewhere"
    target.write_bytes(b"")
    (tmp_path / "entries.lock").symlink_to(target)
    with pytest.raises(DataError, match="symlink"):
        EntryLock(tmp_path / "entries.lock", 1).try_shared()
    os.mkfifo(tmp_path / "fifo.lock")
    with pytest.raises(DataError, match="not a regular file"):
        EntryLock(tmp_path / "fifo.lock", 1).try_shared()
