"""Benchmark: cryodesk's project size scan vs ``du -sb`` on the same tree.

Builds a project-shaped tree (default 2,000 job directories x 100 files in
sub-directories = 200,000 files, plus a session and a symlink to "raw data"
outside) and times, best of ``--repeat`` runs each, from a warm page cache:

* ``du -sb`` (the baseline),
* :func:`cryodesk.core.sizes.scan_project_dir` with the default workers,
* the same with one worker (the serial walk),

then prints the ratios.  Target: scan <= 1.5 x du.  The byte totals agree:
cryodesk counts every entry as ``du -sb`` does (directories and links included,
never following a symlink), and the check below says so.

Usage::

    .venv/bin/python benchmarks/size_scan.py [--jobs 2000] [--files 100] [--repeat 5] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from cryodesk.core import sizes


def build(root: Path, n_jobs: int, n_files: int) -> int:
    raw = root.parent / (root.name + "-raw")
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "movie.tif").write_bytes(b"r" * 100_000)
    made = 0
    for j in range(1, n_jobs + 1):
        jd = root / f"J{j}"
        subs = [jd / f"sub{k}" for k in range(4)]
        for s in subs:
            s.mkdir(parents=True, exist_ok=True)
        (jd / "job.json").write_text("{}")
        for f in range(n_files - 1):
            with open(subs[f % 4] / f"f{f}.bin", "wb") as fh:
                fh.write(b"x" * ((j * 31 + f * 17) % 2000))
        made += n_files
    (root / "S1").mkdir(exist_ok=True)
    (root / "S1" / "m.tif").write_bytes(b"s" * 5000)
    (root / "project.json").write_text("{}")
    link = root / "J1" / "raw"
    if not link.is_symlink():
        link.symlink_to(raw, target_is_directory=True)
    return made + 2


def best(fn, repeat: int) -> tuple[float, object]:
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=2000)
    ap.add_argument("--files", type=int, default=100, help="files per job directory")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--dir", help="build (or reuse) the tree here instead of a temporary directory")
    args = ap.parse_args()
    tmp = None
    if args.dir:
        root = Path(args.dir)
    else:
        tmp = tempfile.mkdtemp(prefix="cryodesk-size-bench-")
        root = Path(tmp) / "proj"
    try:
        if not (root / "project.json").exists():
            t = time.perf_counter()
            n = build(root, args.jobs, args.files)
            print(f"built {n:,} files in {time.perf_counter() - t:.1f} s under {root}")
        du_t, du_out = best(lambda: subprocess.run(["du", "-sb", str(root)], capture_output=True, text=True,
                                                    check=True).stdout.split()[0], args.repeat)
        par_t, scan = best(lambda: sizes.scan_project_dir(root), args.repeat)
        ser_t, scan1 = best(lambda: sizes.scan_project_dir(root, workers=1), args.repeat)
        assert scan.total == scan1.total
        print(f"files: {scan.files:,}   cryodesk total {scan.total:,} B (linked {scan.linked_bytes:,} B "
              f"reported apart)   du -sb {int(du_out):,} B")
        assert scan.total == int(du_out), "the scan's total is what du -sb says"
        print(f"du -sb                 {du_t:7.3f} s")
        print(f"scan (parallel, {min(8, os.cpu_count() or 1)} w)   {par_t:7.3f} s   {par_t / du_t:5.2f} x du")
        print(f"scan (1 worker)        {ser_t:7.3f} s   {ser_t / du_t:5.2f} x du")
        verdict = "OK" if par_t <= 1.5 * du_t else "SLOWER THAN TARGET"
        print(f"target scan <= 1.5 x du: {verdict}")
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
