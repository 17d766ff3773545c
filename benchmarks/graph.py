"""Graph queries on a 100,000-job random DAG (target: each under 50 ms here, issue 19).

Builds a project straight into a fresh SQLite database (bulk inserts; the
job directories are not needed for graph queries), then times ancestors,
descendants, the job chain, would_create_cycle and final-flag propagation,
each for a typical job and for the worst case, twice in the same run: with
the in-memory adjacency index (:mod:`cryodesk.core.graph_index`, the default;
validated against the change log before every query, so the time includes
that check) and with the recursive SQL it replaced (the baseline, also the
fallback inside uncommitted transactions).  Each figure is the median of
``--repeat`` rounds, index and SQL interleaved, with min-max.  Also printed:
the one-off cost of building the index, of patching it after one change, and
the peak RSS of the process (the index holds the project's edges).

Measured here (2 cores shared with five other busy helpers, load average ~9; 100,000 jobs,
143,957 edges, 7 rounds, 2026-12-01), median ms (min-max), index vs the recursive SQL before:

    ancestors (typical job, 27,128)           25.7 (14.5-42.1)     615 (524-858)     24x
    ancestors (last job, worst, 53,616)       58.8 (13.6-70.1)    1248 (466-1531)    21x
    ancestors, workspace-scoped (last job)    51.5 (37.2-2073)    1728 (1427-1896)   34x
    descendants (typical job, 45,203)         47.8 (23.9-67.4)     944 (714-1241)    20x
    descendants (first job, worst, 99,360)    95.2 (72.5-168)     2920 (2512-3497)   31x
    chain (typical pair, 26,967)              53.4 (31.7-153)     1896 (1638-2312)   36x
    would_create_cycle (first <- last)        23.5 (16.0-47.0)    2891 (2432-3464)  123x
    final propagation (20 finals, scratch)    1295 (1065-1535)    2836 (2295-3111)   2.2x
    mark or unmark one more final             734 (452-877)       2138 (1412-2760)   2.9x

The first query of a project in a process is SQL (444 ms); the second builds the index (8.0 s under
this load, incl. loading numba; peak RSS 249 -> 417 MB, mostly numba/llvmlite); after one change
the next query patches it in 60 ms.  In an earlier, less loaded run (before the last two speed-ups)
the index queries were 10-79 ms, SQL 220-2420 ms.  The final-flag rows are dominated by writing ~50,000 flags
(core/finals.py), not by the walk.

Usage: python benchmarks/graph.py [--jobs 100000] [--seed 1] [--repeat 7]
"""

from __future__ import annotations

import argparse
import random
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryodesk import db as dbmod  # noqa: E402
from cryodesk.core import events, finals, graph, graph_index  # noqa: E402
from cryodesk.db.models import Connection, Job, JobWorkspace, Project, Workspace  # noqa: E402


def build(n: int, seed: int) -> tuple[Project, list[list[int]]]:
    """A DAG shaped like real projects: many branches off a few imports, mostly local links."""
    rng = random.Random(seed)
    parents: list[list[int]] = []
    for i in range(n):
        if i < 5 or rng.random() < 0.002:  # a few import jobs
            parents.append([])
            continue
        k = 1 if rng.random() < 0.7 else rng.choice((2, 3))
        ps = set()
        for _ in range(k):
            back = 1 + int(rng.expovariate(1 / 30)) if rng.random() < 0.95 else rng.randrange(1, i + 1)
            ps.add(max(0, i - back))
        parents.append(sorted(ps))
    tmp = tempfile.mkdtemp(prefix="cryodesk-graph-")
    for i in range(n):  # set_final writes changed jobs' manifests
        Path(tmp, f"J{i + 1}").mkdir()
    p = Project.create(number=1, title="bench", directory=tmp, next_job_number=n + 1)
    ws = Workspace.create(project=p, number=1, title="main")
    with dbmod.db.atomic():
        rows = [dict(project=p.id, number=i + 1, type="t", title="", params={}, status="completed",
                     status_history=[], settings={}) for i in range(n)]
        for i in range(0, n, 2000):
            Job.insert_many(rows[i : i + 2000]).execute()
        ids = [r[0] for r in Job.select(Job.id).where(Job.project == p).order_by(Job.number).tuples()]
        edges = [dict(project=p.id, child=ids[i], slot="in", parent=ids[j], output="out", position=0)
                 for i, ps in enumerate(parents) for j in ps]
        for i in range(0, len(edges), 5000):
            Connection.insert_many(edges[i : i + 5000]).execute()
        links = [dict(job=jid, workspace=ws.id) for jid in ids]
        for i in range(0, n, 5000):
            JobWorkspace.insert_many(links[i : i + 5000]).execute()
    return p, parents


def timed(fn, repeat: int = 5, setup=None) -> float:
    times = []
    for _ in range(repeat):
        if setup is not None:
            setup()
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def once(fn, setup=None) -> float:
    if setup is not None:
        setup()
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def both(fn, repeat: int, setup=None, per: int = 1) -> tuple[list[float], list[float]]:
    """Times of ``fn`` with the index and with SQL, interleaved (A B A B ...), per call."""
    idx, sql = [], []
    for _ in range(repeat):
        graph_index.enabled = True
        idx.append(once(fn, setup) / per)
        graph_index.enabled = False
        sql.append(once(fn, setup) / per)
    graph_index.enabled = True
    return idx, sql


def fmt(ts: list[float]) -> str:
    return f"{statistics.median(ts) * 1000:7.1f} ({min(ts) * 1000:.1f}-{max(ts) * 1000:.1f})"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        dbmod.open_database(str(Path(tmp) / "bench.sqlite"))
        with dbmod.db.connection_context():
            t0 = time.perf_counter()
            project, parents = build(args.jobs, args.seed)
            print(f"built {args.jobs} jobs, {sum(map(len, parents))} edges in {time.perf_counter() - t0:.1f} s")
            jobs = list(Job.select().where(Job.project == project).order_by(Job.number))
            typical = jobs[len(jobs) // 2]
            last = jobs[-1]
            first = jobs[0]
            mid_anc = graph.ancestor_ids([typical])
            a = jobs[min(mid_anc, default=typical.id) - jobs[0].id] if mid_anc else typical
            baseline = timed(lambda: list(Connection.select(Connection.child, Connection.parent)
                                          .where(Connection.project == project).tuples()))
            ws = Workspace.get(Workspace.project == project)
            rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            graph_index.clear()
            t_first = once(lambda: graph.ancestor_ids([typical]))  # SQL: a one-shot process asks once
            t_build = once(lambda: graph.ancestor_ids([typical]))  # builds the index (and loads numba)
            rss1 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            graph.descendant_ids([typical])
            events.record(project, "links", [typical])  # as connect does: one job's edges read again
            t_patch = once(lambda: graph.ancestor_ids([typical]))
            rows = [
                ("ancestors (typical job)", lambda: graph.ancestor_ids([typical]), len(mid_anc)),
                ("ancestors (last job, worst case)", lambda: graph.ancestor_ids([last]),
                 len(graph.ancestor_ids([last]))),
                ("ancestors, workspace-scoped (last job)", lambda: graph.ancestor_ids([last], ws), None),
                ("descendants (typical job)", lambda: graph.descendant_ids([typical]),
                 len(graph.descendant_ids([typical]))),
                ("descendants (first job, worst case)", lambda: graph.descendant_ids([first]),
                 len(graph.descendant_ids([first]))),
                ("chain (typical pair)", lambda: graph.chain_ids(a, typical), len(graph.chain_ids(a, typical))),
                ("would_create_cycle (first job <- last job)", lambda: graph.would_create_cycle(first, last), None),
            ]
            finals_sample = random.Random(2).sample(jobs, 20)
            for j in finals_sample:
                Job.update(is_final=True).where(Job.id == j.id).execute()

            def reset():
                Job.update(is_ancestor_of_final=False).where(Job.project == project).execute()

            def propagate():
                finals.recompute_ancestor_flags(project, write_manifests=False)

            propagate.setup = reset

            propagate()
            rows.append(("final propagation (20 finals, from scratch)", propagate,
                         Job.select().where(Job.is_ancestor_of_final == True).count()))  # noqa: E712
            extra = jobs[-2]

            def mark_and_unmark():  # the user's gesture: mark one more final, then undo it
                Job.update(is_final=True).where(Job.id == extra.id).execute()
                finals.recompute_ancestor_flags(project, write_manifests=False, only_added=[extra])
                Job.update(is_final=False).where(Job.id == extra.id).execute()
                finals.recompute_ancestor_flags(project, write_manifests=False)

            mark_and_unmark.per = 2
            rows.append(("mark or unmark one more final (per propagation)", mark_and_unmark, None))
            finals.set_final(project, [extra], True)
            t0 = time.perf_counter()
            changed = finals.set_final(project, [extra], False).changed_ids
            t_unmark = time.perf_counter() - t0
            print(f"unmark one final incl. rewriting the {len(changed)} changed job.json manifests: "
                  f"{t_unmark * 1000:.0f} ms (the GUI does the rewriting in a worker)")
            print(f"load the edge list into Python: {baseline * 1000:.1f} ms")
            print(f"index: first query by SQL {t_first * 1000:.0f} ms; the second builds the index in "
                  f"{t_build * 1000:.0f} ms (incl. loading the numba kernel); after one change the next query "
                  f"patches it in "
                  f"{t_patch * 1000:.1f} ms; peak RSS {rss0 / 1024:.0f} MB before, {rss1 / 1024:.0f} MB after building")
            print(f"{args.repeat} rounds, index and SQL interleaved; median (min-max) ms; target < 50 ms")
            print(f"{'query':47s} {'index':>22s} {'SQL (before)':>22s} {'SQL/index':>9s} {'size':>7s}")
            for name, fn, size in rows:
                t_idx, t_sql = both(fn, args.repeat, getattr(fn, "setup", None), getattr(fn, "per", 1))
                m = statistics.median(t_idx)
                flag = "ok" if m < 0.05 else "SLOW"
                print(f"{name:47s} {fmt(t_idx):>22s} {fmt(t_sql):>22s} {statistics.median(t_sql) / m:8.1f}x "
                      f"{size if size is not None else '':>7}  {flag}")
        dbmod.close_database()


if __name__ == "__main__":
    main()
