"""Graphics items of the job tree: one batched overview item for all jobs, cards for the visible ones.

DESIGN.md: a Python ``paint`` per item costs ~1 s per frame at 50k jobs, so
the overview draws every job and edge in a single ``paint`` call with
``drawRects`` / ``drawLines`` on prebuilt lists (the loops run in C++).
:class:`QtJobCard` items, with text and badges, exist only for jobs in view.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QLineF, QRectF, Qt
from PySide6.QtGui import QBrush, QColor, QFont, QFontMetricsF, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QGraphicsItem

from ..core.layout import CARD_H, CARD_W
from ..core.units import human_bytes
from ..db import JOB_STATUSES
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
        ghosts = snap.ghosts
        segs = snap.edge_segments()
        xs = np.concatenate([snap.x, ghosts.x, segs[:, 0], segs[:, 2]]) if len(snap) else np.zeros(0)
        ys = np.concatenate([snap.y, ghosts.y, segs[:, 1], segs[:, 3]]) if len(snap) else np.zeros(0)
        if len(xs):
            x0, y0 = float(xs.min()), float(ys.min())
            x1 = max(float(xs.max()), float(np.concatenate([snap.x, ghosts.x]).max()) + CARD_W)
            y1 = max(float(ys.max()), float(np.concatenate([snap.y, ghosts.y]).max()) + CARD_H)
            self._bounds = QRectF(x0 - 20, y0 - 20, x1 - x0 + 40, y1 - y0 + 40)
        self._edges = [QLineF(*v) for v in segs.tolist()]
        self._edge_box = (np.minimum(segs[:, 0], segs[:, 2]), np.maximum(segs[:, 0], segs[:, 2]),
                          np.minimum(segs[:, 1], segs[:, 3]), np.maximum(segs[:, 1], segs[:, 3]))
        #: a workspace-sized routed tree is drawn smooth; 50k straight edges are not
        self._smooth = snap.layout_kind == "routed" and len(self._edges) < 20000
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption)  # gives exposedRect
        self._rects = [QRectF(a, b, CARD_W, CARD_H) for a, b in zip(snap.x.tolist(), snap.y.tolist())]
        self._ghost_rects = [QRectF(a, b, CARD_W, CARD_H) for a, b in zip(ghosts.x.tolist(), ghosts.y.tolist())]
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
        if self._smooth:
            painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        if lod >= EDGE_LOD or len(self._edges) < 5000:  # far out, 50k edges are a grey smear
            pen = QPen(QColor(palette.is_dark() and "#9aa0a6" or "#5f6368"), 1.3)
            pen.setCosmetic(True)
            painter.setPen(pen)
            painter.drawLines(edges)
        if self._ghost_rects:
            ghost_pen = QPen(QColor("#9aa0a6"), 1.2, Qt.PenStyle.DashLine)
            ghost_pen.setCosmetic(True)
            painter.setPen(ghost_pen)
            painter.setBrush(QColor(palette.ghost_fill()))
            painter.drawRects(self._ghost_rects)
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
        # a card is painted once per zoom level and then blitted: panning costs no Python paint
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.refresh()

    def refresh(self) -> None:
        """The snapshot's arrays changed in place (status, flags, size, title): redraw."""
        s, i = self.snap, self.index
        self.setToolTip(f"{s.uid(i)} — {s.titles[i]} ({s.status_name(i)})")
        room = CARD_W - 66 - _badge_count(s, i) * (BADGE + 3)
        self._type_text = _elide(s.types[i], _font(8), room)
        self._title_text = _elide(s.titles[i], _font(9), CARD_W - 22)
        self._room = room
        self.update()

    def boundingRect(self) -> QRectF:  # noqa: N802
        return QRectF(0, 0, CARD_W, CARD_H)

    def paint(self, painter, option, widget=None) -> None:
        s, i = self.snap, self.index
        dark = palette.is_dark()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        painter.setPen(QPen(QColor("#80868b" if dark else "#9aa0a6"), 1))
        painter.setBrush(QColor("#2d2f31" if dark else "#ffffff"))
        painter.drawRoundedRect(QRectF(0.5, 0.5, CARD_W - 1, CARD_H - 1), 6, 6)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(self.colour)
        painter.drawRoundedRect(QRectF(0.5, 0.5, 7, CARD_H - 1), 3, 3)
        text = QColor("#e8eaed" if dark else "#202124")
        muted = QColor("#bdc1c6" if dark else "#5f6368")
        painter.setPen(text)
        painter.setFont(_font(10.5, bold=True))
        painter.drawText(QRectF(15, 4, 50, 20), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, s.uid(i))
        painter.setFont(_font(8))
        painter.setPen(muted)
        painter.drawText(QRectF(62, 4, self._room, 20), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         self._type_text)
        painter.setPen(text)
        painter.setFont(_font(9))
        painter.drawText(QRectF(15, 25, CARD_W - 20, 20), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         self._title_text)
        painter.setFont(_font(8.5))
        painter.setPen(muted)
        painter.drawText(QRectF(15, 46, CARD_W - 20, 20), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
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
        painter.setFont(_font(7.5, bold=True))
        for colour, letter in marks:
            rect = QRectF(x, 6, BADGE, BADGE)
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(QColor(colour))
            path = QPainterPath()
            path.addRoundedRect(rect, 4, 4)
            painter.drawPath(path)
            painter.setPen(QColor("#000000" if letter == "F" else "#ffffff"))
            painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, letter)
            x -= BADGE + 3


_FONTS: dict[tuple[float, bool], QFont] = {}


def _font(points: float, bold: bool = False) -> QFont:
    """A cached font of the application's family (cards are painted often)."""
    key = (points, bold)
    font = _FONTS.get(key)
    if font is None:
        font = QFont()
        font.setPointSizeF(points)
        font.setBold(bold)
        _FONTS[key] = font
    return font


def _elide(text: str, font: QFont, width: float) -> str:
    return QFontMetricsF(font).elidedText(text, Qt.TextElideMode.ElideRight, width)


def _badge_count(s, i: int) -> int:
    return int(bool(s.is_final[i] or s.is_ancestor[i])) + int(bool(s.shared[i]))


class QtGhostCard(QGraphicsItem):
    """A parent that lives in another workspace: a dashed card that says where (double-click opens it)."""

    def __init__(self, snap, k: int) -> None:
        super().__init__()
        self.snap, self.k = snap, k
        g = snap.ghosts
        self.setPos(float(g.x[k]), float(g.y[k]))
        self.setZValue(2)
        self.setCacheMode(QGraphicsItem.CacheMode.DeviceCoordinateCache)
        self.setToolTip(f"{g.uid(k)} {g.titles[k]} lives in {g.where[k] or 'no workspace'}; "
                        "double-click to open it there")

    def boundingRect(self) -> QRectF:  # noqa: N802
        return QRectF(0, 0, CARD_W, CARD_H)

    def paint(self, painter, option, widget=None) -> None:
        g, k = self.snap.ghosts, self.k
        dark = palette.is_dark()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing, True)
        pen = QPen(QColor("#9aa0a6"), 1.2, Qt.PenStyle.DashLine)
        painter.setPen(pen)
        painter.setBrush(QColor(palette.ghost_fill()))
        painter.drawRoundedRect(QRectF(0.5, 0.5, CARD_W - 1, CARD_H - 1), 6, 6)
        muted = QColor("#bdc1c6" if dark else "#5f6368")
        painter.setPen(muted)
        painter.setFont(_font(10.5, bold=True))
        painter.drawText(QRectF(12, 4, 50, 20), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, g.uid(k))
        painter.setFont(_font(8))
        painter.drawText(QRectF(60, 4, CARD_W - 66, 20), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         g.types[k])
        painter.setFont(_font(9))
        painter.drawText(QRectF(12, 25, CARD_W - 18, 20), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         painter.fontMetrics().elidedText(g.titles[k], Qt.TextElideMode.ElideRight, int(CARD_W - 20)))
        painter.setFont(_font(8.5, bold=True))
        where = g.where[k].split(",")[0] if g.where[k] else "no workspace"
        painter.drawText(QRectF(12, 46, CARD_W - 18, 20), Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                         painter.fontMetrics().elidedText(f"in {where} · {JOB_STATUSES[int(g.status[k])]}",
                                                          Qt.TextElideMode.ElideRight, int(CARD_W - 20)))
