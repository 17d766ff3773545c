"""Benchmark: the cost of recording a manifest change first (``.cryodesk/pending``, issue 20).

Every manifest write now writes (and, for a single durable write, fsyncs) a
small record before the manifest and removes it at the commit.  Measured in
one run, rounds interleaved: ``set_params`` of one job (one durable
``job.json`` write in one transaction) and a bulk rewrite of ``--jobs``
manifests (:func:`cryodesk.core.finals.write_manifests`, one record per
batch), each with the record (as shipped) and without it (the baseline: the
record step replaced by a no-op).  Medians with min–max, peak RSS.

Usage::

    .venv/bin/python benchmarks/manifest_record.py [--rounds 7] [--jobs 500] [--single 50]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from pathlib import Path

import jobtypes  # noqa: F401  (tests/ on sys.path: PYTHONPATH=.:tests)

from cryodesk import db as dbmod
from cryodesk.core import finals, jobs, pending, projects

jobtypes.family("bm")


def _fmt(xs) -> str:
    return f"{statistics.median(xs) * 1e3:8.2f} ms  ({min(xs) * 1e3:.2f}–{max(xs) * 1e3:.2f})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--jobs", type=int, default=500)
    ap.add_argument("--single", type=int, default=50, help="set_params calls per round")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=Path.cwd()) as tmp:
        dbmod.open_database(str(Path(tmp) / "bench.sqlite"))
        with dbmod.db.connection_context():
            p = projects.create_project("Bench", Path(tmp) / "proj")
            projects.create_workspace(p, "main")
            many = [jobs.create_job(p, "bm_source", "W1") for _ in range(args.jobs)]
            one = many[0]
            real = pending.begin
            times = {k: [] for k in ("single+record", "single baseline", "bulk+record", "bulk baseline")}
            for r in range(args.rounds):
                for with_record in ((True, False) if r % 2 == 0 else (False, True)):
                    pending.begin = real if with_record else (lambda *a, **k: None)
                    tag = "+record" if with_record else " baseline"
                    t = time.perf_counter()
                    for i in range(args.single):
                        jobs.set_params(p, one, {"nbytes": 10 + i})
                    times["single" + tag].append((time.perf_counter() - t) / args.single)
                    t = time.perf_counter()
                    finals.write_manifests(p, [j.id for j in many])
                    times["bulk" + tag].append(time.perf_counter() - t)
            pending.begin = real
    print(f"set_params, one job.json (per call), {args.rounds} rounds interleaved:")
    print(f"  with the record  {_fmt(times['single+record'])}")
    print(f"  baseline         {_fmt(times['single baseline'])}")
    print(f"bulk rewrite of {args.jobs} manifests:")
    print(f"  with the record  {_fmt(times['bulk+record'])}")
    print(f"  baseline         {_fmt(times['bulk baseline'])}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
