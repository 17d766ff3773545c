"""Reachability in a compressed (CSR) adjacency: the graph index's walk.

The job graph of a project is held as ``indptr``/``indices`` arrays over dense
node numbers (see :mod:`cryodesk.core.graph_index`); ``reach`` returns every
node reachable from ``starts`` along edges through nodes allowed by ``keep``.
Start nodes are in the answer only if an edge leads back to them (a cycle).
A node is marked when first reached, so a cycle in a crafted database — a
job that is its own input — ends the walk instead of looping.

The numba version is a depth-first walk with an explicit stack (~10 ns per
edge) and returns the nodes in the order it found them; the numpy reference
walks level by level and returns them sorted.
"""

from __future__ import annotations

import numpy as np

from ._numba import HAVE_NUMBA, jit

__all__ = ["reach", "reach_numpy", "IMPLEMENTATION"]


def reach_numpy(indptr: np.ndarray, indices: np.ndarray, starts: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Reference: sorted node numbers reachable from ``starts`` through nodes with ``keep`` true.

    Parameters
    ----------
    indptr : int64 array, shape (n + 1,)
    indices : int64 array
        Edge targets of node ``v`` are ``indices[indptr[v]:indptr[v + 1]]``.
    starts : int64 array
    keep : bool or uint8 array, shape (n,)
    """
    n = indptr.size - 1
    seen = np.zeros(n, dtype=bool)
    keep = np.asarray(keep, dtype=bool)
    frontier = np.unique(np.asarray(starts, dtype=np.int64))
    found = []
    while frontier.size:
        lo = indptr[frontier]
        cnt = indptr[frontier + 1] - lo
        total = int(cnt.sum())
        if total == 0:
            break
        pos = np.repeat(lo - (np.cumsum(cnt) - cnt), cnt) + np.arange(total)
        nxt = np.unique(indices[pos])
        nxt = nxt[~seen[nxt] & keep[nxt]]
        seen[nxt] = True
        found.append(nxt)
        frontier = nxt
    return np.sort(np.concatenate(found)) if found else np.empty(0, np.int64)


def _reach_impl(indptr, indices, starts, keep):
    n = indptr.size - 1
    seen = np.zeros(n, dtype=np.uint8)
    out = np.empty(n, dtype=np.int64)
    stack = np.empty(n + starts.size, dtype=np.int64)
    top = 0
    for s in starts:
        stack[top] = s
        top += 1
    m = 0
    while top > 0:
        top -= 1
        v = stack[top]
        for e in range(indptr[v], indptr[v + 1]):
            w = indices[e]
            if seen[w] == 0 and keep[w]:
                seen[w] = 1  # marked once: each node is pushed at most once, a cycle ends here
                out[m] = w
                m += 1
                stack[top] = w
                top += 1
    return out[:m]


if HAVE_NUMBA:
    reach_numba = jit(_reach_impl)
    __all__.append("reach_numba")

    def reach(indptr, indices, starts, keep) -> np.ndarray:
        """Node numbers reachable from ``starts``, in no particular order (compiled walk)."""
        return reach_numba(indptr, indices, np.asarray(starts, dtype=np.int64), np.asarray(keep, dtype=np.uint8))

    IMPLEMENTATION = "numba"
else:  # pragma: no cover - depends on the environment
    reach = reach_numpy
    IMPLEMENTATION = "numpy"
