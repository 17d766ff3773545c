"""Top-down layered DAG layout with edges routed around the cards (Qt-free, numpy).

Two layouts, chosen by size:

* **routed** (up to :data:`ROUTED_MAX` nodes): what a workspace of a few to a
  few thousand jobs gets, read like CryoSPARC's tree.  Rows of jobs by depth
  (parents above children; a row holds at most ``cap`` cards, the rest wrap to
  the next row), long chains wrapped into side-by-side *bands* chosen so the
  tree fits the viewport at a readable zoom, crossings reduced by barycentre
  sweeps, and every edge a polyline that never passes under a card: an edge
  spanning several rows goes through a reserved slot in each row it crosses
  (a Sugiyama "dummy node"), and an edge from one band to the next runs in the
  free margins below, between and above the bands.
* **overview** (larger trees, 10k-50k jobs): the O(nodes + edges) longest-path
  layering of the earlier layout, turned top-down, with straight edges; the
  GUI draws it in one batched item and only the jobs in view as cards.

Both return a :class:`Placement`: card positions and the edge segments as one
``(m, 4)`` array, so the GUI draws every edge with one ``drawLines`` call.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

#: card geometry in scene units; the GUI draws cards of exactly this size
CARD_W, CARD_H = 190.0, 70.0
#: horizontal gap between cards (and edge slots) of a row; vertical gap between rows
GAP_X, GAP_Y = 34.0, 46.0
#: width a long edge reserves in a row it crosses
SLOT_W = 12.0
#: room between bands per edge lane, and the margin of the buses
LANE, BUS = 7.0, 18.0
#: arrowhead size at a child's input port
ARROW = 7.0
ROUTED_MAX = 2500
ROUTED_MAX_SLOTS = 12000
#: bands are considered only for trees at least this deep, and are at least this many rows
MIN_BAND_ROWS = 3
#: the zoom the routed layout aims to fit the viewport at (the view opens at >= 0.8)
TARGET_ZOOM = 0.9


@dataclass
class Placement:
    """Where nodes go and how edges run.

    Attributes
    ----------
    x, y : ndarray of float
        Top-left corner of each node's card.
    segments : ndarray, shape (m, 4)
        Line segments ``x0, y0, x1, y1`` of every edge (and arrowheads).
    kind : str
        ``"routed"`` or ``"overview"``.
    bands : int
        Number of side-by-side bands (1: no wrapping of depth).
    rows : int
        Rows per band.
    """

    x: np.ndarray
    y: np.ndarray
    segments: np.ndarray
    kind: str = "overview"
    bands: int = 1
    rows: int = 0

    def copy(self) -> "Placement":
        return Placement(self.x.copy(), self.y.copy(), self.segments.copy(), self.kind, self.bands, self.rows)


def straight_segments(x, y, parent, child) -> np.ndarray:
    """One segment per edge, parent's bottom centre to child's top centre."""
    parent, child = np.asarray(parent, dtype=np.int64), np.asarray(child, dtype=np.int64)
    if len(parent) == 0:
        return np.zeros((0, 4))
    return np.column_stack([x[parent] + CARD_W / 2, y[parent] + CARD_H, x[child] + CARD_W / 2, y[child]])


# -- shared helpers ----------------------------------------------------------------------

def csr(n: int, src: np.ndarray, dst: np.ndarray) -> tuple[list[int], list[int]]:
    idx = np.argsort(src, kind="stable")
    starts = np.searchsorted(src[idx], np.arange(n + 1)).tolist()
    return starts, dst[idx].tolist()


def topological_order(n: int, parent: np.ndarray, child: np.ndarray) -> list[int]:
    """Kahn's order; nodes on a cycle (corrupt data) are appended in index order."""
    indeg = np.bincount(child, minlength=n).tolist() if n else []
    starts, targets = csr(n, parent, child)
    ready = [i for i in range(n) if indeg[i] == 0]
    order: list[int] = []
    while ready:
        nxt: list[int] = []
        for u in ready:
            order.append(u)
            for v in targets[starts[u]:starts[u + 1]]:
                indeg[v] -= 1
                if indeg[v] == 0:
                    nxt.append(v)
        ready = nxt
    if len(order) < n:
        seen = set(order)
        order.extend(i for i in range(n) if i not in seen)
    return order


# -- overview layout (large trees) -------------------------------------------------------------

def overview_layout(n: int, parent: np.ndarray, child: np.ndarray) -> Placement:
    """Rows by longest-path depth, ordered by a barycentre key, rows centred; straight edges."""
    layer, bary = _layers_and_barycentres(n, parent, child)
    order = np.lexsort((np.arange(n), bary, layer))
    sorted_layers = layer[order]
    starts = np.searchsorted(sorted_layers, sorted_layers, side="left")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - starts
    counts = np.bincount(layer, minlength=1) if n else np.zeros(1, dtype=np.int64)
    widest = counts.max() if n else 0
    offset = (widest - counts) / 2.0  # centre every row on the widest one
    x = np.asarray((rank + offset[layer] if n else rank) * (CARD_W + GAP_X), dtype=float)
    y = np.asarray(layer * (CARD_H + GAP_Y), dtype=float)
    return Placement(x, y, straight_segments(x, y, parent, child), "overview", 1, int(layer.max() + 1) if n else 0)


def _layers_and_barycentres(n: int, parent: np.ndarray, child: np.ndarray):
    """Longest-path layer of each node, and a sort key that keeps children near their parents."""
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    order = topological_order(n, parent, child)
    pstarts, plist = csr(n, child, parent)  # parents of each node
    layer = [0] * n
    bary = [0.0] * n
    source_rank = 0
    for u in order:  # plain lists: ~10x faster than per-node numpy calls
        ps = plist[pstarts[u]:pstarts[u + 1]]
        if ps:
            layer[u] = 1 + max(layer[p] for p in ps)
            bary[u] = sum(bary[p] for p in ps) / len(ps)
        else:
            bary[u] = float(source_rank)
            source_rank += 1
    return np.asarray(layer, dtype=np.int64), np.asarray(bary)


# -- routed layout (workspaces) -------------------------------------------------------------------

def _layer_nodes(n, parent, child, ghost, cap) -> list[int]:
    """Depth rows: a node one row below its lowest parent, wrapped to the next row when a row is full.

    Ghost nodes (parents that live in another workspace) go just above their
    highest child instead of at the top.
    """
    real_edges = ~ghost[parent] if len(parent) else np.zeros(0, dtype=bool)
    order = topological_order(n, parent, child)
    pstarts, plist = csr(n, child[real_edges], parent[real_edges])
    layer = [0] * n
    filled: dict[int, int] = {}
    for u in order:
        if ghost[u]:
            continue
        ps = plist[pstarts[u]:pstarts[u + 1]]
        lo = 1 + max(layer[p] for p in ps) if ps else 0
        while filled.get(lo, 0) >= cap:
            lo += 1
        layer[u] = lo
        filled[lo] = filled.get(lo, 0) + 1
    if ghost.any():
        cstarts, clist = csr(n, parent, child)
        for g in np.flatnonzero(ghost).tolist():
            kids = [layer[c] for c in clist[cstarts[g]:cstarts[g + 1]]]
            layer[g] = min(kids) - 1 if kids else 0
        low = min(layer)
        if low < 0:
            layer = [v - low for v in layer]
    return layer


def _choose_rows(layer_width: list[float], depth: int, view) -> int:
    """Rows per band that let the whole tree fit ``view`` (pixels) at the largest zoom, up to 1.

    Ties (within 3 %) go to fewer bands.
    """
    if view is None or depth < 2 * MIN_BAND_ROWS:
        return depth
    vw, vh = float(view[0]), float(view[1])
    pitch = CARD_H + GAP_Y
    best, best_rows = -1.0, depth
    for rows in range(depth, MIN_BAND_ROWS - 1, -1):
        bands = math.ceil(depth / rows)
        widths = [max(layer_width[b * rows:(b + 1) * rows]) for b in range(bands)]
        w = sum(widths) + (bands - 1) * (GAP_X * 2 + 6 * LANE) + 2 * GAP_X
        h = rows * pitch + (2 * BUS + 4 * LANE if bands > 1 else 0) + GAP_Y
        zoom = min(TARGET_ZOOM, vw / w, vh / h)
        if zoom > best * 1.03:
            best, best_rows = zoom, rows
    return best_rows


def _pav(target: list[float], weight: list[float]) -> list[float]:
    """Non-decreasing least-squares fit (pool adjacent violators)."""
    vals: list[float] = []
    wts: list[float] = []
    sizes: list[int] = []
    for t, w in zip(target, weight):
        vals.append(t)
        wts.append(w)
        sizes.append(1)
        while len(vals) > 1 and vals[-2] > vals[-1]:
            w2 = wts[-2] + wts[-1]
            v2 = (vals[-2] * wts[-2] + vals[-1] * wts[-1]) / w2
            s2 = sizes[-2] + sizes[-1]
            del vals[-1], wts[-1], sizes[-1]
            vals[-1], wts[-1], sizes[-1] = v2, w2, s2
    out: list[float] = []
    for v, s in zip(vals, sizes):
        out.extend([v] * s)
    return out


class _Routed:
    """The routed layout's working state: rows of items (cards and edge slots) and the edge chains."""

    def __init__(self, n, parent, child, ghost, view):
        self.n = n
        total = n
        cap = 8
        if view is not None:
            cap = max(3, int(float(view[0]) / TARGET_ZOOM // (CARD_W + GAP_X)))
        layer = _layer_nodes(n, parent, child, ghost, cap)
        depth = (max(layer) + 1) if n else 0
        # width of each row if every long edge took a slot in it (an upper bound for choosing bands)
        cards = [0] * depth
        for v in layer:
            cards[v] += 1
        slots = np.zeros(depth + 1)
        for p, c in zip(parent.tolist(), child.tolist()):
            if layer[c] - layer[p] > 1:
                slots[layer[p] + 1] += 1
                slots[layer[c]] -= 1
        self.too_big = float(np.cumsum(slots)[:depth].sum()) > ROUTED_MAX_SLOTS
        if self.too_big:
            return
        slots = np.cumsum(slots)[:depth].tolist()
        width = [cards[k] * (CARD_W + GAP_X) + slots[k] * (SLOT_W + GAP_X) for k in range(depth)]
        self.rows = rows = max(1, _choose_rows(width, depth, view)) if depth else 1
        self.bands = math.ceil(depth / rows) if depth else 1
        self.layer = layer + []
        self.is_slot = [False] * n
        #: per edge: the chain of items it passes, parent first, child last; ``cross``: the bus between
        self.chains: list[list[int]] = []
        self.cross: list[int] = []  # index into the chain after which the edge crosses to the next band, or -1
        for p, c in zip(parent.tolist(), child.tolist()):
            lp, lc = layer[p], layer[c]
            chain, cross = [p], -1
            if lc <= lp:  # a cycle in corrupt data: drawn straight, never looped
                self.chains.append([p, c])
                self.cross.append(-1)
                continue
            bp, bc = lp // rows, lc // rows
            wanted = (list(range(lp + 1, lc)) if bp == bc else
                      list(range(lp + 1, (bp + 1) * rows)) + [None] + list(range(bc * rows, lc)))
            for lv in wanted:
                if lv is None:
                    cross = len(chain) - 1
                    continue
                self.layer.append(lv)
                self.is_slot.append(True)
                chain.append(total)
                total += 1
            chain.append(c)
            self.chains.append(chain)
            self.cross.append(cross)
        self.total = total
        self.up: list[list[int]] = [[] for _ in range(total)]  # neighbours in the row above (same band)
        self.down: list[list[int]] = [[] for _ in range(total)]
        for chain, cross in zip(self.chains, self.cross):
            for k in range(len(chain) - 1):
                a, b = chain[k], chain[k + 1]
                if k != cross and self.layer[b] == self.layer[a] + 1:
                    self.down[a].append(b)
                    self.up[b].append(a)
        self.row_items: list[list[int]] = [[] for _ in range(depth)]
        for item in range(total):
            self.row_items[self.layer[item]].append(item)
        self.width = [SLOT_W if s else CARD_W for s in self.is_slot]

    # -- ordering ------------------------------------------------------------------------
    def order_rows(self, sweeps: int = 4) -> None:
        pos = [0.0] * self.total
        for row in self.row_items:
            for k, item in enumerate(row):
                pos[item] = k
        for sweep in range(2 * sweeps):
            downward = sweep % 2 == 0
            rows = self.row_items if downward else self.row_items[::-1]
            for row in rows:
                key = {}
                for item in row:
                    nbrs = self.up[item] if downward else self.down[item]
                    key[item] = sum(pos[v] for v in nbrs) / len(nbrs) if nbrs else pos[item]
                row.sort(key=lambda it: (key[it], pos[it]))
                for k, item in enumerate(row):
                    pos[item] = k

    # -- x positions ---------------------------------------------------------------------
    def place(self, sweeps: int = 6) -> list[float]:
        centre = [0.0] * self.total
        for row in self.row_items:
            x = 0.0
            for item in row:
                centre[item] = x + self.width[item] / 2
                x += self.width[item] + GAP_X
            shift = (x - GAP_X) / 2
            for item in row:
                centre[item] -= shift
        for sweep in range(2 * sweeps):
            downward = sweep % 2 == 0
            rows = self.row_items if downward else self.row_items[::-1]
            for row in rows:
                if not row:
                    continue
                target, weight, offset = [], [], []
                acc = 0.0
                for k, item in enumerate(row):
                    if k:
                        acc += (self.width[row[k - 1]] + self.width[item]) / 2 + GAP_X
                    offset.append(acc)
                    nbrs = (self.up[item] if downward else self.down[item]) or \
                        (self.down[item] if downward else self.up[item])
                    if nbrs:
                        want = sum(centre[v] for v in nbrs) / len(nbrs)
                        w = 2.0 if self.is_slot[item] else 1.0
                    else:
                        want, w = centre[item], 0.05
                    target.append(want - acc)
                    weight.append(w)
                fitted = _pav(target, weight)
                for item, y, off in zip(row, fitted, offset):
                    centre[item] = y + off
        return centre


def routed_layout(n: int, parent: np.ndarray, child: np.ndarray, ghost: np.ndarray | None = None,
                  view=None) -> Placement | None:
    """The routed layout, or None when the tree is too large for it (use :func:`overview_layout`)."""
    parent = np.asarray(parent, dtype=np.int64)
    child = np.asarray(child, dtype=np.int64)
    ghost = np.zeros(n, dtype=bool) if ghost is None else np.asarray(ghost, dtype=bool)
    if n > ROUTED_MAX:
        return None
    r = _Routed(n, parent, child, ghost, view)
    if r.too_big:
        return None
    r.order_rows()
    centre = r.place()
    rows, bands = r.rows, r.bands
    pitch = CARD_H + GAP_Y
    # bands side by side: each band's own left edge at 0, then offset by the bands before it
    lanes_into = [0] * bands
    for chain, cross in zip(r.chains, r.cross):
        if cross >= 0:
            lanes_into[r.layer[chain[cross + 1]] // rows] += 1
    left = [math.inf] * bands
    right = [-math.inf] * bands
    for item in range(r.total):
        b = r.layer[item] // rows
        left[b] = min(left[b], centre[item] - r.width[item] / 2)
        right[b] = max(right[b], centre[item] + r.width[item] / 2)
    band_x = [0.0] * bands
    x0 = 0.0
    for b in range(bands):
        if left[b] == math.inf:
            left[b] = right[b] = 0.0
        x0 += (2 * GAP_X + LANE * lanes_into[b]) if b else 0.0
        band_x[b] = x0 - left[b]
        x0 += right[b] - left[b]
    cx = [0.0] * r.total
    top = [0.0] * r.total
    for item in range(r.total):
        lv = r.layer[item]
        cx[item] = centre[item] + band_x[lv // rows]
        top[item] = (lv % rows) * pitch
    x = np.asarray([cx[i] - CARD_W / 2 for i in range(n)], dtype=float)
    y = np.asarray(top[:n], dtype=float)
    segments = _route(r, cx, top, band_x, left, lanes_into)
    return Placement(x, y, segments, "routed", bands, rows)


def _ports(r: _Routed, cx: list[float]) -> tuple[dict, dict]:
    """Where each edge leaves its parent and enters its child: spread over the card, in x order."""
    out_port: dict[int, float] = {}
    in_port: dict[int, float] = {}
    by_parent: dict[int, list[int]] = {}
    by_child: dict[int, list[int]] = {}
    for e, chain in enumerate(r.chains):
        by_parent.setdefault(chain[0], []).append(e)
        by_child.setdefault(chain[-1], []).append(e)
    for node, edges in by_parent.items():
        edges.sort(key=lambda e: cx[r.chains[e][1]])
        for k, e in enumerate(edges):
            out_port[e] = cx[node] - CARD_W / 2 + CARD_W * (k + 1) / (len(edges) + 1)
    for node, edges in by_child.items():
        edges.sort(key=lambda e: cx[r.chains[e][-2]])
        for k, e in enumerate(edges):
            in_port[e] = cx[node] - CARD_W / 2 + CARD_W * (k + 1) / (len(edges) + 1)
    return out_port, in_port


def _route(r: _Routed, cx, top, band_x, left, lanes_into) -> np.ndarray:
    out_port, in_port = _ports(r, cx)
    pitch = CARD_H + GAP_Y
    bottom_bus = r.rows * pitch - GAP_Y + BUS
    segs: list[tuple[float, float, float, float]] = []
    lane_bus = 0
    lane_gutter = [0] * len(band_x)

    def bus(x_from: float, x_to: float, band: int) -> list[tuple[float, float]]:
        # from one band to a later one: down to the bottom bus, along it to the gutter left of
        # ``band``, up the gutter to the top bus, along it to above where the edge goes on
        nonlocal lane_bus
        ybot = bottom_bus + LANE * (lane_bus % 8)
        ytop = -BUS - LANE * (lane_bus % 8)
        lane_bus += 1
        start = band_x[band] + left[band]
        gutter = start - GAP_X * 0.6 - LANE * lane_gutter[band]
        lane_gutter[band] = (lane_gutter[band] + 1) % max(1, lanes_into[band])
        return [(x_from, ybot), (gutter, ybot), (gutter, ytop), (x_to, ytop)]

    for e, (chain, cross) in enumerate(zip(r.chains, r.cross)):
        end = (in_port[e], top[chain[-1]])

        def onward(k: int, x_from: float, chain=chain, end=end) -> list[tuple[float, float]]:
            nxt = chain[k + 1]
            return bus(x_from, cx[nxt] if nxt != chain[-1] else end[0], r.layer[nxt] // r.rows)

        pts = [(out_port[e], top[chain[0]] + CARD_H)]
        if cross == 0:
            pts += onward(0, out_port[e])
        for k, item in enumerate(chain[1:-1], start=1):
            pts += [(cx[item], top[item]), (cx[item], top[item] + CARD_H)]
            if k == cross:
                pts += onward(k, cx[item])
        pts.append(end)
        segs += [(a[0], a[1], b[0], b[1]) for a, b in zip(pts, pts[1:]) if a != b]
        segs.append((end[0] - ARROW * 0.7, end[1] - ARROW, end[0], end[1]))
        segs.append((end[0] + ARROW * 0.7, end[1] - ARROW, end[0], end[1]))
    return np.asarray(segs, dtype=float).reshape(-1, 4)


def layout(n: int, parent, child, ghost=None, view=None) -> Placement:
    """The routed layout when the tree is small enough, else the overview layout."""
    parent = np.asarray(parent, dtype=np.int64)
    child = np.asarray(child, dtype=np.int64)
    placed = routed_layout(n, parent, child, ghost, view) if n <= ROUTED_MAX else None
    return placed if placed is not None else overview_layout(n, parent, child)
