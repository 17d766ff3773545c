"""Cycles in a project's job graph: a damaged database (or one edited by hand) may hold them.

cryodesk never makes one (``connect`` and ``project attach`` refuse them), but every walk of
the DAG must still end on one: the cleanup planner, the finals and the job tree guard against
revisiting a job, and the commands that show a project say that its graph is damaged
(:func:`cycle_warning`) instead of looping or answering silently.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict, defaultdict

import numpy as np

from ..db.models import Connection, Job

_EDGE_CACHE: "OrderedDict[bytes, list[int]]" = OrderedDict()


def find_cycles(project, limit: int = 3) -> list[list[str]]:
    """Up to ``limit`` cycles of ``project``'s input connections, each as uids ``[J1, J2, J1]`` (J1 reads J2 ...).

    One query of the edges and an iterative depth-first walk (every job and edge visited once).
    """
    # a job reads jobs made before it: with every edge from an older (smaller id) to a newer job there is
    # no loop, and one indexed scan says so without loading the graph
    if not Connection.select().where((Connection.project == project.id)
                                     & (Connection.parent >= Connection.child)).exists():
        return []
    parents: dict[int, list[int]] = defaultdict(list)
    for child, parent in Connection.select(Connection.child, Connection.parent).where(
            Connection.project == project.id).tuples():
        parents[child].append(parent)
    if not parents:
        return []
    found: list[list[int]] = []
    state: dict[int, int] = {}  # 1: on the current path, 2: done
    for start in sorted(parents):
        if state.get(start) or len(found) >= limit:
            continue
        path, iters = [start], [iter(parents[start])]
        state[start] = 1
        while path:
            nxt = next(iters[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                iters.pop()
            elif state.get(nxt) == 1:
                if len(found) < limit:
                    found.append(path[path.index(nxt):] + [nxt])
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                iters.append(iter(parents.get(nxt, ())))
    numbers = dict(Job.select(Job.id, Job.number).where(Job.id.in_({j for c in found for j in c})).tuples()) \
        if found else {}
    return [[f"J{numbers.get(j, '?')}" for j in c] for c in found]


def cycle_warning(project) -> str | None:
    """A sentence for the user if ``project``'s job inputs form a cycle (None: they do not)."""
    loops = find_cycles(project)
    if not loops:
        return None
    shown = "; ".join(" <- ".join(c) for c in loops)
    return (f"{project.uid}'s job inputs form a cycle ({shown}): the database is damaged (a job cannot read "
            "its own output). Cleanup keeps the jobs on it (they cannot be deleted); to repair it, run "
            f"'cryodesk project detach {project.uid}', then 'cryodesk project attach' the directory: attach "
            "names the job.json input that closes the loop, to remove")


def _peel(n: int, src: list[int], dst: list[int], alive: list[bool]) -> None:
    """Kahn's peeling along ``src -> dst`` among ``alive`` nodes: clears every node no cycle reaches."""
    indeg = [0] * n
    out: list[list[int]] = [[] for _ in range(n)]
    for a, b in zip(src, dst):
        if alive[a] and alive[b]:
            indeg[b] += 1
            out[a].append(b)
    ready = [i for i in range(n) if alive[i] and indeg[i] == 0]
    while ready:
        u = ready.pop()
        alive[u] = False
        for v in out[u]:
            indeg[v] -= 1
            if indeg[v] == 0:
                ready.append(v)


def cyclic_nodes(n: int, parent, child) -> list[int]:
    """Indices of the nodes on a cycle of the edge list ``parent[k] -> child[k]`` ([]: a DAG).

    For the job tree the GUI draws (its snapshot's arrays): Kahn's peeling from the roots, then
    from the leaves of what is left (so jobs merely below or above a loop are not named; a job
    on a path between two loops is), remembered per edge list: a reload of an unchanged tree
    costs one hash.
    """
    parent = np.asarray(parent, dtype=np.int64)
    child = np.asarray(child, dtype=np.int64)
    if not len(parent) or not np.any(parent >= child):
        return []  # every edge runs from an older job to a newer one (indices in creation order): no loop
    parent, child = np.ascontiguousarray(parent), np.ascontiguousarray(child)
    key = hashlib.blake2b(np.int64(n).tobytes() + parent.tobytes() + child.tobytes(), digest_size=16).digest()
    hit = _EDGE_CACHE.get(key)
    if hit is not None:
        return list(hit)
    src, dst = parent.tolist(), child.tolist()
    alive = [True] * n
    _peel(n, src, dst, alive)
    if any(alive):
        _peel(n, dst, src, alive)
    out = [i for i in range(n) if alive[i]]
    _EDGE_CACHE[key] = out
    if len(_EDGE_CACHE) > 8:
        _EDGE_CACHE.popitem(last=False)
    return list(out)


def snapshot_warning(snap) -> str | None:
    """The job tree's warning when its snapshot's edges hold a cycle (a damaged database), else None."""
    bad = cyclic_nodes(len(snap.ids), snap.edge_parent, snap.edge_child)
    if not bad:
        return None
    uids = ", ".join(f"J{int(snap.numbers[i])}" for i in bad[:6]) + (" ..." if len(bad) > 6 else "")
    return (f"Warning: the job inputs of {snap.project_uid} form a cycle ({uids}): the database is damaged; "
            f"cleanup keeps these jobs. To repair it: cryodesk project detach {snap.project_uid}, then project "
            "attach (it names the input to remove).")
