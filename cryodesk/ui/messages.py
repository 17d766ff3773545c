"""Messages that must not vanish: a log panel that keeps them, and a dialog for those that need the user.

The status bar shows a passing remark for a few seconds; an error that the
user has to act on (a failed task, a refused job, a job that could not be
cached because it was cleared) goes to :class:`QtMessageLog` (a dock that
keeps every message of the session, with its time) and, when it needs an
answer, to a :class:`QtErrorDialog` that says the cause in words.
"""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QDialog,
    QDialogButtonBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from . import palette

LEVEL_COLOURS = {"error": "#d93025", "warning": "#e37400", "info": None}


class QtMessageLog(QWidget):
    """Every message of the session, newest last; ``added(level, text)`` fires for each."""

    added = Signal(str, str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 2, 4, 4)
        bar = QHBoxLayout()
        self.summary = QLabel("No messages")
        self.clear_button = QPushButton("Clear")
        bar.addWidget(self.summary, 1)
        bar.addWidget(self.clear_button)
        lay.addLayout(bar)
        self.table = QTableWidget(0, 3)
        self.table.setObjectName("messageTable")
        self.table.setHorizontalHeaderLabels(["Time", "Level", "Message"])
        self.table.verticalHeader().setVisible(False)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setWordWrap(True)
        self.table.horizontalHeader().setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.setColumnWidth(0, 70)
        self.table.setColumnWidth(1, 64)
        self.table.setMinimumHeight(44)
        lay.addWidget(self.table)
        self.clear_button.clicked.connect(self.clear)
        self.entries: list[tuple[str, str, str]] = []

    def add(self, level: str, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        self.entries.append((stamp, level, text))
        r = self.table.rowCount()
        self.table.insertRow(r)
        for c, value in enumerate((stamp, level, text)):
            item = QTableWidgetItem(value)
            item.setToolTip(text)
            colour = LEVEL_COLOURS.get(level)
            if colour and c == 1:
                item.setForeground(QColor(colour))
            self.table.setItem(r, c, item)
        self.table.scrollToBottom()
        errors = sum(1 for e in self.entries if e[1] == "error")
        self.summary.setText(f"{len(self.entries)} message(s), {errors} error(s)")
        self.added.emit(level, text)

    def error(self, text: str) -> None:
        self.add("error", text)

    def warning(self, text: str) -> None:
        self.add("warning", text)

    def info(self, text: str) -> None:
        self.add("info", text)

    def clear(self) -> None:
        self.entries.clear()
        self.table.setRowCount(0)
        self.summary.setText("No messages")


class QtErrorDialog(QDialog):
    """An error the user must see: what failed, the cause in words, and what to do."""

    def __init__(self, title: str, what: str, cause: str = "", parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setObjectName("errorDialog")
        lay = QVBoxLayout(self)
        self.what = QLabel(f"<b>{what}</b>")
        self.what.setWordWrap(True)
        self.what.setTextFormat(Qt.TextFormat.RichText)
        lay.addWidget(self.what)
        self.cause = QLabel(cause)
        self.cause.setWordWrap(True)
        self.cause.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.cause.setStyleSheet(palette.notice_stylesheet("error"))
        self.cause.setVisible(bool(cause))
        lay.addWidget(self.cause)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        self.close_button = buttons.button(QDialogButtonBox.StandardButton.Close)
        lay.addWidget(buttons)
        self.resize(520, 180)
