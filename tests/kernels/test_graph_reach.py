"""The compiled graph walk and its numpy reference agree, also on graphs with cycles and a keep mask."""

from __future__ import annotations

import numpy as np
import pytest

from cryodesk.kernels import graph as kg

IMPLS = [kg.reach_numpy] + ([kg.reach] if kg.IMPLEMENTATION == "numba" else [])


def csr(n: int, edges: list[tuple[int, int]]):
    src = np.array([a for a, _ in edges], np.int64)
    dst = np.array([b for _, b in edges], np.int64)
    order = np.argsort(src, kind="stable")
    indptr = np.zeros(n + 1, np.int64)
    np.add.at(indptr, src + 1, 1)
    return np.cumsum(indptr), dst[order]


def brute(n, edges, starts, keep):
    seen, stack = set(), list(starts)
    while stack:
        v = stack.pop()
        for a, b in edges:
            if a == v and b not in seen and keep[b]:
                seen.add(b)
                stack.append(b)
    return sorted(seen)


@pytest.mark.parametrize("impl", IMPLS, ids=lambda f: f.__name__)
def test_reach_matches_brute_force_on_random_graphs_with_cycles(impl):
    rng = np.random.default_rng(3)
    for _ in range(60):
        n = int(rng.integers(1, 25))
        edges = [(int(a), int(b)) for a, b in rng.integers(0, n, size=(int(rng.integers(0, 50)), 2))]
        if not edges:
            edges = [(0, 0)]
        indptr, indices = csr(n, edges)
        starts = rng.integers(0, n, size=int(rng.integers(1, 4)))
        keep = rng.random(n) < 0.8
        assert sorted(impl(indptr, indices, starts, keep).tolist()) == brute(n, edges, starts.tolist(), keep)


@pytest.mark.parametrize("impl", IMPLS, ids=lambda f: f.__name__)
def test_a_self_loop_ends(impl):
    indptr, indices = csr(2, [(0, 0), (0, 1), (1, 0)])
    assert sorted(impl(indptr, indices, np.array([0]), np.ones(2, bool)).tolist()) == [0, 1]
