"""The Qt-free layout (cryodesk.core.layout): layering, ordering, caching, snapshots."""

from __future__ import annotations

import numpy as np

from cryodesk.core import layout
from cryodesk.core.layout import CARD_W, GAP_X


def test_parents_are_left_of_children():
    parent = np.array([0, 1, 1, 2, 3])
    child = np.array([1, 2, 3, 4, 4])
    x, y = layout.layered_layout(5, parent, child)
    assert (x[child] > x[parent]).all()
    assert x[4] == 3 * (CARD_W + GAP_X)  # longest path 0-1-2-4
    # siblings 2 and 3 share a column but not a row
    assert x[2] == x[3] and y[2] != y[3]


def test_layout_is_cached_and_copies(monkeypatch):
    parent, child = np.array([0]), np.array([1])
    x1, y1 = layout.layered_layout(2, parent, child)
    x1[:] = -1  # callers may scribble on the result
    calls = []
    monkeypatch.setattr(layout, "_layers_and_barycentres", lambda *a: calls.append(a))
    x2, _ = layout.layered_layout(2, parent, child)
    assert not calls and x2[1] > x2[0]


def test_cycles_and_isolated_nodes_do_not_hang():
    x, y = layout.layered_layout(4, np.array([0, 1]), np.array([1, 0]))
    assert len(x) == 4 and np.isfinite(x).all() and np.isfinite(y).all()
    x, y = layout.layered_layout(0, np.array([], dtype=int), np.array([], dtype=int))
    assert len(x) == 0


def test_no_two_cards_overlap_in_a_wide_random_dag():
    rng = np.random.default_rng(1)
    n = 2000
    child = np.arange(1, n)
    parent = (rng.random(n - 1) * child).astype(int)
    x, y = layout.layered_layout(n, parent, child)
    pairs = set(zip(x.tolist(), y.tolist()))
    assert len(pairs) == n


def test_snapshot_of_workspace_marks_shared_jobs(demo):
    snap = layout.load_graph("P1", "W2")
    assert sorted(snap.uid(i) for i in range(len(snap))) == ["J1", "J10"]
    assert snap.shared[snap.index_of("J1")] and not snap.shared[snap.index_of("J10")]
    full = layout.load_graph("P1")
    assert len(full) == 10 and len(full.edge_parent) == 9
    assert full.size.sum() > 0
    b = layout.breakdown(full)
    assert sum(b["final"].values()) == int(full.size.sum())
    assert b["kind"]["preprocessing"] > 0  # the ui_motion jobs


def test_job_rows_patch_a_snapshot_in_place(demo):
    from cryodesk.core import finals, jobs

    snap = layout.load_graph("P1", "W1")
    x, size_before = snap.x.copy(), snap.size.copy()
    finals.set_final("P1", [jobs.get_job("P1", "J5")], True)
    jobs.set_status(jobs.get_job("P1", "J7"), "failed", error="test")
    rows = layout.job_rows("P1", [5, 7, 10, 999])  # J10 is in W2, J999 does not exist
    assert rows.numbers.tolist() == [5, 7, 10]
    idx = snap.apply_rows(rows)
    assert sorted(snap.uid(i) for i in idx) == ["J5", "J7"]  # J10 is not in this snapshot
    assert snap.is_final[snap.index_of("J5")] and snap.status_name(snap.index_of("J7")) == "failed"
    assert not snap.is_ancestor[snap.index_of("J4")]  # only the jobs asked for are re-read
    # sizes include job.json (du -sb): the rows re-read bring theirs, the others keep what was loaded
    others = [i for i in range(len(snap)) if i not in set(idx.tolist())]
    assert (snap.x == x).all() and (snap.size[others] == size_before[others]).all()
    fresh = layout.load_graph("P1", "W1")
    for i in idx:
        assert snap.status[i] == fresh.status[i] and snap.is_final[i] == fresh.is_final[i]
    assert len(snap.apply_rows(layout.job_rows("P1", []))) == 0
