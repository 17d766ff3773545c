"""Read-only tables, as the inspector, the cache panel and the Cleanup Data tabs show them."""

from __future__ import annotations

from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem


def read_only_table(headers, stretch: int = -1) -> QTableWidget:
    """A table with ``headers``, no row numbers, not editable; column ``stretch`` takes the free width."""
    t = QTableWidget(0, len(headers))
    t.setHorizontalHeaderLabels(list(headers))
    t.verticalHeader().setVisible(False)
    t.horizontalHeader().setSectionResizeMode(stretch % len(headers), QHeaderView.ResizeMode.Stretch)
    t.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    return t


def fill_table(table: QTableWidget, rows, tooltips: bool = False) -> None:
    """Replace the table's rows (each cell shown with ``str``; optionally its text as tooltip too)."""
    table.setRowCount(len(rows))
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            item = QTableWidgetItem(str(value))
            if tooltips:
                item.setToolTip(str(value))
            table.setItem(r, c, item)
