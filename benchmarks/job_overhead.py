"""Benchmark: the fixed overhead of ``cryodesk job run`` beyond interpreter start, with peak RSS.

In interleaved rounds (A B C A B C ...), each command in a child process of
its own, timed from its start to its exit by a small meter process that also
reports its peak RSS (``resource.getrusage(RUSAGE_CHILDREN)``):

* ``python -c pass`` — interpreter start, the baseline;
* ``python -c "import cryodesk.cli.main"`` — the CLI module alone;
* ``cryodesk job run P1 J<n>`` of a trivial job (an ``external`` job running
  ``true``; a fresh job every round) — what a user waits for around any job.

``--before DIR`` measures the same commands against another source tree too
(e.g. ``--before /work/main``: the figures before a change, in the same run),
on the same database and project.  Children run with a bytecode cache
(``PYTHONPYCACHEPREFIX`` in the work directory, one per tree), as an
installed app has, and the virtualenv warm (one warm-up round is not timed);
there is no cold mode: the files read are the interpreter's and cryodesk's,
not the benchmark's own data.

Usage::

    .venv/bin/python benchmarks/job_overhead.py --rounds 7 [--before /work/main]

Target (issue 19): ``job run`` overhead <= 0.3 s beyond ``python -c pass``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import METER as _METER  # noqa: E402
from harness import run_in_workdir  # noqa: E402

# make the trivial jobs of all rounds in one process (not timed)
_MAKE_JOBS = r"""
import json, sys
from cryodesk.db import open_database
from cryodesk.core import jobs
import cryodesk.jobs
open_database(None)
print(json.dumps([jobs.create_job("P1", "external", "W1", params={"command": "true"}).uid
                  for _ in range(int(sys.argv[1]))]))
"""


class Tree:
    """One source tree under test: its environment and CLI."""

    def __init__(self, label: str, src: Path, root: Path, db: Path):
        self.label, self.src = label, src
        self.env = dict(os.environ, PYTHONPATH=str(src), QT_QPA_PLATFORM="offscreen", CRYODESK_DB=str(db),
                        PYTHONPYCACHEPREFIX=str(root / f"pycache-{label}"))
        self.env.pop("PYTHONDONTWRITEBYTECODE", None)
        self.cli = [sys.executable, "-m", "cryodesk.cli.main"]
        self.cwd = root  # not a source tree: ``-m`` puts the working directory first on sys.path
        self.jobs: list[str] = []

    def run(self, *argv: str) -> str:
        return subprocess.run([*self.cli, *argv], env=self.env, cwd=self.cwd, check=True,
                              stdout=subprocess.PIPE).stdout.decode()

    def make_jobs(self, n: int) -> None:
        out = subprocess.run([sys.executable, "-c", _MAKE_JOBS, str(n)], env=self.env, cwd=self.cwd, check=True,
                             stdout=subprocess.PIPE).stdout
        self.jobs = json.loads(out)

    def meter(self, cmd: list[str]) -> dict:
        out = subprocess.run([sys.executable, "-c", _METER, *cmd], env=self.env, cwd=self.cwd, check=True,
                             stdout=subprocess.PIPE).stdout
        res = json.loads(out)
        if res["rc"] != 0:
            raise SystemExit(f"benchmark command failed ({res['rc']}): {' '.join(cmd)}\n{res['stderr']}")
        return {"seconds": res["wall"], "maxrss_kb": res["maxrss_kb"]}


def _fmt(values, fmt="{:.3f}"):
    return f"{fmt.format(statistics.median(values))} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7, help="interleaved rounds (medians, min-max)")
    ap.add_argument("--before", type=Path, help="another source tree to measure too (e.g. /work/main)")
    ap.add_argument("--dir", type=Path, default=None, help="work directory (default: a temp dir)")
    args = ap.parse_args(argv)
    return run_in_workdir(args.dir, lambda root: run(args, root))


def run(args, root: Path) -> int:
    db = root / "bench.sqlite"
    trees = [Tree("this", REPO, root, db)]
    if args.before is not None:
        trees.insert(0, Tree("before", args.before.resolve(), root, db))
    main_tree = trees[-1]
    main_tree.run("project", "create", "--title", "Bench", "--dir", str(root / "proj"))
    main_tree.run("workspace", "create", "--title", "W", "P1")
    for t in trees:
        t.make_jobs(args.rounds + 1)
        where = subprocess.run([sys.executable, "-c", "import cryodesk; print(cryodesk.__file__)"], env=t.env,
                               cwd=t.cwd, check=True, stdout=subprocess.PIPE).stdout.decode().strip()
        print(f"{t.label}: cryodesk from {where}")

    py = main_tree  # (python -c pass needs no tree: any environment)
    methods = {"python -c pass": lambda: py.meter([sys.executable, "-c", "pass"])}
    for t in trees:
        suffix = f" [{t.label}: {t.src}]" if len(trees) > 1 else ""
        methods[f"import cryodesk.cli.main{suffix}"] = lambda t=t: t.meter([sys.executable, "-c",
                                                                            "import cryodesk.cli.main"])
        methods[f"cryodesk job run (trivial job){suffix}"] = lambda t=t: t.meter([*t.cli, "job", "run", "P1",
                                                                                  t.jobs.pop()])
    for fn in methods.values():  # warm-up: bytecode caches, the database file, the page cache
        fn()
    print(f"load average before the runs: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; "
          f"{args.rounds} interleaved rounds\n")
    results: dict[str, list[dict]] = {name: [] for name in methods}
    for r in range(args.rounds):
        for name, fn in methods.items():
            results[name].append(fn())
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    base = [x["seconds"] for x in results["python -c pass"]]
    print(f"{'command':<72} {'seconds':>22} {'beyond python -c pass':>24} {'peak RSS MB':>18}")
    for name, rows in results.items():
        t = [x["seconds"] for x in rows]
        beyond = "-" if name == "python -c pass" else _fmt([a - b for a, b in zip(t, base)])
        rss = _fmt([x["maxrss_kb"] / 1024 for x in rows], fmt="{:.0f}")
        print(f"{name:<72} {_fmt(t):>22} {beyond:>24} {rss:>18}")
    print("\nmedians with (min-max) over the rounds; 'beyond' is per round (same round's python -c pass)")
    over = {}
    for t in trees:
        suffix = f" [{t.label}: {t.src}]" if len(trees) > 1 else ""
        run_t = [x["seconds"] for x in results[f"cryodesk job run (trivial job){suffix}"]]
        over[t.label] = [a - b for a, b in zip(run_t, base)]
        print(f"job run fixed overhead beyond interpreter start{suffix}: {_fmt(over[t.label])} s "
              f"(best round {min(over[t.label]):.3f}; target <= 0.3)")
    if len(trees) > 1:  # on a shared machine the ratio within a round is the figure that means something
        print(f"overhead this / before, per round: {_fmt([a / b for a, b in zip(over['this'], over['before'])], '{:.2f}')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
