"""A job in its own process for the multi-process cache tests (not a test module).

Stages the files given (or a particle subset), optionally slowed down so a
test can kill it mid-copy, holds them for ``--hold`` seconds while checking
that every held file still exists and equals its source, and writes its
stats to ``--out``.  Marker files: ``<out>.copying`` once bytes flow,
``<out>.staging`` just before it asks the cache, ``<out>.held`` once everything is held.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

import cryodesk.cache.copy as copy_mod
from cryodesk.cache.config import CacheConfig
from cryodesk.cache.staging import stage
from cryodesk.io.cs import ParticleSet, from_columns

MB = 1_000_000


def digest(p: Path) -> str:
    return hashlib.sha1(Path(p).read_bytes()).hexdigest()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--ssd", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--quota-mb", type=float)
    ap.add_argument("--reserve-mb", type=float, default=0)
    ap.add_argument("--hold", type=float, default=0)
    ap.add_argument("--slow", type=float, default=0, help="seconds of sleep per 64 KiB copied")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--on-full", default="fallback")
    ap.add_argument("--lifetime-days", type=float, default=30)
    ap.add_argument("--space-wait-s", type=float, default=0, help="wait for space other jobs hold (default: never)")
    ap.add_argument("--gate", help="with --slow: after the first chunk, wait until this file exists")
    ap.add_argument("--particles", help="JSON {path: [indices]}: stage this subset")
    ap.add_argument("files", nargs="*")
    a = ap.parse_args()
    out = Path(a.out)
    marked = [False]
    if a.slow:
        copy_mod.CHUNK = 64 << 10
        real = copy_mod._kernel_copy

        def slow_copy(fin, fout, size, on_bytes, check_cancel, **kw):
            def bytes_cb(n):
                if not marked[0]:
                    marked[0] = True
                    Path(f"{out}.copying").touch()
                    deadline = time.monotonic() + 120
                    while a.gate and not Path(a.gate).exists() and time.monotonic() < deadline:
                        time.sleep(0.01)  # another process is still starting up
                on_bytes(n)
                time.sleep(a.slow)
            return real(fin, fout, size, bytes_cb, check_cancel, **kw)
        copy_mod._kernel_copy = slow_copy
    cfg = CacheConfig(ssd_path=Path(a.ssd), quota_bytes=None if a.quota_mb is None else int(a.quota_mb * MB),
                      reserve_bytes=int(a.reserve_mb * MB), threads=a.threads, lifetime_days=a.lifetime_days,
                      space_wait_s=a.space_wait_s)
    what = [Path(f) for f in a.files]
    subset = False
    if a.particles:
        sel = json.loads(a.particles)
        paths = [p for p, idx in sel.items() for _ in idx]
        idx = [i for _, ids in sel.items() for i in ids]
        data = from_columns({"blob/path": np.array(paths), "blob/idx": np.array(idx, dtype=np.uint32)})
        what = ParticleSet(data, Path(a.ssd) / "x.cs", Path("/"))
        subset = True
    t0 = time.monotonic()
    errors = []
    Path(f"{out}.staging").touch()
    with stage(None, what, config=cfg, cache_on=True, subset=subset, on_full=a.on_full) as st:
        Path(f"{out}.held").touch()
        stats = st.stats()
        cached = {}
        deadline = time.monotonic() + a.hold
        while True:
            if st.mode == "files":
                for f in a.files:
                    p = st.path_for(f)
                    cached[f] = str(p)
                    try:
                        if digest(p) != digest(Path(f)):
                            errors.append(f"{p} differs from its source")
                    except FileNotFoundError:
                        errors.append(f"{p} vanished while held")
            elif st.mode == "subset":
                imgs = st.read_particles()
                stats["subset_sha"] = hashlib.sha1(imgs.tobytes()).hexdigest()
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
    stats.update(mode=st.mode, cached=cached, errors=errors, seconds=time.monotonic() - t0)
    out.write_text(json.dumps(stats))
    return 0


if __name__ == "__main__":
    sys.exit(main())
