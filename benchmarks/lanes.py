"""Benchmark: per-job overhead of the SLURM lane (submit -> completed) against running the same job locally.

The job is a restack of a real 7-particle EMPIAR-10076 stack (``../shared/realdata``), so the body itself
takes milliseconds and the figures are the lane's overhead.  Each round, interleaved, times one fresh
restack job three ways, from "run it" to "completed" in the database:

* ``in-process``: :func:`cryodesk.core.runner.run_job` in this process (what the app's engine does);
* ``cryodesk job run``: a new ``cryodesk job run P J`` process (the same start-up cost a node pays);
* ``slurm lane``: :func:`cryodesk.core.lanes.send` to a real Slurm, then ``sync`` every ``--poll`` s
  until the database says completed (sbatch, scheduling, ``cryodesk worker run-job`` on the node).

Needs a running Slurm (``.ci/slurm-start``) and PostgreSQL (``CRYODESK_TEST_PG_URL``; the database is
emptied).  ``--cold`` evicts the particle stack from the page cache (posix_fadvise DONTNEED) before each job.

Usage::

    CRYODESK_TEST_PG_URL=postgresql://... .venv/bin/python benchmarks/lanes.py [--rounds 5] [--cold]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from coldcache import evict  # noqa: E402

import cryodesk.jobs  # noqa: F401  (registers the job types)
from cryodesk import db as dbmod
from cryodesk.core import lanes, projects, runner
from cryodesk.core.jobs import InputSpec, create_job, get_job
from cryodesk.db.models import ALL_MODELS

REPO = Path(__file__).resolve().parents[1]
REAL = REPO.parent / "shared" / "realdata"
NODE_CMD = f"env PYTHONPATH={REPO} QT_QPA_PLATFORM=offscreen {sys.executable} -m cryodesk.cli.main"


def _stats(xs: list[float]) -> str:
    return f"{statistics.median(xs):7.3f} s  (min {min(xs):.3f} – max {max(xs):.3f})"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--poll", type=float, default=0.1, help="sync interval while waiting (s)")
    ap.add_argument("--cold", action="store_true", help="evict the particle stack before each job")
    args = ap.parse_args()
    url = os.environ.get("CRYODESK_TEST_PG_URL")
    if not url:
        print("set CRYODESK_TEST_PG_URL (the SLURM lane shares a PostgreSQL database)", file=sys.stderr)
        return 2
    if shutil.which("sbatch") is None:
        print("no sbatch: start a single-node Slurm with .ci/slurm-start", file=sys.stderr)
        return 2
    database = dbmod.make_database(url)
    dbmod.db.initialize(database)
    with database.connection_context():
        database.drop_tables(ALL_MODELS, cascade=True)
    dbmod.open_database(url)
    tmp = Path(tempfile.mkdtemp(prefix="cryodesk-bench-lanes-"))
    try:
        with dbmod.db.connection_context():
            return _run(args, url, tmp)
    finally:
        dbmod.close_database()
        shutil.rmtree(tmp, ignore_errors=True)


def _run(args, url: str, tmp: Path) -> int:
    p = projects.create_project("bench", tmp / "proj")
    projects.create_workspace(p, "main")
    pdir = Path(p.directory)
    for name in ("empiar_10076_7.mrc", "empiar_10076_7.cs"):
        shutil.copy(REAL / name, pdir / name)
    imp = create_job(p, "import_particles", params={"particle_meta_path": str(pdir / "empiar_10076_7.cs")})
    assert runner.run_job(p, imp).status == "completed"
    lanes.add_lane("bench", "slurm", cryodesk_cmd=NODE_CMD, ram_gb=1)
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    times: dict[str, list[float]] = {"in-process": [], "cryodesk job run": [], "slurm lane": []}

    def fresh():
        if args.cold:
            evict([pdir / "empiar_10076_7.mrc"])
        return create_job(p, "restack_particles", inputs=[InputSpec("particles", imp.uid)])

    for _ in range(args.rounds):
        job = fresh()
        t0 = time.perf_counter()
        assert runner.run_job(p, job).status == "completed"
        times["in-process"].append(time.perf_counter() - t0)

        job = fresh()
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cryodesk.cli.main", "--db", url, "job", "run", p.uid, job.uid],
                       env=env, check=True, capture_output=True)
        times["cryodesk job run"].append(time.perf_counter() - t0)
        assert get_job(p, job.uid).status == "completed"

        job = fresh()
        t0 = time.perf_counter()
        lanes.send(p, [job.uid], "bench")
        while get_job(p, job.uid).status not in ("completed", "failed", "killed"):
            time.sleep(args.poll)
            lanes.sync("bench")
        times["slurm lane"].append(time.perf_counter() - t0)
        status = get_job(p, job.uid)
        assert status.status == "completed", status.error

    print(f"restack of 7 real particles, {args.rounds} interleaved rounds{' (cold)' if args.cold else ''}; "
          "median (min – max), run -> completed in the database")
    for name, xs in times.items():
        print(f"  {name:18s} {_stats(xs)}")
    base = statistics.median(times["in-process"])
    proc = statistics.median(times["cryodesk job run"])
    lane = statistics.median(times["slurm lane"])
    print(f"  SLURM lane overhead per job: {lane - base:+.3f} s vs in-process, {lane - proc:+.3f} s vs a new "
          f"'cryodesk job run' process (poll interval {args.poll} s)")
    print(f"  peak RSS of this process: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
