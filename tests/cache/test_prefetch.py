"""The fill asks the disk for the next sources ahead of the copy threads (cold stacks are read meanwhile)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import cryodesk.cache.acquire as acquire_mod
import cryodesk.cache.staging as staging_mod
from cryodesk.cache import stage
from cryodesk.cache.copy import prefetch

from .conftest import config


def test_every_source_is_asked_for_once_before_its_copy_starts(stacks, ssd, monkeypatch):
    files = stacks(20)
    events: list[tuple[str, str]] = []
    real_prefetch = acquire_mod.prefetch
    monkeypatch.setattr(acquire_mod, "prefetch",
                        lambda src, size: (events.append(("ask", str(src))), real_prefetch(src, size)))
    real_copy = staging_mod.copy_into_cache

    def copy(src, *a, **kw):
        events.append(("copy", str(src)))
        assert kw["prefetched"]  # so it does not ask again itself
        return real_copy(src, *a, **kw)

    monkeypatch.setattr(staging_mod, "copy_into_cache", copy)
    with stage(None, files, config=config(ssd, threads=1), cache_on=True) as st:
        assert all(Path(st.path_for(f)).read_bytes() == f.read_bytes() for f in files)
    srcs = [os.path.realpath(f) for f in files]
    asked = [src for what, src in events if what == "ask"]
    assert sorted(asked) == sorted(srcs)  # each exactly once
    for src in srcs:
        assert events.index(("ask", src)) < events.index(("copy", src))
    first_copy = events.index(("copy", srcs[0]))
    assert len([e for e in events[:first_copy] if e[0] == "ask"]) >= 5  # the next ones before the first copy


def test_prefetch_never_blocks_or_raises(tmp_path):
    fifo = tmp_path / "not_a_stack.mrc"
    os.mkfifo(fifo)
    t = time.monotonic()
    prefetch(fifo, 1 << 20)  # nobody writes to it: a blocking open would hang here
    prefetch(tmp_path / "missing.mrc", 1 << 20)
    assert time.monotonic() - t < 5
