"""Cache writers: a whole-file copy and a packed subset appear complete or not at all; the cache's
``fsync`` setting decides whether they are synced."""

from __future__ import annotations

import os

import numpy as np
import pytest

from cryodesk.base.errors import JobCancelled
from cryodesk.cache import copy as copy_mod
from cryodesk.cache.copy import SourceChanged, commit_copy, copy_into_cache, part_name
from cryodesk.cache.subset import _build, subset_spec


def _src(tmp_path, size=3 << 20):
    src = tmp_path / "src.mrc"
    src.write_bytes(os.urandom(size))
    st = os.stat(src)
    return src, st.st_size, st.st_mtime_ns


@pytest.fixture
def fsyncs(monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    return calls


@pytest.mark.parametrize("fsync,defer,synced", [(True, False, 1), (False, False, 0), (True, True, 0)])
def test_copy_is_synced_as_configured(tmp_path, fsyncs, fsync, defer, synced):
    src, size, mtime = _src(tmp_path)
    dest = tmp_path / "cache" / "src.mrc"
    copy_into_cache(src, dest, size, mtime, fsync=fsync, defer=defer)
    assert len(fsyncs) == synced
    if defer:  # complete under the temp name; the batch is synced once, then each is renamed
        assert not dest.exists() and part_name(dest).stat().st_size == size
        commit_copy(dest)
    assert dest.read_bytes() == src.read_bytes() and os.stat(dest).st_mtime_ns == mtime
    assert os.listdir(dest.parent) == ["src.mrc"]


@pytest.mark.parametrize("how", ["cancel", "source changed"])
def test_failed_copy_keeps_the_old_copy_and_no_part_file(tmp_path, monkeypatch, how):
    src, size, mtime = _src(tmp_path)
    dest = tmp_path / "cache" / "src.mrc"
    dest.parent.mkdir()
    dest.write_bytes(b"the previous copy")
    monkeypatch.setattr(copy_mod, "CHUNK", 1 << 20)
    chunks = []

    def cancel():
        chunks.append(1)
        if len(chunks) == 2:  # one chunk is on the SSD already
            if how == "cancel":
                raise JobCancelled("J1 was cancelled")
            os.utime(src, ns=(mtime, mtime + 10**9))

    with pytest.raises(JobCancelled if how == "cancel" else SourceChanged):
        copy_into_cache(src, dest, size, mtime, check_cancel=cancel)
    assert dest.read_bytes() == b"the previous copy"
    assert os.listdir(dest.parent) == ["src.mrc"]


def test_subset_build_failure_leaves_no_part_directory(tmp_path):
    from cryodesk.io.mrc import write_stack

    stacks = [write_stack(tmp_path / f"s{k}.mrc", np.full((10, 8, 8), k, np.float32)).path for k in range(2)]
    spec = subset_spec(np.asarray([str(s) for s in stacks] * 3), np.arange(6) % 10, per_file=4)
    dest = tmp_path / "subsets" / spec.key
    dest.mkdir(parents=True)
    (dest / "old").write_bytes(b"an older build")

    def cancel():
        raise JobCancelled("J1 was cancelled")

    with pytest.raises(JobCancelled):
        _build(spec, dest, lambda n: None, cancel)
    assert os.listdir(dest.parent) == [spec.key] and os.listdir(dest) == ["old"]
    nbytes = _build(spec, dest, lambda n: None, None, fsync=False)
    assert nbytes > 0 and os.listdir(dest.parent) == [spec.key]
    assert sorted(os.listdir(dest)) == ["stack_000.mrc", "stack_001.mrc", "subset.json"]
