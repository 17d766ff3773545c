"""The Qt-free layout (cryodesk.core.layout): layering, ordering, caching, snapshots."""

from __future__ import annotations

import numpy as np

from cryodesk.core import layout
from cryodesk.core.layout import CARD_H, CARD_W, GAP_Y


def _segment_hits_card(seg, x, y) -> bool:
    """Does segment ``seg`` pass through the inside of a card at (x, y)? (sampled, 1-unit margin)"""
    x0, y0, x1, y1 = seg
    t = np.linspace(0.0, 1.0, 41)
    px, py = x0 + (x1 - x0) * t, y0 + (y1 - y0) * t
    return bool(((px > x + 1) & (px < x + CARD_W - 1) & (py > y + 1) & (py < y + CARD_H - 1)).any())


def _edges_under_cards(placed) -> list:
    return [(k, i) for k, seg in enumerate(placed.segments) for i in range(len(placed.x))
            if _segment_hits_card(seg, placed.x[i], placed.y[i])]


def _overlapping(placed) -> list:
    x, y = placed.x, placed.y
    return [(i, j) for i in range(len(x)) for j in range(i + 1, len(x))
            if abs(x[i] - x[j]) < CARD_W and abs(y[i] - y[j]) < CARD_H]


def test_parents_are_above_children_in_rows_by_depth():
    parent = np.array([0, 1, 1, 2, 3])
    child = np.array([1, 2, 3, 4, 4])
    placed = layout.place(5, parent, child)
    x, y = placed.x, placed.y
    assert placed.kind == "routed"
    assert (y[child] > y[parent]).all()
    assert y[4] == 3 * (CARD_H + GAP_Y)  # longest path 0-1-2-4: the fourth row
    assert y[2] == y[3] and x[2] != x[3]  # siblings share a row, side by side
    assert x[0] == x[1]  # a chain runs straight down


def test_the_demo_main_line_wraps_into_bands_and_no_edge_runs_under_a_card():
    # J1 -> ... -> J8 with J3 -> J5 skipping J4 (the demo's main workspace)
    parent = np.array([0, 1, 2, 2, 3, 4, 5, 6])
    child = np.array([1, 2, 3, 4, 4, 5, 6, 7])
    tall = layout.place(8, parent, child)
    assert tall.bands == 1 and _edges_under_cards(tall) == []
    placed = layout.place(8, parent, child, view=(900, 620))
    assert placed.bands == 2 and not _overlapping(placed)
    width = placed.x.max() + CARD_W - placed.x.min()
    height = placed.y.max() + CARD_H - placed.y.min()
    assert min(900 / width, 620 / height) >= 0.8  # fits the viewport at a readable zoom
    assert _edges_under_cards(placed) == []  # the J3 -> J5 edge goes round J4, the band change round all


def test_ghost_parents_sit_above_their_children():
    # jobs 0..2 of the workspace; 3 and 4 are parents from elsewhere
    parent, child = np.array([3, 4, 0, 3]), np.array([0, 0, 1, 2])
    ghost = np.array([False, False, False, True, True])
    placed = layout.place(5, parent, child, ghost)
    assert placed.y[3] == placed.y[4] == placed.y[0] - (CARD_H + GAP_Y)
    assert placed.y[2] == placed.y[0] and placed.y[1] == placed.y[0] + (CARD_H + GAP_Y)
    assert _edges_under_cards(placed) == [] and not _overlapping(placed)


def test_wide_rows_wrap_and_random_workspaces_keep_edges_off_cards():
    fan = layout.place(13, np.zeros(12, dtype=int), np.arange(1, 13), view=(1000, 700))
    assert len(set(fan.y[1:].tolist())) >= 2  # twelve children of one job do not make one endless row
    rng = np.random.default_rng(3)
    for n in (12, 30, 60):
        child = np.arange(1, n)
        parent = np.maximum(0, child - rng.integers(1, 6, n - 1))
        placed = layout.place(n, parent, child, view=(1100, 700))
        assert placed.kind == "routed"
        assert _edges_under_cards(placed) == [] and not _overlapping(placed), n


def test_layout_is_cached_and_copies(monkeypatch):
    from cryodesk.core import dag_layout

    parent, child = np.array([0]), np.array([1])
    first = layout.place(2, parent, child)
    first.x[:] = -1  # callers may scribble on the result
    calls = []
    monkeypatch.setattr(dag_layout, "routed_layout", lambda *a: calls.append(a))
    again = layout.place(2, parent, child)
    assert not calls and again.y[1] > again.y[0] and again.x[0] != -1


def test_cycles_and_isolated_nodes_do_not_hang():
    placed = layout.place(4, np.array([0, 1]), np.array([1, 0]))
    assert len(placed.x) == 4 and np.isfinite(placed.x).all() and np.isfinite(placed.y).all()
    assert len(layout.place(0, np.array([], dtype=int), np.array([], dtype=int)).x) == 0


def test_big_trees_get_the_overview_layout_without_overlaps():
    rng = np.random.default_rng(1)
    n = 5000
    child = np.arange(1, n)
    parent = (rng.random(n - 1) * child).astype(int)
    placed = layout.place(n, parent, child)
    assert placed.kind == "overview" and len(placed.segments) == n - 1
    assert len(set(zip(placed.x.tolist(), placed.y.tolist()))) == n
    assert (placed.y[child] > placed.y[parent]).all()


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
    # W2 holds J10 and J1: no parent lives elsewhere; W1's J2 reads J1, which W1 holds too
    assert len(snap.ghosts) == 0


def test_parents_in_other_workspaces_are_ghosts(demo):
    from cryodesk.core import actions, jobs

    actions.link("P1", [jobs.get_job("P1", "J5")], "W2")  # J5 reads J3 and J4, which live in W1 only
    snap = layout.load_graph("P1", "W2")
    g = snap.ghosts
    assert sorted(g.uid(k) for k in range(len(g))) == ["J3", "J4"]
    assert all(w.startswith("W1 ") for w in g.where) and g.first_workspace(0) == "W1"
    assert sorted(snap.uid(int(c)) for c in g.edge_child) == ["J5", "J5"]
    # ghosts are laid out with the jobs: above their child, edges included
    j5 = snap.index_of("J5")
    assert (g.y < snap.y[j5]).all() and len(snap.edge_segments()) >= 2


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
