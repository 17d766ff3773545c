"""Building blocks for core tests: random DAG projects."""

from __future__ import annotations

from throwaway import fresh_project  # noqa: F401  (re-exported for the tests)

from cryodesk.core import jobs


def build_dag(project, edges_by_child: list[list[int]], workspace="W1"):
    """Create jobs J1..Jn; job i reads from the jobs listed in ``edges_by_child[i]`` (indices < i)."""
    made = []
    for parents in edges_by_child:
        if parents:
            specs = [jobs.InputSpec("particles", made[p].uid) for p in sorted(set(parents))]
            made.append(jobs.create_job(project, "t_step", workspace, specs))
        else:
            made.append(jobs.create_job(project, "t_source", workspace))
    return made


def brute_ancestors(edges_by_child, i) -> set[int]:
    out, stack = set(), list(edges_by_child[i])
    while stack:
        p = stack.pop()
        if p not in out:
            out.add(p)
            stack.extend(edges_by_child[p])
    return out
