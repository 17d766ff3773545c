"""Level of detail on a big synthetic tree: the overview alone when zoomed out, cards only where visible."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import QRectF

from cryodesk.core import layout
from cryodesk.ui.graph_scene import MAX_CARDS
from cryodesk.ui.graph_view import QtJobGraphView


def synthetic(n: int, seed: int = 0) -> layout.GraphSnapshot:
    rng = np.random.default_rng(seed)
    child = np.arange(1, n)
    parent = np.maximum(0, child - rng.integers(1, 200, n - 1))  # ~50 columns of ~100 jobs
    snap = layout.GraphSnapshot(
        project_uid="P9", workspace_uid=None, ids=np.arange(1, n + 1), numbers=np.arange(1, n + 1),
        types=["t_step"] * n, titles=[f"job {i}" for i in range(n)], status=rng.integers(0, 9, n).astype(np.int8),
        category=rng.integers(0, 10, n).astype(np.int8), size=rng.integers(0, 10**9, n),
        is_final=np.zeros(n, bool), is_ancestor=np.zeros(n, bool), shared=np.zeros(n, bool),
        edge_parent=parent, edge_child=child)
    snap.is_final[n - 1] = True
    snap.apply_placement(layout.place(n, parent, child))
    return snap


@pytest.fixture
def view(qtbot):
    v = QtJobGraphView()
    qtbot.addWidget(v)
    v.resize(1000, 700)
    v.show()
    qtbot.waitExposed(v)
    yield v
    v.close()


def test_zoomed_out_tree_has_no_cards_and_zoomed_in_only_visible_ones(view, qtbot, artifacts_dir):
    snap = synthetic(5000)
    view.scene().set_snapshot(snap)
    view.fit()
    view.refresh_details()
    assert view.scene().cards == {}  # one overview item draws all 5000
    view.grab().save(str(artifacts_dir / "ui_tree_5000_overview.png"))
    view.set_zoom(0.8)
    view.center_on_job(2500)
    view.refresh_details()
    cards = view.scene().cards
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    assert 0 < len(cards) <= MAX_CARDS
    assert all(visible.intersects(QRectF(c.pos(), c.boundingRect().size())) for c in cards.values())
    assert 2500 in cards


def test_colour_by_size_uses_the_heat_scale(view):
    snap = synthetic(500)
    view.scene().set_snapshot(snap)
    view.scene().set_colour_mode("size")
    biggest, smallest = int(np.argmax(snap.size)), int(np.argmin(snap.size))
    assert view.scene().colour_of(biggest).name() == "#d73027"
    assert view.scene().colour_of(smallest).name() == "#313695"
