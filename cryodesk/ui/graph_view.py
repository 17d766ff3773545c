"""The job-tree view: zoom (Ctrl+wheel, Ctrl+0 fit), gestures, context menu, level of detail."""

from __future__ import annotations

from PySide6.QtCore import QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QPainter
from PySide6.QtWidgets import QGraphicsView

from .graph_scene import QtJobGraphScene
from .interactions import interaction_for

MIN_SCALE, MAX_SCALE = 0.005, 4.0
#: a tree of up to this many jobs opens at a readable zoom (scrolling if it must), never fitted smaller
READABLE_MAX_JOBS = 60
READABLE_ZOOM = 0.8


class QtJobGraphView(QGraphicsView):
    """Shows a :class:`QtJobGraphScene`; emits ``context_menu(global_pos, index_or_None)``."""

    context_menu = Signal(QPoint, object)
    zoom_changed = Signal(float)
    ghost_activated = Signal(int)  # a ghost card (a parent in another workspace) was double-clicked

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setScene(QtJobGraphScene(self))
        self.setRenderHint(QPainter.RenderHint.Antialiasing, False)  # 50k rects: speed over smoothness
        self.setRenderHint(QPainter.RenderHint.TextAntialiasing, True)
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setViewportUpdateMode(QGraphicsView.ViewportUpdateMode.SmartViewportUpdate)
        self.setDragMode(QGraphicsView.DragMode.NoDrag)
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        self._interaction = None
        # Cards are rebuilt once per burst of scroll/zoom events, not per event.
        self._detail_timer = QTimer(self)
        self._detail_timer.setSingleShot(True)
        self._detail_timer.setInterval(0)
        self._detail_timer.timeout.connect(self.refresh_details)
        self.horizontalScrollBar().valueChanged.connect(lambda _v: self._detail_timer.start())
        self.verticalScrollBar().valueChanged.connect(lambda _v: self._detail_timer.start())
        self.scene().snapshot_changed.connect(self._detail_timer.start)

    # -- zoom ---------------------------------------------------------------
    @property
    def zoom(self) -> float:
        return self.transform().m11()

    def set_zoom(self, scale: float) -> None:
        scale = min(max(scale, MIN_SCALE), MAX_SCALE)
        factor = scale / self.zoom
        self.scale(factor, factor)
        self.zoom_changed.emit(self.zoom)
        self._detail_timer.start()

    def zoom_by(self, factor: float) -> None:
        self.user_moved = True
        self.set_zoom(self.zoom * factor)

    #: the user zoomed or panned since the tree opened (then a resize keeps their view)
    user_moved = False

    def fit(self) -> None:
        """Fit the whole tree (Ctrl+0), but never magnify a small tree beyond 1:1."""
        scene = self.scene()
        if scene.overview is None or scene.overview.boundingRect().isEmpty():
            return
        rect = scene.overview.boundingRect().adjusted(-30, -30, 30, 30)
        # the viewport without scroll bars: fitting must not depend on whether they show right now
        room = self.maximumViewportSize()
        scale = min(room.width() / max(rect.width(), 1.0), room.height() / max(rect.height(), 1.0), 1.0)
        self.set_zoom(scale)
        self.centerOn(scene.overview.boundingRect().center())
        self.zoom_changed.emit(self.zoom)
        self._detail_timer.start()

    def open_fit(self) -> None:
        """The zoom a tree opens at: fitted, but a workspace-sized tree never below :data:`READABLE_ZOOM`
        (it then shows its top-left, where the tree starts, and scrolls)."""
        self.fit()
        self.user_moved = False
        scene = self.scene()
        if scene.snap is None or len(scene.snap) > READABLE_MAX_JOBS or self.zoom >= READABLE_ZOOM:
            return
        self.set_zoom(READABLE_ZOOM)
        bounds = scene.overview.boundingRect()
        view = self.mapToScene(self.viewport().rect()).boundingRect()
        self.centerOn(bounds.left() + view.width() / 2 - 10, bounds.top() + view.height() / 2 - 10)
        self._detail_timer.start()

    def center_on_job(self, i: int) -> None:
        """Bring job ``i`` into view at a readable zoom; a job already in view does not move the view."""
        if self.zoom < 0.6:
            self.set_zoom(0.8)
            self.centerOn(self.scene().card_rect(i).center())
        else:
            self.ensureVisible(self.scene().card_rect(i), 60, 40)
        self._detail_timer.start()

    def refresh_details(self) -> None:
        visible = self.mapToScene(self.viewport().rect()).boundingRect()
        self.scene().update_details(visible, self.zoom)

    def wheelEvent(self, event) -> None:  # noqa: N802
        if event.modifiers() & Qt.KeyboardModifier.ControlModifier:
            steps = event.angleDelta().y() / 120.0
            self.zoom_by(1.15 ** steps)
            event.accept()
        else:
            super().wheelEvent(event)

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._detail_timer.start()

    # -- gestures ------------------------------------------------------------
    def mousePressEvent(self, event) -> None:  # noqa: N802
        self.setFocus()
        if self._interaction is not None:
            self._interaction.cancel()
        self._interaction = interaction_for(self, event)
        if self._interaction is None:
            super().mousePressEvent(event)
            return
        self._interaction.press(event)

    def mouseMoveEvent(self, event) -> None:  # noqa: N802
        if self._interaction is not None:
            self._interaction.move(event)
        else:
            super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event) -> None:  # noqa: N802
        if self._interaction is not None:
            self._interaction.release(event)
            self._interaction = None
        else:
            super().mouseReleaseEvent(event)

    def start_job_drag(self, i: int):
        """Drag job ``i`` out of the tree (onto a builder input); returns the drop action."""
        from PySide6.QtCore import QMimeData
        from PySide6.QtGui import QDrag

        from .builder_dialog import JOB_MIME, job_mime_text

        snap = self.scene().snap
        mime = QMimeData()
        mime.setData(JOB_MIME, job_mime_text(snap.project_uid, snap.uid(i)))
        mime.setText(f"{snap.project_uid} {snap.uid(i)}")
        drag = QDrag(self)
        drag.setMimeData(mime)
        card = self.scene().cards.get(i)
        if card is not None:
            pix = self.viewport().grab(self.mapFromScene(card.sceneBoundingRect()).boundingRect())
            drag.setPixmap(pix.scaledToWidth(max(60, int(pix.width() * 0.8))))
        self.last_drag_mime = mime
        return drag.exec(Qt.DropAction.CopyAction)

    last_drag_mime = None

    def mouseDoubleClickEvent(self, event) -> None:  # noqa: N802
        k = self.scene().ghost_at(self.mapToScene(event.position().toPoint()))
        if k is not None and event.button() == Qt.MouseButton.LeftButton:
            self.ghost_activated.emit(k)
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def contextMenuEvent(self, event) -> None:  # noqa: N802
        scene = self.scene()
        i = scene.index_at(self.mapToScene(event.pos()))
        if i is not None and not scene.selection.mask[i]:
            scene.selection.anchor = i
            scene.selection.set([i])
        self.context_menu.emit(event.globalPos(), i)

    def keyPressEvent(self, event) -> None:  # noqa: N802
        if event.key() == Qt.Key.Key_Escape:
            if self._interaction is not None:
                self._interaction.cancel()
                self._interaction = None
            self.scene().selection.clear()
            event.accept()
            return
        super().keyPressEvent(event)
