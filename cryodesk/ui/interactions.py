"""Mouse gestures on the job tree, one class per gesture (as orange-canvas ``interactions.py``).

The view hands each press to a new interaction and forwards move/release
events to it until it reports it is done.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPen


class Interaction:
    """Base gesture: ``press`` starts it, ``move``/``release`` drive it; ``cancel`` undoes its traces."""

    def __init__(self, view) -> None:
        self.view = view
        self.scene = view.scene()

    def press(self, event) -> None:
        pass

    def move(self, event) -> None:
        pass

    def release(self, event) -> None:
        pass

    def cancel(self) -> None:
        pass


class ClickSelect(Interaction):
    """Click selects one job; Ctrl-click adds it to (or removes it from) the selection."""

    def press(self, event) -> None:
        i = self.scene.index_at(self.view.mapToScene(event.position().toPoint()))
        sel = self.scene.selection
        if i is None:
            return
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            sel.toggle(i)
        else:
            sel.anchor = i
            sel.set([i])


class DragJob(Interaction):
    """Press on a job selects it (as a click does); dragging it further carries the job out of the
    tree, e.g. onto an input of the job builder (its data: ``application/x-cryodesk-job``)."""

    def press(self, event) -> None:
        self.origin = event.position().toPoint()
        self.index = self.scene.index_at(self.view.mapToScene(self.origin))
        self.dragging = False
        sel = self.scene.selection
        if self.index is not None and not sel.mask[self.index]:
            sel.anchor = self.index
            sel.set([self.index])

    def move(self, event) -> None:
        from PySide6.QtWidgets import QApplication

        if self.dragging or self.index is None:
            return
        if (event.position().toPoint() - self.origin).manhattanLength() >= QApplication.startDragDistance():
            self.dragging = True
            self.view.start_job_drag(self.index)

    def release(self, event) -> None:
        if not self.dragging and self.index is not None:
            self.scene.selection.anchor = self.index
            self.scene.selection.set([self.index])  # a click on a job of a multi-selection selects it alone


class RubberBandSelect(Interaction):
    """Drag on the background selects every job the rectangle touches; Shift adds to the selection."""

    def press(self, event) -> None:
        self.origin = self.view.mapToScene(event.position().toPoint())
        mods = event.modifiers()
        self.add = bool(mods & (Qt.KeyboardModifier.ShiftModifier | Qt.KeyboardModifier.ControlModifier))
        band = self.scene.rubber_band
        pen = QPen(QColor("#1a73e8"), 1, Qt.PenStyle.DashLine)
        pen.setCosmetic(True)
        band.setPen(pen)
        band.setBrush(QColor(26, 115, 232, 40))
        band.setRect(QRectF(self.origin, self.origin))
        band.setVisible(True)

    def _rect(self, event) -> QRectF:
        here: QPointF = self.view.mapToScene(event.position().toPoint())
        return QRectF(self.origin, here).normalized()

    def move(self, event) -> None:
        self.scene.rubber_band.setRect(self._rect(event))

    def release(self, event) -> None:
        rect = self._rect(event)
        self.scene.rubber_band.setVisible(False)
        sel = self.scene.selection
        if rect.width() < 2 and rect.height() < 2:  # a plain click on the background
            if not self.add:
                sel.clear()
            return
        sel.set(self.scene.indices_in_rect(rect), add=self.add)

    def cancel(self) -> None:
        self.scene.rubber_band.setVisible(False)


class PanDrag(Interaction):
    """Middle-button drag scrolls the view."""

    def press(self, event) -> None:
        self.last = event.position()
        self.view.user_moved = True
        self.view.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)

    def move(self, event) -> None:
        delta = event.position() - self.last
        self.last = event.position()
        h, v = self.view.horizontalScrollBar(), self.view.verticalScrollBar()
        h.setValue(h.value() - int(delta.x()))
        v.setValue(v.value() - int(delta.y()))

    def release(self, event) -> None:
        self.view.viewport().unsetCursor()

    def cancel(self) -> None:
        self.view.viewport().unsetCursor()


def interaction_for(view, event) -> Interaction | None:
    """Choose the gesture a mouse press starts."""
    button = event.button()
    if button == Qt.MouseButton.MiddleButton:
        return PanDrag(view)
    if button != Qt.MouseButton.LeftButton:
        return None
    on_job = view.scene().index_at(view.mapToScene(event.position().toPoint())) is not None
    mods = event.modifiers()
    if on_job and mods & Qt.KeyboardModifier.ControlModifier:
        return ClickSelect(view)
    if on_job and not mods & Qt.KeyboardModifier.ShiftModifier:
        return DragJob(view)
    return RubberBandSelect(view)
