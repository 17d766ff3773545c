"""Benchmark: a live session's throughput against the batch jobs on the same movies; compaction; restore.

Per round, interleaved (order alternating), on the same simulated movies:

* **batch**: ``import_movies`` → ``motion_correction`` → ``ctf_estimation`` →
  ``blob_picker`` → ``extract_particles`` run one after the other (what a user
  would queue after the collection ended);
* **session**: a live session with the same stage parameters takes the same
  movies from its watched directory (``settle_s`` 0, ``poll_s`` 0.5) and
  processes them on the engine's cpu pool, one exposure at a time and
  ``--parallel`` at a time (headless, the pool is the lane's limit); timed from
  start until every exposure is ready.  It also writes thumbnails, which the
  batch jobs do not.

**Streaming**: the movies arrive one at a time (as fast as the batch jobs process
them) while a session runs: how long after the last movie its results are
ready, against the batch jobs, which can only start once the last movie is there.

Then, on the last session: **compaction** (seconds per GB freed) and **restore**
(seconds, and exposures per minute).  Figures are medians of ``--rounds``
rounds with min–max; ``--cold`` drops the movies from the page cache
(``posix_fadvise`` DONTNEED) before each run, as real data is cold.  Peak RSS
at the end.  A warm-up round (numba compilation, imports) is not counted.

    .venv/bin/python benchmarks/live.py [--movies 8] [--shape 512] [--frames 8] [--rounds 3] [--cold]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from coldcache import evict  # noqa: E402

from cryodesk import db as dbmod  # noqa: E402
from cryodesk import jobs as _types  # noqa: E402,F401
from cryodesk.base.fsio import du_size  # noqa: E402
from cryodesk.core import jobs, projects, runner, sessions  # noqa: E402
from cryodesk.demo import simulate_dataset  # noqa: E402
from cryodesk.engine.live import run_session  # noqa: E402


def _stage_params(spec: dict) -> dict:
    return {"diameter_A": spec["particle_diameter_A"], "box_size_px": spec["box"]}


def run_batch(root: Path, k: int, movies: Path, spec: dict) -> float:
    p = projects.create_project(f"batch {k}", root / f"batch{k}")
    projects.create_workspace(p, "main")
    sp = _stage_params(spec)
    t0 = time.perf_counter()
    steps = [("import_movies", {"path": str(movies), "psize_A": spec["psize_A"]}, []),
             ("motion_correction", {}, [("movies", "J1")]),
             ("ctf_estimation", {}, [("micrographs", "J2")]),
             ("blob_picker", {"diameter_A": sp["diameter_A"]}, [("micrographs", "J3")]),
             ("extract_particles", {"box_size_px": sp["box_size_px"]}, [("micrographs", "J3"), ("locations", "J4")])]
    for type_name, params, inputs in steps:
        job = jobs.create_job(p, type_name, "W1", [jobs.InputSpec(*i) for i in inputs], params)
        done = runner.run_job(p, job)
        if done.status != "completed":
            raise SystemExit(f"batch {done.uid} {type_name}: {done.status}: {done.error}")
    return time.perf_counter() - t0


def run_live(root: Path, k: int, movies: Path, spec: dict, n: int, parallel: int):
    p = projects.create_project(f"live {k}", root / f"live{k}")
    sp = _stage_params(spec)
    s = sessions.create(p, str(movies / "*.mrc"), "bench", {
        "psize_A": str(spec["psize_A"]), "pick.diameter_A": str(sp["diameter_A"]),
        "extract.box_size_px": str(sp["box_size_px"]), "runner.settle_s": "0", "runner.poll_s": "0.5",
        "runner.max_parallel": str(parallel)})
    sessions.transition(p, s, "start")
    done = []
    t0 = time.perf_counter()

    def on_change():
        if not done and sessions.stage_counts(s)["ready"] == n:
            done.append(time.perf_counter() - t0)

    why, errors = run_session(p, s, idle_exit_s=0.2, on_change=on_change)
    if errors or not done:
        raise SystemExit(f"session: {why} {errors} {sessions.stage_counts(s)}")
    return p, s, done[0]


def run_streaming(root: Path, movies: Path, spec: dict, n: int, parallel: int, interval: float) -> float:
    """Movies arrive one every ``interval`` s; seconds from the last arrival until every exposure is ready."""
    import threading

    from cryodesk.demo.live import feed_movies

    incoming = root / "stream_in"
    incoming.mkdir()
    p = projects.create_project("stream", root / "stream")
    sp = _stage_params(spec)
    s = sessions.create(p, str(incoming / "*.mrc"), "bench", {
        "psize_A": str(spec["psize_A"]), "pick.diameter_A": str(sp["diameter_A"]),
        "extract.box_size_px": str(sp["box_size_px"]), "runner.settle_s": "0.2", "runner.poll_s": "0.5",
        "runner.max_parallel": str(parallel)})
    sessions.transition(p, s, "start")
    arrived, done = [], []
    t = threading.Thread(target=lambda: (feed_movies(movies.parent, incoming, interval),
                                         arrived.append(time.perf_counter() - interval)))
    t.start()

    def on_change():
        if not done and sessions.stage_counts(s)["ready"] == n:
            done.append(time.perf_counter())

    run_session(p, s, idle_exit_s=max(2.0, 2 * interval), on_change=on_change)
    t.join()
    return done[0] - arrived[0]


def fmt(values, unit="s") -> str:
    return f"{statistics.median(values):.2f} {unit} (min {min(values):.2f} – max {max(values):.2f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--movies", type=int, default=8)
    ap.add_argument("--shape", type=int, default=512)
    ap.add_argument("--frames", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--parallel", type=int, default=2, help="session runner.max_parallel")
    ap.add_argument("--cold", action="store_true")
    ap.add_argument("--dir", default=None)
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="cryodesk-live-bench-", dir=args.dir))
    try:
        truth = simulate_dataset(root / "raw", "small", seed=2, n_micrographs=args.movies, shape=args.shape,
                                 n_frames=args.frames)
        spec = truth["spec"]
        movies = root / "raw" / "movies"
        files = sorted(movies.glob("*.mrc"))
        movie_mb = sum(f.stat().st_size for f in files) / 1e6
        dbmod.open_database(str(root / "bench.sqlite"))
        with dbmod.db.connection_context():
            run_batch(root, 0, movies, spec)  # warm-up: numba, imports
            run_live(root, 0, movies, spec, args.movies, args.parallel)
            batch, live, live1 = [], [], []
            last = None
            for k in range(1, args.rounds + 1):
                order = ("batch", "live", "live1") if k % 2 else ("live1", "live", "batch")
                for what in order:
                    if args.cold:
                        evict(files)
                    if what == "batch":
                        batch.append(run_batch(root, k, movies, spec))
                    elif what == "live1":
                        live1.append(run_live(root, 100 + k, movies, spec, args.movies, 1)[2])
                    else:
                        p, s, t = run_live(root, k, movies, spec, args.movies, args.parallel)
                        live.append(t)
                        last = (p, s)
            interval = statistics.median(batch) / args.movies  # movies arrive as fast as batch processes them
            latency = run_streaming(root, movies, spec, args.movies, args.parallel, interval)
            p, s = last
            sessions.transition(p, s, "complete")
            sdir = Path(p.directory) / s.directory
            plan = sessions.compaction_plan(p, s)
            t0 = time.perf_counter()
            freed = sessions.compact(p, s)["freed_bytes"]
            t_compact = time.perf_counter() - t0
            after = du_size(sdir)
            sessions.start_restore(p, s)
            if args.cold:
                evict(files)
            t0 = time.perf_counter()
            why, errors = run_session(p, s)
            t_restore = time.perf_counter() - t0
        rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        rate = lambda ts: [args.movies / t * 60 for t in ts]  # noqa: E731
        print(f"{args.movies} movies of {args.frames} x {args.shape}² px ({movie_mb:.0f} MB), "
              f"{args.rounds} rounds{' (cold)' if args.cold else ''}, cores {os.cpu_count()}")
        print(f"batch jobs (baseline): {fmt(batch)} = {fmt(rate(batch), 'exposures/min')}")
        print(f"live session, 1 at a time:  {fmt(live1)} = {fmt(rate(live1), 'exposures/min')}")
        print(f"live session, max_parallel {args.parallel}: {fmt(live)} = {fmt(rate(live), 'exposures/min')}")
        print(f"session / batch throughput: {statistics.median(batch) / statistics.median(live1):.2f} x "
              f"(1 at a time), {statistics.median(batch) / statistics.median(live):.2f} x (max_parallel {args.parallel})")
        print(f"streaming (a movie every {interval:.2f} s): results {latency:.2f} s after the last movie arrived "
              f"with the session, {statistics.median(batch):.2f} s with batch jobs started then")
        print(f"compaction: freed {freed / 1e6:.1f} MB (plan {plan.bytes / 1e6:.1f} MB, session now "
              f"{after / 1e3:.0f} kB) in {t_compact:.3f} s = {t_compact / max(freed, 1) * 1e9:.1f} s/GB")
        print(f"restore: {t_restore:.2f} s ({why}{', errors: ' + str(errors) if errors else ''}) = "
              f"{args.movies / t_restore * 60:.1f} exposures/min")
        print(f"peak RSS: {rss:.0f} MB")
    finally:
        dbmod.close_database()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
