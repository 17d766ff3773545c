"""The job-tree scene: snapshot arrays → overview item, selection overlay and visible cards."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QGraphicsRectItem, QGraphicsScene

from ..core.layout import CARD_H, CARD_W
from . import palette
from .graph_items import QtGhostCard, QtJobCard, QtOverviewItem, QtSelectionOverlay
from .selection import JobSelection

#: cards are made only above this zoom and below this many visible jobs
DETAIL_SCALE = 0.35
MAX_CARDS = 600


class QtJobGraphScene(QGraphicsScene):
    """Holds one :class:`~cryodesk.core.layout.GraphSnapshot` and draws it."""

    snapshot_changed = Signal()
    jobs_refreshed = Signal(object)  # indices patched in place

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.snap = None
        self.selection = JobSelection(self)
        self.selection.changed.connect(self._on_selection)
        self.colour_mode = "status"
        self.overview: QtOverviewItem | None = None
        self.overlay: QtSelectionOverlay | None = None
        self.cards: dict[int, QtJobCard] = {}
        self.ghost_cards: dict[int, QtGhostCard] = {}
        self._colour_index = np.zeros(0, dtype=np.int64)
        self._table: list[QColor] = []
        self.rubber_band = QGraphicsRectItem()
        self.rubber_band.setZValue(10)
        self.rubber_band.setVisible(False)
        self.addItem(self.rubber_band)

    # -- content ---------------------------------------------------------
    def set_snapshot(self, snap, keep_selection: bool = False) -> None:
        """Show ``snap``; with ``keep_selection`` the same job uids stay selected."""
        old_uids = set()
        if keep_selection and self.snap is not None:
            old_uids = set(self.snap.numbers[self.selection.mask].tolist())
        for item in (self.overview, self.overlay, *self.cards.values(), *self.ghost_cards.values()):
            if item is not None:
                self.removeItem(item)
        self.cards.clear()
        self.ghost_cards.clear()
        self.snap = snap
        self._colour_index, self._table = palette.colour_groups(snap, self.colour_mode)
        self.overview = QtOverviewItem(snap, self._colour_index, self._table)
        self.overlay = QtSelectionOverlay(snap)
        self.addItem(self.overview)
        self.addItem(self.overlay)
        bounds = self.overview.boundingRect().adjusted(-400, -400, 400, 400)
        self.setSceneRect(bounds if not bounds.isEmpty() else QRectF(-200, -200, 400, 400))
        mask = np.isin(snap.numbers, list(old_uids)) if old_uids else np.zeros(len(snap), dtype=bool)
        self.selection.mask = mask
        self.selection.changed.emit()
        self.snapshot_changed.emit()

    def refresh_jobs(self, indices) -> None:
        """Repaint after :meth:`GraphSnapshot.apply_rows` patched ``indices`` in place (no new items).

        Colours are regrouped for every job (a size change moves the whole heat
        map's scale); the cards of patched jobs in view are repainted.
        """
        if self.snap is None:
            return
        self._colour_index, self._table = palette.colour_groups(self.snap, self.colour_mode)
        self.overview.set_colours(self._colour_index, self._table)
        for i, card in self.cards.items():
            card.colour = self._table[self._colour_index[i]]
            card.refresh()
        self.jobs_refreshed.emit(np.asarray(indices, dtype=np.int64))

    def set_colour_mode(self, mode: str) -> None:
        self.colour_mode = mode
        if self.snap is None:
            return
        self._colour_index, self._table = palette.colour_groups(self.snap, mode)
        self.overview.set_colours(self._colour_index, self._table)
        for i, card in self.cards.items():
            card.colour = self._table[self._colour_index[i]]
            card.update()

    def repaint_items(self) -> None:
        """Light/dark changed: cards repaint (their cached pixmaps are dropped) and so does the overview."""
        for item in (*self.cards.values(), *self.ghost_cards.values(), self.overview):
            if item is not None:
                item.update()

    def colour_of(self, i: int) -> QColor:
        return self._table[self._colour_index[i]]

    # -- geometry queries (numpy, no items needed) --------------------------
    def indices_in_rect(self, rect: QRectF) -> np.ndarray:
        """Jobs whose card intersects ``rect`` (scene coordinates)."""
        if self.snap is None or len(self.snap) == 0:
            return np.zeros(0, dtype=np.int64)
        x, y = self.snap.x, self.snap.y
        hit = ((x <= rect.right()) & (x + CARD_W >= rect.left())
               & (y <= rect.bottom()) & (y + CARD_H >= rect.top()))
        return np.flatnonzero(hit)

    def index_at(self, point: QPointF) -> int | None:
        hits = self.indices_in_rect(QRectF(point, point))
        return int(hits[-1]) if len(hits) else None

    def ghost_at(self, point: QPointF) -> int | None:
        """The ghost card (a parent from another workspace) under ``point``, or None."""
        if self.snap is None or len(self.snap.ghosts) == 0:
            return None
        g = self.snap.ghosts
        hit = np.flatnonzero((g.x <= point.x()) & (g.x + CARD_W >= point.x())
                             & (g.y <= point.y()) & (g.y + CARD_H >= point.y()))
        return int(hit[-1]) if len(hit) else None

    def card_rect(self, i: int) -> QRectF:
        return QRectF(float(self.snap.x[i]), float(self.snap.y[i]), CARD_W, CARD_H)

    # -- level of detail -----------------------------------------------------
    def update_details(self, visible: QRectF, scale: float) -> None:
        """Create cards for the jobs in ``visible`` when zoomed in; drop the others."""
        if self.snap is None:
            return
        wanted = set()
        if scale >= DETAIL_SCALE:
            idx = self.indices_in_rect(visible)
            if len(idx) <= MAX_CARDS:
                wanted = set(idx.tolist())
        for i in list(self.cards):
            if i not in wanted:
                self.removeItem(self.cards.pop(i))
        for i in wanted:
            if i not in self.cards:
                card = QtJobCard(self.snap, i, self.colour_of(i))
                self.cards[i] = card
                self.addItem(card)
        g = self.snap.ghosts
        ghosts = set()
        if scale >= DETAIL_SCALE and len(g):
            ghosts = set(np.flatnonzero((g.x <= visible.right()) & (g.x + CARD_W >= visible.left())
                                        & (g.y <= visible.bottom()) & (g.y + CARD_H >= visible.top())).tolist())
        for k in list(self.ghost_cards):
            if k not in ghosts:
                self.removeItem(self.ghost_cards.pop(k))
        for k in ghosts:
            if k not in self.ghost_cards:
                self.ghost_cards[k] = QtGhostCard(self.snap, k)
                self.addItem(self.ghost_cards[k])

    def _on_selection(self) -> None:
        if self.overlay is not None:
            self.overlay.set_indices(self.selection.indices)
