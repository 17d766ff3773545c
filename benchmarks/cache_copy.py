"""SSD cache fill speed against ``cp -r`` of the same tree, and subset-aware caching.

Builds a project-like tree of particle stacks (``--size-mb``, default 2 GB, in
``--files`` stacks), then in the same run:

1. ``cp -r`` of the tree, and ``cp -r`` + ``sync`` (the cache makes its copies durable);
2. filling the cache with the whole tree (``stage`` of all files);
3. a 20 % random particle subset cached subset-aware vs. caching its whole stacks.

Prints the ratios (targets: cache ≥ 1.0 × cp -r; subset ≤ 1/3 of the time and
space of whole stacks).  Each timing is the best of ``--repeat`` rounds (methods
interleaved, order rotated), the
source tree read into the page cache just before each of them.

Like for like: the durable fill (the default: each batch of copies is synced to
the disk before it is renamed into place, so a power cut never leaves a bad
file under a valid name) waits for the disk, as ``cp -r && sync`` does; plain
``cp -r`` returns with the data still in the page cache, which is what the fill
with ``CRYODESK_CACHE_FSYNC=0`` does (still never a half-copied file after a
crash of the copier: temporary name + rename).  On a disk slower than the page
cache no durable copy can reach 1.0 × plain ``cp -r``; both pairs are printed.

    .venv/bin/python benchmarks/cache_copy.py [--size-mb 2048] [--files 400] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryodesk.cache.config import CacheConfig  # noqa: E402
from cryodesk.cache.staging import stage  # noqa: E402
from cryodesk.cache.store import Cache  # noqa: E402
from cryodesk.io.cs import ParticleSet, from_columns  # noqa: E402
from cryodesk.io.mrc import make_header  # noqa: E402


def make_tree(root: Path, size_mb: int, n_files: int, box: int) -> tuple[list[Path], int]:
    rng = np.random.default_rng(1)
    image = box * box * 4
    per_file = max(1, (size_mb * 1_000_000) // n_files // image)
    files = []
    block = rng.standard_normal((per_file, box, box)).astype(np.float32)
    for k in range(n_files):
        d = root / f"J{1 + k % 4}" / "extract"
        d.mkdir(parents=True, exist_ok=True)
        p = d / f"mic_{k:05d}_particles.mrc"
        block[0, 0, :4] = k  # distinct files
        with open(p, "wb") as fh:
            fh.write(make_header(box, box, per_file, 2, 1.0))
            fh.write(block.tobytes())
        files.append(p)
    return files, per_file


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size-mb", type=int, default=2048)
    ap.add_argument("--files", type=int, default=400)
    ap.add_argument("--box", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=4)
    ap.add_argument("--fraction", type=float, default=0.2)
    ap.add_argument("--dir", default=None, help="work directory (source and 'SSD' both below it)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="cache_bench_", dir=args.dir))
    try:
        src, ssd, cpdst = work / "project", work / "ssd", work / "cp_target"
        ssd.mkdir()
        files, per_file = make_tree(src, args.size_mb, args.files, args.box)
        total = sum(p.stat().st_size for p in files)
        os.sync()
        print(f"tree: {len(files)} stacks, {total / 1e9:.2f} GB, {per_file} images of {args.box}² each; "
              f"{args.threads} copy threads")
        cfg = CacheConfig(ssd_path=ssd, quota_bytes=None, reserve_bytes=0, threads=args.threads)

        def warm():
            # Every timed copy starts with the source in the page cache: this VM's
            # page cache is reclaimed quickly, and a cold source would time the
            # source disk instead of the copy.
            for p in files:
                with open(p, "rb") as fh:
                    while fh.read(16 << 20):
                        pass

        def cp():
            shutil.rmtree(cpdst, ignore_errors=True)
            os.sync()
            warm()
            return timed(lambda: subprocess.run(["cp", "-r", str(src), str(cpdst)], check=True))

        def cp_sync():
            shutil.rmtree(cpdst, ignore_errors=True)
            os.sync()
            warm()
            return timed(lambda: (subprocess.run(["cp", "-r", str(src), str(cpdst)], check=True), os.sync()))

        def fill(cfg=cfg):
            Cache(cfg).clear()
            os.sync()
            warm()

            def run():
                with stage(None, files, config=cfg, cache_on=True) as st:
                    assert st.mode == "files" and st.stats()["files_copied"] == len(files), st.stats()
            return timed(run)

        nosync = replace(cfg, fsync=False)
        ops = [cp, cp_sync, fill, lambda: fill(nosync)]
        rounds = []
        for r in range(args.repeat):
            # Interleaved, and the order rotated each round: on a shared machine a
            # busy moment (or the state the previous copy left) hits every method alike.
            times = [0.0] * 4
            for k in [(r + j) % 4 for j in range(4)]:
                times[k] = ops[k]()
                shutil.rmtree(cpdst, ignore_errors=True)
                Cache(cfg).clear()
            rounds.append(tuple(times))
        t_cp, t_cps, t_cache, t_nosync = (min(r[k] for r in rounds) for k in range(4))
        for k, r in enumerate(rounds):
            print(f"  round {k}: cp -r {r[0]:.2f} s, cp -r + sync {r[1]:.2f} s, cache {r[2]:.2f} s, "
                  f"cache no fsync {r[3]:.2f} s")
        print(f"cp -r          {t_cp:7.2f} s  {total / t_cp / 1e9:6.2f} GB/s")
        print(f"cp -r + sync   {t_cps:7.2f} s  {total / t_cps / 1e9:6.2f} GB/s")
        print(f"cache fill     {t_cache:7.2f} s  {total / t_cache / 1e9:6.2f} GB/s  (durable: synced before rename)")
        print(f"cache, no fsync{t_nosync:7.2f} s  {total / t_nosync / 1e9:6.2f} GB/s  (CRYODESK_CACHE_FSYNC=0)")
        print(f"RATIO cache speed / cp -r               = {t_cp / t_cache:.2f}  (durable vs page cache only)")
        print(f"RATIO cache speed / cp -r + sync        = {t_cps / t_cache:.2f}  (target >= 1.0: both wait for the disk)")
        print(f"RATIO cache (no fsync) speed / cp -r    = {t_cp / t_nosync:.2f}  (target >= 1.0: neither waits)")
        med = [statistics.median(r[k] for r in rounds) for k in range(4)]
        print(f"  (medians over rounds: cache / cp -r = {med[0] / med[2]:.2f}, "
              f"cache / cp -r + sync = {med[1] / med[2]:.2f}, no fsync / cp -r = {med[0] / med[3]:.2f})")

        # -- subset-aware --------------------------------------------------
        rng = np.random.default_rng(2)
        n_all = len(files) * per_file
        pick = np.sort(rng.choice(n_all, size=int(n_all * args.fraction), replace=False))
        paths = np.array([str(files[i // per_file]) for i in pick.tolist()])
        data = from_columns({"blob/path": paths, "blob/idx": (pick % per_file).astype(np.uint32)})
        pset = ParticleSet(data, src / "subset.cs", src)

        def run_subset(mode):
            Cache(cfg).clear()
            os.sync()
            warm()
            box = {}

            def run():
                with stage(None, pset, config=cfg, cache_on=True, subset=mode) as st:
                    box["stats"] = st.stats()
                    box["mode"] = st.mode
            t = timed(run)
            used = Cache(cfg).status()["used_bytes"]
            return t, used, box

        runs = [(run_subset(False), run_subset(True)) for _ in range(args.repeat)]  # interleaved
        t_whole, b_whole, _ = min((r[0] for r in runs), key=lambda r: r[0])
        t_sub, b_sub, info = min((r[1] for r in runs), key=lambda r: r[0])
        assert info["mode"] == "subset"
        print(f"{args.fraction:.0%} subset ({len(pick):,} particles from "
              f"{len(set(paths.tolist()))} stacks):")
        print(f"  whole stacks  {t_whole:7.2f} s  {b_whole / 1e9:6.2f} GB")
        print(f"  subset-aware  {t_sub:7.2f} s  {b_sub / 1e9:6.2f} GB")
        print(f"RATIO subset time / whole  = {t_sub / t_whole:.3f}  (target <= 0.333)")
        print(f"RATIO subset space / whole = {b_sub / b_whole:.3f}  (target <= 0.333)")
        Cache(cfg).clear()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
