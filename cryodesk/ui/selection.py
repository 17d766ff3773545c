"""The job selection of the tree view: a boolean mask over the snapshot, with a change signal.

Selection lives in arrays, not in QGraphicsItems, because most jobs have no
item at a given time (only the visible ones are drawn as cards).
"""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal


class JobSelection(QObject):
    changed = Signal()

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.mask = np.zeros(0, dtype=bool)
        self.anchor: int | None = None  # the last job clicked (for chain selection order)

    def reset(self, n: int) -> None:
        self.mask = np.zeros(n, dtype=bool)
        self.anchor = None
        self.changed.emit()

    @property
    def indices(self) -> np.ndarray:
        return np.flatnonzero(self.mask)

    def count(self) -> int:
        return int(self.mask.sum())

    def set(self, indices, add: bool = False) -> None:
        if not add:
            self.mask[:] = False
        idx = np.asarray(list(indices) if not isinstance(indices, np.ndarray) else indices, dtype=np.int64)
        if len(idx):
            self.mask[idx] = True
        self.changed.emit()

    def toggle(self, i: int) -> None:
        self.mask[i] = not self.mask[i]
        self.anchor = i if self.mask[i] else self.anchor
        self.changed.emit()

    def select_all(self) -> None:
        self.mask[:] = True
        self.changed.emit()

    def clear(self) -> None:
        if self.mask.any():
            self.mask[:] = False
            self.changed.emit()
