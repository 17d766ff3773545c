"""Benchmark: restack against ``cp`` of the same bytes, hot and cold, with peak RSS per method.

Builds synthetic particle stacks (``--gb`` of box-``--box`` float32 images,
``--per-stack`` images each) in ``--dir``, selects a scattered subset
(``--fraction``, grouped by stack like a real ``.cs``) and times, in
interleaved rounds (A B C, B C A, ...; a sync before each), every method in a **child process of
its own**, so that each peak RSS is that method's alone: a small meter
process runs the command and reports ``resource.getrusage(RUSAGE_CHILDREN)``.

``--mode lib``
    The library gather (``cryodesk.io.gather`` with the job's transform:
    checks on; float32 and float16 output).  Timed inside the child (plan +
    copy); the child also reports its RSS right after its imports (the
    interpreter baseline: numpy, and numba for float16).
``--mode job`` (default)
    End to end: the real ``cryodesk job run P1 J<n>`` of a ``restack_particles``
    job in a cryodesk project whose input is an ``import_particles`` job of
    the subset, timed from process start to exit; plus ``job run`` of a
    trivial job (an ``external`` job running ``true``) and ``python -c pass``,
    which give the fixed overhead of ``job run`` beyond interpreter start and
    the RSS baseline of a job run.
``--mode all``
    Both.

The baseline ``cp`` copies whole source stacks adding up to at least the
same number of bytes (time scaled to exactly those bytes).  ``--cold``
evicts the benchmark's own source stacks from the page cache before every
timed run of every method (``fsync`` then ``posix_fadvise(POSIX_FADV_DONTNEED)``
on each; nothing else is evicted).  Hot (the default), they are read into the page cache
right before every timed run of every method, and the benchmark prints how much of them was still
there (``coldcache.warm``: this VM's DAMON pages out page cache left idle for 60 s, and a 20 %
subset touches a fifth of each stack's pages).  Outputs are not synced by either side
(``cp`` does not sync either).  Children run with a bytecode cache
(``PYTHONPYCACHEPREFIX`` in the work directory), as an installed app has.

Every method removes its previous output right before its next run, as ``cp`` always did here
(before 2026-12-02 the gathers and jobs removed theirs right after each run): in a VM whose free
memory goes back to the host (virtio-balloon free page reporting), memory freed seconds earlier
faults in the host when touched again, so a method writing into memory freed long before paid
for it and ``cp`` did not.  ``--free-after`` removes every output (cp's too) right after its run
instead.  The library gathers also report their CPU time (all threads, timed part) and the sha256
of their output (first run), compared with the baseline tree's.

Usage::

    .venv/bin/python benchmarks/restack.py --dir /work/tmp-bench --gb 2 --rounds 3 [--cold] [--mode all]
    # before/after in the same rounds: the previous commit's tree as a baseline
    git archive HEAD~1 | tar -x -C /tmp/base && ... benchmarks/restack.py ... --baseline-tree /tmp/base

Targets (issue 19): restack >= 0.8 x cold cp and >= 1.0 x hot cp end to
end, float16 no slower than float32, peak RSS < 100 MB and flat in the input
size, ``job run`` overhead <= 0.3 s beyond interpreter start.

Measured 2026-12-01 on the 2-core VM at load average 4.1-4.5 (other sessions), medians of 3
rounds, "before" = ``--baseline-tree`` of the commit before (full table in README "Restack:
speed, memory and job run overhead"):

* cold, 10 GB input, 1.99 GB moved: job run restack float32 1.00 x cp (0.86-1.22; before 0.85),
  81 MB; float16 (>= 1 GiB: numba) 0.56 x cp (before 0.46), 228 MB.
* hot, 2 GB input, 0.40 GB moved: library gather float32 0.44 x cp (before 0.32), 44 MB; job
  run restack float16 1.29 s and 82 MB (before 3.55 s and 219 MB: numba no longer loaded below
  1 GiB of input), float32 0.91 s, 80 MB.
* job run of a trivial job 0.8-1.6 s beyond ``python -c pass`` at this load.

2026-12-02, load average 5-6, float16 by F16C (cryodesk/kernels/_f16c.c) against the tree before:
cold, 8 GB input, 1.60 GB moved, ``--mode job``: float16 3.91 s against 9.09 s, 1.05 x cold cp
against 0.40, peak RSS 65 MB against 184 MB; hot, 2 GB: library gather float16 0.80 s against
2.28 s, float32 / float16 time 1.06.

2026-12-02, load average 3.5-5 (other sessions), 2 GB input, 0.40 GB moved, against the tree before
(1 MiB pwrite pieces, fallocate, two readers, F16C range check on the output; medians, 5 rounds):
hot ``--mode all``: library gather float32 0.23 s (0.77 x cp) against 0.55 s (0.33 x cp), CPU
0.18 s; float16 0.15 s against 0.18 s; job run float32 0.67 s against 1.08 s, float16 0.56 s
against 0.51 s; float32 / float16 1.54 (library), 1.25 (job run); peak RSS 73 / 77 MB against
69 / 71 MB; sha256 of the outputs equal to the tree before's.  Cold (6 rounds, ``--mode lib``):
float32 0.52 s (0.84 x cold cp) against 0.57 s (0.50 x), float16 0.50 s against 0.50 s.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
if "--child" in sys.argv:  # a child starts as cryodesk's own processes do: the runtime set before numpy loads
    from cryodesk._runtime import configure  # (OPENBLAS_NUM_THREADS: see cryodesk/_runtime.py)

    configure()
import numpy as np  # noqa: E402
from coldcache import evict, warm  # noqa: E402
from harness import METER as _METER  # noqa: E402
from harness import run_in_workdir  # noqa: E402

from cryodesk.base.syncfs import sync_filesystem  # noqa: E402

# -- data --------------------------------------------------------------------------------------

def build_stacks(root: Path, total_bytes: float, box: int, per_stack: int, seed: int) -> list[Path]:
    """Write float32 stacks of ``per_stack`` images until ``total_bytes`` is reached."""
    from cryodesk.io.mrc import make_header

    rng = np.random.default_rng(seed)
    image = box * box * 4
    n_total = max(1, int(total_bytes // image))
    block = rng.standard_normal((32, box, box), dtype=np.float32)  # written in 32-image chunks
    paths = []
    for k, start in enumerate(range(0, n_total, per_stack)):
        n = min(per_stack, n_total - start)
        path = root / f"mic_{k:05d}.mrc"
        with open(path, "wb") as fh:
            fh.write(make_header(box, box, n, 2, 1.0))
            for c in range(0, n, 32):
                # a cheap change per chunk so that no two images are byte-identical
                fh.write((block[: min(32, n - c)] + np.float32(k * per_stack + c)).tobytes())
        paths.append(path)
    return paths


def select(counts: list[int], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A scattered subset in dataset order (grouped by stack, like a real .cs): (stack, index)."""
    rng = np.random.default_rng(seed + 1)
    sid, sidx = [], []
    for k, n in enumerate(counts):
        keep = np.flatnonzero(rng.random(n) < fraction)
        sid.append(np.full(keep.size, k, np.int64))
        sidx.append(keep.astype(np.int64))
    return np.concatenate(sid), np.concatenate(sidx)


# -- the library child -------------------------------------------------------------------------

def child_gather(args) -> int:
    """``--child gather``: plan and copy the subset with the job's transform; JSON on stdout."""
    import resource

    from cryodesk._runtime import configure

    configure()  # the numba cache where the CLI keeps it
    from cryodesk.io.gather import execute_plan, plan_gather
    from cryodesk.kernels.batch import ParticleTransform

    spec = np.load(args.items)
    paths = [Path(p) for p in spec["paths"].tolist()]
    numba_load = 0.0
    from cryodesk.io.mrc import read_header
    from cryodesk.kernels.batch import float16_kernel_for

    moved = len(spec["sid"]) * read_header(paths[0]).nx * read_header(paths[0]).ny * 4
    if args.f16 and (args.f16_kernel or float16_kernel_for(moved)) == "numba":
        # numba and the loaded kernel belong to the baseline of this method, not to the data
        # (F16C, or numpy's cast for a smaller float16 restack, never loads numba)
        t0 = time.perf_counter()
        from cryodesk.kernels.float16 import to_float16

        to_float16(np.zeros((1, 2, 2), np.float32))  # loads the compiled kernel from numba's cache
        numba_load = time.perf_counter() - t0
    rss_imports = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t0, c0 = time.perf_counter(), time.process_time()
    items = ((paths[s], i) for s, i in zip(spec["sid"].tolist(), spec["sidx"].tolist()))
    plan = plan_gather(items, args.out, particles_per_file=args.per_file)
    transform = ParticleTransform(plan.n_items, plan.in_shape, plan.in_dtype, float16=args.f16,
                                  float16_kernel=args.f16_kernel)
    plan = plan.with_output(out_shape=transform.out_shape, out_dtype=transform.out_dtype)
    execute_plan(plan, transform, drop_written=args.drop_written,
                 **({} if args.readahead_mb is None else {"readahead_bytes": int(args.readahead_mb * (1 << 20))}))
    secs, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"seconds": secs, "cpu": cpu, "rss_imports_kb": rss_imports, "numba_load": numba_load, "bytes_read": plan.n_items *
                      plan.in_image_bytes, "bytes_written": plan.out_bytes}))
    return 0


# -- the parent --------------------------------------------------------------------------------

def _digest(out: Path) -> str:
    """sha256 over the output stacks of one run, in name order (names included)."""
    import hashlib

    h = hashlib.sha256()
    for p in sorted(out.glob("*.mrc")):
        h.update(p.name.encode())
        with open(p, "rb") as fh:
            while chunk := fh.read(1 << 22):
                h.update(chunk)
    return h.hexdigest()


class Bench:
    def __init__(self, args, root: Path):
        self.args, self.root = args, root
        self.env = dict(os.environ, PYTHONPATH=str(REPO), QT_QPA_PLATFORM="offscreen",
                        PYTHONPYCACHEPREFIX=str(root / "pycache"), CRYODESK_DB=str(root / "bench.sqlite"))
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.cli = [sys.executable, "-m", "cryodesk.cli.main"]

    def meter(self, cmd: list[str], tree: Path | None = None) -> dict:
        """Run ``cmd`` under the meter; ``tree``: with that checkout's cryodesk (a baseline) instead of this one."""
        env = self.env if tree is None else dict(self.env, PYTHONPATH=str(tree),
                                                 PYTHONPYCACHEPREFIX=str(self.root / "pycache-baseline"))
        # from the tree's directory: `python -m` puts the working directory first on sys.path
        out = subprocess.run([sys.executable, "-c", _METER, *cmd], env=env, check=True, cwd=tree or REPO,
                             stdout=subprocess.PIPE).stdout
        res = json.loads(out)
        if res["rc"] != 0:
            raise SystemExit(f"benchmark command failed ({res['rc']}): {' '.join(cmd)}\n{res['stderr']}")
        return res

    def cryodesk(self, *argv: str) -> dict:
        out = subprocess.run([*self.cli, *argv, "--json"], env=self.env, check=True,
                             stdout=subprocess.PIPE).stdout
        return json.loads(out)


def _fmt_rng(values, scale=1.0, fmt="{:.2f}"):
    return f"{fmt.format(statistics.median(values) * scale)} ({fmt.format(min(values) * scale)}-" \
           f"{fmt.format(max(values) * scale)})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--gb", type=float, default=2.0, help="size of the synthetic input (GB)")
    ap.add_argument("--box", type=int, default=256)
    ap.add_argument("--per-stack", type=int, default=200, help="images per source stack")
    ap.add_argument("--fraction", type=float, default=0.2, help="fraction of particles selected")
    ap.add_argument("--per-file", type=int, default=10000, help="particles per output stack")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians, min-max)")
    ap.add_argument("--cold", action="store_true", help="evict the source stacks before every timed run")
    ap.add_argument("--mode", choices=("lib", "job", "all"), default="job")
    ap.add_argument("--no-f16", action="store_true", help="skip the float16 methods")
    ap.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp dir)")
    ap.add_argument("--readahead-mb", type=float, nargs="*", default=None,
                    help="library mode: one gather per value, with this WILLNEED read-ahead (MiB; 0: none)")
    ap.add_argument("--seed", type=int, default=0)
    # internal: the library child
    ap.add_argument("--child", choices=("gather",), help=argparse.SUPPRESS)
    ap.add_argument("--items", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--f16", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--f16-both", action="store_true",
                    help="library mode: also float16 with numpy's cast, the numba kernel and F16C, whatever the size")
    ap.add_argument("--f16-kernel", choices=("numpy", "numba", "f16c"), default=None, help=argparse.SUPPRESS)
    ap.add_argument("--baseline-tree", type=Path, default=None,
                    help="also run the library gather and job run restack with the cryodesk of this checkout "
                         "(e.g. `git worktree add` or `git archive` of the commit before a change): before/after "
                         "figures from the same interleaved rounds")
    ap.add_argument("--free-after", action="store_true",
                    help="every method (cp too) removes its output right after its run, instead of right "
                         "before its next run (the default: each method then writes into memory it has just "
                         "freed, as cp always did here; see the module docstring)")
    ap.add_argument("--sha256", action=argparse.BooleanOptionalAction, default=True,
                    help="library mode: sha256 of each method's output stacks (first run), compared at the end")
    ap.add_argument("--per-round", action="store_true",
                    help="also print every round's time (and CPU) of every method, in round order")
    ap.add_argument("--drop-written", action="store_true",
                    help="library mode: also a float32 gather that keeps its output out of the page cache")
    args = ap.parse_args(argv)
    if args.child:
        args.readahead_mb = args.readahead_mb[0] if args.readahead_mb else None
        return child_gather(args)

    return run_in_workdir(args.dir, lambda root: run(args, root))


def run(args, root: Path) -> int:
    from cryodesk.io.cs import from_columns, write_cs

    b = Bench(args, root)
    src = root / "src"
    src.mkdir()
    t0 = time.perf_counter()
    paths = build_stacks(src, args.gb * 1e9, args.box, args.per_stack, args.seed)
    image = args.box * args.box * 4
    counts = [int((p.stat().st_size - 1024) // image) for p in paths]
    os.sync()  # the sources on disk and clean in the page cache, as after extraction
    sid, sidx = select(counts, args.fraction, args.seed)
    nbytes = sid.size * image
    print(f"input: {len(paths)} stacks, {sum(counts):,} particles of {args.box}x{args.box} float32, "
          f"{sum(counts) * image / 1e9:.2f} GB (built in {time.perf_counter() - t0:.0f} s)")
    print(f"selected: {sid.size:,} particles ({args.fraction:.0%}), {nbytes / 1e9:.2f} GB moved; "
          f"{'COLD (sources evicted before every run)' if args.cold else 'hot (sources in the page cache)'}"
          f"; {args.rounds} interleaved rounds")
    print(f"load average before the runs: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs\n")

    # cp of whole stacks with at least the same bytes
    cp_paths, cp_total = [], 0
    for p in paths:
        if cp_total >= nbytes:
            break
        cp_paths.append(p)
        cp_total += p.stat().st_size
    methods: dict[str, callable] = {}
    digests: dict[str, str] = {}  # library method label -> sha256 of its output stacks (first run)

    def m_cp():
        dest = root / "cp"
        shutil.rmtree(dest, ignore_errors=True)
        dest.mkdir()
        if args.cold:
            evict(cp_paths)
        r = b.meter(["cp", *map(str, cp_paths), str(dest)])
        if args.free_after:
            shutil.rmtree(dest, ignore_errors=True)
        return {"seconds": r["wall"] * nbytes / cp_total, "maxrss_kb": r["maxrss_kb"]}

    methods["cp (same bytes)"] = m_cp
    variants = [("float32", False)] + ([] if args.no_f16 else [("float16", True)])
    if args.mode in ("lib", "all"):
        items = root / "items.npz"
        np.savez(items, paths=np.array([str(p) for p in paths]), sid=sid, sidx=sidx)
        lib_variants = [(f"{label} (+ checks)", f16, None, False) for label, f16 in variants]
        if args.f16_both and not args.no_f16:  # float16 both ways, whatever the size says
            lib_variants += [(f"float16 (+ checks), {k} kernel", f"kernel:{k}", None, False) for k in ("numpy", "numba", "f16c")]
        if args.baseline_tree:
            lib_variants += [(f"{label} (+ checks), BASELINE tree", f16, None, "baseline") for label, f16 in variants]
        if args.drop_written:
            lib_variants.append(("float32 (+ checks), drop written pages", False, None, True))
        if args.readahead_mb:
            lib_variants = [(f"float32 (+ checks), read-ahead {mb:g} MiB", False, mb, False)
                            for mb in args.readahead_mb]
        for k, (label, f16, ra, drop) in enumerate(lib_variants):
            # each gather its own output directory, as cp has: every method then frees exactly its own previous
            # output right before its run (a shared one freed another method's output, of another size: a
            # float32 gather after a float16 one wrote half its 0.4 GB into memory freed seconds earlier, which
            # this VM had handed back to the host meanwhile; that doubled its write time, in some rounds 5 x)
            def m_lib(f16=f16, ra=ra, drop=drop, label=label, out=root / f"lib-out-{k}"):
                shutil.rmtree(out, ignore_errors=True)
                if args.cold:
                    evict(paths)
                here = Path(__file__).resolve() if drop != "baseline" else args.baseline_tree / "benchmarks" / "restack.py"
                cmd = [sys.executable, str(here), "--child", "gather", "--items", str(items),
                       "--out", str(out), "--per-file", str(args.per_file)] + (["--f16"] if f16 else []) + \
                      (["--f16-kernel", f16.split(":")[1]] if isinstance(f16, str) else []) + \
                      ([] if ra is None else ["--readahead-mb", str(ra)]) + \
                    (["--drop-written"] if drop is True else [])
                r = b.meter(cmd, args.baseline_tree if drop == "baseline" else None)
                info = json.loads(r["stdout"].strip().splitlines()[-1])
                if args.free_after:
                    shutil.rmtree(out, ignore_errors=True)
                row = {"seconds": info["seconds"], "maxrss_kb": r["maxrss_kb"], "cpu": info.get("cpu"),
                       "baseline_kb": info["rss_imports_kb"], "numba_load": info["numba_load"]}
                if args.sha256 and not digests.get(label):
                    row["sha256"] = digests[label] = _digest(out)
                return row

            methods[f"library gather, {label}"] = m_lib
            if f16 or drop == "baseline":
                m_lib()  # warm-up: the float16 kernel into numba's cache, the baseline's bytecode cache
    if args.mode in ("job", "all"):
        meta = src / "particles.cs"
        write_cs(meta, from_columns({
            "blob/path": np.array([p.name for p in paths])[sid], "blob/idx": sidx.astype(np.uint32),
            "blob/shape": np.tile(np.array([args.box, args.box], np.uint32), (sid.size, 1)),
            "blob/psize_A": np.full(sid.size, 1.0, np.float32)}))
        b.cryodesk("project", "create", "--title", "Bench", "--dir", str(root / "proj"))
        b.cryodesk("workspace", "create", "--title", "W", "P1")
        imp = b.cryodesk("job", "create", "P1", "import_particles", "-p", f"particle_meta_path={meta}")["uid"]
        b.meter([*b.cli, "job", "run", "P1", imp])

        def fresh(job_type: str, *params: str) -> str:
            extra = ["-i", f"particles={imp}"] if job_type == "restack_particles" else []
            return b.cryodesk("job", "create", "P1", job_type, *extra,
                              *[x for p in params for x in ("-p", p)])["uid"]

        def drop(uid: str) -> None:
            subprocess.run([*b.cli, "job", "delete", "P1", uid], env=b.env, check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

        def m_pass():
            return {"seconds": b.meter([sys.executable, "-c", "pass"])["wall"], "maxrss_kb": 0}

        def m_trivial():
            uid = fresh("external", "command=true")
            r = b.meter([*b.cli, "job", "run", "P1", uid])
            drop(uid)
            return {"seconds": r["wall"], "maxrss_kb": r["maxrss_kb"]}

        methods["python -c pass"] = m_pass
        methods["cryodesk job run (trivial job)"] = m_trivial
        previous: dict[tuple, str] = {}  # method -> its last job, deleted right before its next run
        for label, f16 in variants:
            for tree in [None] + ([args.baseline_tree] if args.baseline_tree else []):
                def m_job(f16=f16, tree=tree, key=(label, tree)):
                    if key in previous and not args.free_after:  # the previous run's output, as cp's, just before
                        drop(previous.pop(key))
                    uid = fresh("restack_particles", f"output_f16={str(f16).lower()}")
                    if args.cold:
                        evict(paths)
                    r = b.meter([*b.cli, "job", "run", "P1", uid], tree)
                    if args.free_after:
                        drop(uid)
                    else:
                        previous[key] = uid
                    return {"seconds": r["wall"], "maxrss_kb": r["maxrss_kb"]}

                methods[f"cryodesk job run restack, {label}" + (", BASELINE tree" if tree else "")] = m_job
        m_trivial()  # warm-up: bytecode cache, numba cache, database
        if args.baseline_tree:
            uid = fresh("external", "command=true")
            b.meter([*b.cli, "job", "run", "P1", uid], args.baseline_tree)
            drop(uid)

    results: dict[str, list[dict]] = {name: [] for name in methods}
    was_resident: list[float] = []  # hot: the fraction of the sources still in the page cache before each run
    names = list(methods)
    for r in range(args.rounds):
        # the order rotates from round to round (A B C, B C A, ...), and the writeback of the previous
        # method's output is finished before the next starts: no method always pays another's
        for name in names[r % len(names):] + names[:r % len(names)]:
            sync_filesystem(root)
            if not args.cold:  # hot means in the page cache: DAMON may have paged some of it out since
                was_resident.append(warm(paths))
            results[name].append(methods[name]())
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)
    for out in [root / "cp", *root.glob("lib-out-*")]:
        shutil.rmtree(out, ignore_errors=True)

    cp_t = [x["seconds"] for x in results["cp (same bytes)"]]
    print(f"{'method':<50} {'seconds':>20} {'GB/s':>17} {'x cp':>17} {'peak RSS MB':>16}")
    for name, rows in results.items():
        t = [x["seconds"] for x in rows]
        rss = [x["maxrss_kb"] / 1024 for x in rows]
        moved = "restack" in name or "gather" in name or name.startswith("cp")
        gbs = _fmt_rng([nbytes / s / 1e9 for s in t]) if moved else "-"
        ratio = _fmt_rng([c / s for c, s in zip(cp_t, t)]) if moved and not name.startswith("cp") else "-"
        base = ""
        if rows[0].get("baseline_kb"):
            base = f"  (after imports {statistics.median([x['baseline_kb'] for x in rows]) / 1024:.0f})"
        if rows[0].get("numba_load"):
            base += f"  (+ numba import and kernel load {_fmt_rng([x['numba_load'] for x in rows])} s, not timed)"
        if rows[0].get("cpu") is not None:
            base += f"  (CPU {_fmt_rng([x['cpu'] for x in rows])} s)"
        print(f"{name:<50} {_fmt_rng(t):>20} {gbs:>17} {ratio:>17} "
              f"{(f'{statistics.median(rss):.0f} (max {max(rss):.0f})' if max(rss) else '-'):>16}{base}")
    if args.per_round:
        for name, rows in results.items():
            print(f"  {name}: " + " ".join(f"{x['seconds']:.3f}" + (f"/{x['cpu']:.2f}" if x.get("cpu") is not None else "")
                                          for x in rows))
    print("\nmedians with (min-max) over the rounds; 'x cp' = cp time / method time, per round; library "
          "CPU: the child's process CPU time over the timed part (all its threads)")
    if was_resident:
        print(f"hot: before each run the sources were read into the page cache; {_fmt_rng(was_resident, 100, '{:.1f}')} "
              f"% of their bytes were still there")
    for label, digest in digests.items():  # (the first run of each, a warm-up included)
        if "BASELINE" not in label:
            twin = digests.get(f"{label}, BASELINE tree")
            same = "" if twin is None else ("  = BASELINE tree's" if twin == digest else "  DIFFERS from the BASELINE tree's")
            print(f"library gather, {label}: output sha256 {digest[:16]}...{same}")
    if "python -c pass" in results:
        tp = [x["seconds"] for x in results["python -c pass"]]
        tt = [x["seconds"] for x in results["cryodesk job run (trivial job)"]]
        print(f"job run fixed overhead beyond interpreter start: {_fmt_rng([a - p for a, p in zip(tt, tp)])} s "
              f"(target <= 0.3)")
        base = statistics.median([x["maxrss_kb"] / 1024 for x in results["cryodesk job run (trivial job)"]])
        for name, rows in results.items():
            if "restack" in name:
                above = [x["maxrss_kb"] / 1024 - base for x in rows]
                print(f"{name}: peak RSS {_fmt_rng([x['maxrss_kb'] / 1024 for x in rows], fmt='{:.0f}')} MB, "
                      f"{_fmt_rng(above, fmt='{:.0f}')} MB above a trivial job run ({base:.0f} MB)")
    for label, _ in variants:
        for kind in ("library gather", "cryodesk job run restack"):
            a = [x["seconds"] for x in results.get(f"{kind}, float32 (+ checks)" if kind.startswith("lib")
                                                    else f"{kind}, float32", [])]
            f = [x["seconds"] for x in results.get(f"{kind}, float16 (+ checks)" if kind.startswith("lib")
                                                    else f"{kind}, float16", [])]
            if label == "float16" and a and f:
                print(f"{kind}: float32 time / float16 time = {_fmt_rng([x / y for x, y in zip(a, f)])} "
                      f"(target >= 1.0)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
