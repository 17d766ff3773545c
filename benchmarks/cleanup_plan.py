"""Benchmark: planning a cleanup of a 10,000-job project (database only, no disk access).

Builds a project with ``--jobs`` jobs (bulk inserts: random DAG, every
category, statuses including killed/failed, iterative jobs with 5 output
versions, a few finals, two workspaces) and times :func:`plan_cleanup` with
every option on, for the project and for one workspace.  Target: well under
a second.  Baseline: one bulk ``SELECT`` of all job rows, in the same run.

Usage::

    .venv/bin/python benchmarks/cleanup_plan.py [--jobs 10000]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from cryodesk import db as dbmod
from cryodesk.core import finals, projects, registry
from cryodesk.core.cleanup import CleanupOptions, plan_cleanup
from cryodesk.core.registry import JobType, OutputGroup
from cryodesk.db.models import Connection, Job, JobWorkspace, OutputFile

CATS = ["import", "motion_correction", "ctf_estimation", "particle_picking", "extraction",
        "classification", "refinement", "utilities"]
for c in CATS:
    registry.register(JobType(f"b_{c}", c, c, outputs=(OutputGroup("out", "any", iterative=c == "classification"),)))


def build(p, n: int, rng: random.Random) -> None:
    w1, w2 = projects.list_workspaces(p)[0], projects.create_workspace(p, "two")
    statuses = ["completed"] * 8 + ["killed", "failed", "building"]
    with dbmod.db.atomic():
        rows = [dict(project=p.id, number=i + 1, type=f"b_{rng.choice(CATS)}", status=rng.choice(statuses),
                     size_bytes=rng.randint(0, 10**9)) for i in range(n)]
        for i in range(0, n, 500):
            Job.insert_many(rows[i:i + 500]).execute()
        ids = [r[0] for r in Job.select(Job.id).where(Job.project == p).order_by(Job.number).tuples()]
        links, conns, outs = [], [], []
        for k, jid in enumerate(ids):
            links.append(dict(job=jid, workspace=w1.id if k % 7 else w2.id))
            if k and rng.random() < 0.9:
                for par in {rng.randrange(max(0, k - 50), k) for _ in range(rng.randint(1, 2))}:
                    conns.append(dict(project=p.id, child=jid, slot="in", parent=ids[par], output="out"))
            versions = 5 if rows[k]["type"] == "b_classification" else 1
            for v in range(versions):
                outs.append(dict(job=jid, group="out", kind="blob", version=v, path=f"J{k + 1}/v{v}.bin",
                                 size_bytes=rng.randint(0, 10**8)))
        for table, data in ((JobWorkspace, links), (Connection, conns), (OutputFile, outs)):
            for i in range(0, len(data), 500):
                table.insert_many(data[i:i + 500]).execute()
        done = [j for j, r in zip(ids, rows) if r["status"] == "completed"]
        Job.update(is_final=True).where(Job.id.in_(rng.sample(done, 20))).execute()
    finals.recompute_ancestor_flags(p, write_manifests=False)


def best(fn, repeat=5):
    times, out = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return min(times), out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--jobs", type=int, default=10000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dbmod.open_database(str(Path(tmp) / "db.sqlite"))
        with dbmod.db.connection_context():
            p = projects.create_project("bench", Path(tmp) / "proj")
            projects.create_workspace(p, "main")
            t = time.perf_counter()
            build(p, args.jobs, random.Random(1))
            print(f"built {args.jobs:,} jobs in {time.perf_counter() - t:.1f} s")
            opts = CleanupOptions(preprocessing="all", intermediate=True, non_final="delete",
                                  killed="delete", failed="clear")
            base, _ = best(lambda: list(Job.select().where(Job.project == p).tuples()))
            tp, plan = best(lambda: plan_cleanup(p, opts))
            tw, wplan = best(lambda: plan_cleanup(p, opts, "W2"))
            print(f"baseline: SELECT all job rows      {base:6.3f} s")
            print(f"plan (project, all options)        {tp:6.3f} s  ({len(plan.entries):,} entries, "
                  f"{len(plan.skipped):,} protected)  {tp / base:4.1f} x baseline")
            print(f"plan (workspace W2)                {tw:6.3f} s  ({len(wplan.entries):,} entries)")
            print("target well under 1 s:", "OK" if tp < 0.5 else "SLOW")
        dbmod.close_database()


if __name__ == "__main__":
    main()
