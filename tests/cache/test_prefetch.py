"""The fill asks the disk for the next sources ahead of the copy threads (cold stacks are read meanwhile)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import cryodesk.cache.acquire as acquire_mod
from cryodesk.cache import stage
from cryodesk.cache.copy import prefetch

from .conftest import config


def test_every_source_after_the_first_is_asked_for_once_ahead_of_its_copy(stacks, ssd, monkeypatch):
    files = stacks(10)
    events: list[tuple[str, str]] = []
    real_prefetch = acquire_mod.prefetch
    monkeypatch.setattr(acquire_mod, "prefetch",
                        lambda src, size: (events.append(("ask", str(src))), real_prefetch(src, size)))
    real_one = acquire_mod._Round._one

    def one(self, it):
        events.append(("copy", str(it.source)))
        return real_one(self, it)

    monkeypatch.setattr(acquire_mod._Round, "_one", one)
    with stage(None, files, config=config(ssd, threads=1), cache_on=True) as st:
        assert all(Path(st.path_for(f)).read_bytes() == f.read_bytes() for f in files)
    srcs = [os.path.realpath(f) for f in files]
    asked = [src for what, src in events if what == "ask"]
    # each at most once, never the first (it reads itself); the next four as soon as the first starts
    # (later ones once their chunk is submitted: a copy that starts first reads itself)
    assert set(srcs[1:5]) <= set(asked) <= set(srcs[1:]) and len(set(asked)) == len(asked)
    for src in asked:  # always before its own copy starts
        assert events.index(("ask", src)) < events.index(("copy", src))


def test_prefetch_never_blocks_or_raises(tmp_path):
    fifo = tmp_path / "not_a_stack.mrc"
    os.mkfifo(fifo)
    t = time.monotonic()
    prefetch(fifo, 1 << 20)  # nobody writes to it: a blocking open would hang here
    prefetch(tmp_path / "missing.mrc", 1 << 20)
    assert time.monotonic() - t < 5
