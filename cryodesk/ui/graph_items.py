"""Graphics items of the job tree: one batched overview item for all jobs, cards for the visible ones.

DESIGN.md: a Python ``paint`` per item costs ~1 s per frame at 50k jobs, so
the overview draws every job and edge in a single ``paint`` call with
``drawRects`` / ``drawLines`` on prebuilt lists (the loops run in C++).
:class:`QtJobCard` items, with text and badges, exist only for jobs in view.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QLineF, QPointF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem

from ..core.layout import CARD_H, CARD_W
from ..core.units import human_bytes
from . import palette

BADGE = 16.0
#: below this zoom, big trees are drawn without edges (they would be sub-pixel noise)
EDGE_LOD = 0.04


class QtOverviewItem(QGraphicsItem):
    """Every job as a coloured rectangle and every edge as a line, in one paint call."""

    def __init__(self, snap, colour_index: np.ndarray, table: list[QColor]) -> None:
        super().__init__()
        self.snap = snap
        self._bounds = QRectF()
        self.setZValue(0)
        # Panning then blits the cached pixels instead of re-drawing every job (Qt caches only
        # the part of a large item that is on screen); a zoom or colour change repaints once.
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        x, y = snap.x, snap.y
        if len(snap):
            self._bounds = QRectF(float(x.min()) - 20, float(y.min()) - 20,
                                  float(x.max() - x.min()) + CARD_W + 40, float(y.max() - y.min()) + CARD_H + 40)
        px, py = x[snap.edge_parent] + CARD_W, y[snap.edge_parent] + CARD_H / 2
        cx, cy = x[snap.edge_child], y[snap.edge_child] + CARD_H / 2
        self._edges = [QLineF(*v) for v in zip(px.tolist(), py.tolist(), cx.tolist(), cy.tolist())]
        self._edge_box = (np.minimum(px, cx), np.maximum(px, cx), np.minimum(py, cy), np.maximum(py, cy))
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)  # gives exposedRect
        self._rects = [QRectF(a, b, CARD_W, CARD_H) for a, b in zip(x.tolist(), y.tolist())]
        self.set_colours(colour_index, table)

    def set_colours(self, colour_index: np.ndarray, table: list[QColor]) -> None:
        self._colour_index, self._brushes = colour_index, [QBrush(c) for c in table]
        self._groups = []
        for k, colour in enumerate(table):
            members = np.flatnonzero(colour_index == k)
            if len(members):
                self._groups.append((QBrush(colour), [self._rects[i] for i in members]))
        flags = self.snap
        self._final = [self._badge_rect(i) for i in np.flatnonzero(flags.is_final)]
        # final jobs keep a gold outline at any zoom: a 16-unit badge vanishes when zoomed far out
        self._final_outline = [self._rects[i] for i in np.flatnonzero(flags.is_final)]
        self._ancestor = [self._badge_rect(i) for i in np.flatnonzero(flags.is_ancestor & ~flags.is_final)]
        self.update()

    def _badge_rect(self, i: int) -> QRectF:
        r = self._rects[i]
        return QRectF(r.right() - BADGE - 4, r.top() + 4, BADGE, BADGE)

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt API)
        return self._bounds

    def _exposed(self, r: QRectF):
        """Edges and per-colour rects inside ``r`` (numpy culling; used when only part is exposed)."""
        s = self.snap
        hit = np.flatnonzero((s.x <= r.right()) & (s.x + CARD_W >= r.left())
                             & (s.y <= r.bottom()) & (s.y + CARD_H >= r.top()))
        x0, x1, y0, y1 = self._edge_box
        ehit = np.flatnonzero((x0 <= r.right()) & (x1 >= r.left()) & (y0 <= r.bottom()) & (y1 >= r.top()))
        edges = [self._edges[i] for i in ehit]
        ci = self._colour_index[hit]
        groups = [(self._brushes[k], [self._rects[i] for i in hit[ci == k]]) for k in np.unique(ci)]
        return edges, groups

    def paint(self, painter, option, widget=None) -> None:
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        exposed = option.exposedRect
        partial = exposed.width() * exposed.height() < 0.25 * self._bounds.width() * self._bounds.height()
        edges, groups = self._exposed(exposed) if partial else (self._edges, self._groups)
        if lod >= EDGE_LOD or len(self._edges) < 5000:  # far out, 50k edges are a grey smear
            pen = QPen(QColor(palette.is_dark() and "#9aa0a6" or "#5f6368"), 1.2)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.drawLines(edges)
        painter.setPen(Qt.PenStyle.NoPen)
        for brush, rects in groups:
            painter.setBrush(brush)
            painter.drawRects(rects)
        painter.setBrush(QColor(palette.ANCESTOR_COLOUR))
        painter.drawRects(self._ancestor)
        painter.setBrush(QColor(palette.FINAL_COLOUR))
        painter.drawRects(self._final)
        if self._final_outline:
            gold = QPen(QColor(palette.FINAL_COLOUR), 3)
            gold.setCosmetic(True)
            painter.setPen(gold)
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRects(self._final_outline)


class QtSelectionOverlay(QGraphicsItem):
    """Outlines of the selected jobs (rebuilt on selection change, O(selected))."""

    def __init__(self, snap) -> None:
        super().__init__()
        self.snap = snap
        self.setZValue(5)
        self._rects: list[QRectF] = []
        self._bounds = QRectF()

    def set_indices(self, indices: np.ndarray) -> None:
        self.prepareGeometryChange()
        xs, ys = self.snap.x[indices], self.snap.y[indices]
        self._rects = [QRectF(a - 3, b - 3, CARD_W + 6, CARD_H + 6) for a, b in zip(xs.tolist(), ys.tolist())]
        if len(indices):
            self._bounds = QRectF(float(xs.min()) - 6, float(ys.min()) - 6,
                                  float(xs.max() - xs.min()) + CARD_W + 12, float(ys.max() - ys.min()) + CARD_H + 12)
        else:
            self._bounds = QRectF()
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802
        return self._bounds

    def paint(self, painter, option, widget=None) -> None:
        pen = QPen(QColor(palette.SELECTION_COLOUR), 3)
        pen.setCosmetic(True)
        painter.setPen(pen)
        painter.setBrush(Qt.BrushStyle.NoBrush)
        painter.drawRects(self._rects)


class QtJobCard(QGraphicsItem):
    """One job drawn in detail: uid, type, title, size, status stripe and badges."""

    def __init__(self, snap, index: int, colour: QColor) -> None:
        super().__init__()
        self.snap, self.index, self.colour = snap, index, colour
        self.setPos(float(snap.x[index]), float(snap.y[index]))
        self.setZValue(2)
        self.refresh()

    def refresh(self) -> None:
        """The snapshot's arrays changed in place (status, flags, size, title): redraw."""
        s, i = self.snap, self.index
        self.setToolTip(f"{s.uid(i)} — {s.titles[i]} ({s.status_name(i)})")
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802
        return QRectF(0, 0, CARD_W, CARD_H)

    def paint(self, painter, option, widget=None) -> None:
        s, i = self.snap, self.index
        dark = palette.is_dark()
        painter.setPen(QPen(QColor("#5f6368"), 1))
        painter.setBrush(QColor("#2d2f31" if dark else "#ffffff"))
        painter.drawRoundedRect(QRectF(0, 0, CARD_W, CARD_H), 6, 6)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.colour)
        painter.drawRect(QRectF(0, 0, 7, CARD_H))
        text = QColor("#e8eaed" if dark else "#202124")
        painter.setPen(text)
        bold = QFont()
        bold.setPointSizeF(9)
        bold.setBold(True)
        painter.setFont(bold)
        painter.drawText(QPointF(14, 17), s.uid(i))
        small = QFont()
        small.setPointSizeF(7.5)
        painter.setFont(small)
        painter.drawText(QRectF(60, 5, CARD_W - 60 - BADGE * 2 - 8, 14), Qt.AlignmentFlag.AlignLeft, s.types[i])
        painter.drawText(QRectF(14, 22, CARD_W - 20, 16), Qt.AlignmentFlag.AlignLeft, s.titles[i])
        painter.drawText(QRectF(14, 42, CARD_W - 20, 16), Qt.AlignmentFlag.AlignLeft,
                         f"{s.status_name(i)} · {human_bytes(int(s.size[i]))}")
        self._badges(painter)

    def _badges(self, painter) -> None:
        s, i = self.snap, self.index
        x = CARD_W - BADGE - 4
        marks = []
        if s.is_final[i]:
            marks.append((palette.FINAL_COLOUR, "F"))
        elif s.is_ancestor[i]:
            marks.append((palette.ANCESTOR_COLOUR, "A"))
        if s.shared[i]:
            marks.append((palette.LINKED_COLOUR, "L"))
        font = QFont()
        font.setPointSizeF(7)
        font.setBold(True)
        painter.setFont(font)
        for colour, letter in marks:
            rect = QRectF(x, 4, BADGE, BADGE)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(colour))
            path = QPainterPath()
            path.addRoundedRect(rect, 4, 4)
            painter.drawPath(path)
            painter.setPen(QColor("#000000" if letter == "F" else "#ffffff"))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, letter)
            x -= BADGE + 3
