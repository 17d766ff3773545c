"""Small dialogs: refusals (one list of every job and why) and a confirmation that names the bytes freed.

Both are opened with ``open()`` (window-modal, non-blocking) so the event
loop keeps running and tests can drive their buttons.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer
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
)


def _table(rows: list[tuple[str, str]], headers: tuple[str, str]) -> QTableWidget:
    table = QTableWidget(len(rows), 2)
    table.setHorizontalHeaderLabels(list(headers))
    table.verticalHeader().setVisible(False)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
    for r, (a, b) in enumerate(rows):
        table.setItem(r, 0, QTableWidgetItem(a))
        table.setItem(r, 1, QTableWidgetItem(b))
    table.resizeColumnToContents(0)
    return table


def add_plan_footer(dialog, root, summary: str) -> None:
    """The footer of a plan-and-run dialog: ``dialog.summary``, ``cancel_button``, ``run_button``
    (disabled until a plan is shown; runs ``dialog.run_cleanup``) and ``dialog._timer``, which
    coalesces a burst of option clicks into one ``dialog.update_preview``."""
    foot = QHBoxLayout()
    dialog.summary = QLabel(summary)
    foot.addWidget(dialog.summary, 1)
    dialog.cancel_button = QPushButton("Cancel")
    dialog.cancel_button.clicked.connect(dialog.reject)
    dialog.run_button = QPushButton("Clean up")
    dialog.run_button.setEnabled(False)
    dialog.run_button.clicked.connect(dialog.run_cleanup)
    foot.addWidget(dialog.cancel_button)
    foot.addWidget(dialog.run_button)
    root.addLayout(foot)
    dialog._timer = QTimer(dialog)
    dialog._timer.setSingleShot(True)
    dialog._timer.setInterval(120)
    dialog._timer.timeout.connect(dialog.update_preview)
    dialog.finished.connect(lambda _r: dialog._timer.stop())


class OneDialog:
    """Mixin for an action group that shows one dialog at a time in ``self.dialog`` (tests drive it)."""

    dialog = None

    def _show(self, dialog) -> None:
        if self.dialog is not None:
            self.dialog.deleteLater()
        self.dialog = dialog
        dialog.finished.connect(lambda _r, d=dialog: self._forget(d))
        dialog.open()

    def _forget(self, dialog) -> None:
        if self.dialog is dialog:
            self.dialog = None
        dialog.deleteLater()


class QtRefusalDialog(QDialog):
    """Lists every refused job with the reason core gave."""

    def __init__(self, action: str, outcomes, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(f"Some jobs were not {action}")
        self.setObjectName("refusalDialog")
        self.outcomes = list(outcomes)
        layout = QVBoxLayout(self)
        n = len(self.outcomes)
        self.summary = QLabel(f"{n} job{'s' if n != 1 else ''} could not be {action}:")
        layout.addWidget(self.summary)
        self.table = _table([(o.uid, o.message) for o in self.outcomes], ("Job", "Why"))
        layout.addWidget(self.table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        buttons.accepted.connect(self.accept)
        self.close_button = buttons.button(QDialogButtonBox.StandardButton.Close)
        layout.addWidget(buttons)
        self.resize(560, 120 + 26 * min(n, 12))


class QtConfirmDialog(QDialog):
    """Asks before a destructive action; shows what it frees and any jobs it will skip."""

    def __init__(self, title: str, text: str, refused=(), ok_text: str = "OK", parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        self.setObjectName("confirmDialog")
        layout = QVBoxLayout(self)
        self.label = QLabel(text)
        self.label.setWordWrap(True)
        layout.addWidget(self.label)
        refused = list(refused)
        self.table = None
        if refused:
            layout.addWidget(QLabel(f"{len(refused)} selected job(s) will be skipped:"))
            self.table = _table([(o.uid, o.message) for o in refused], ("Job", "Why"))
            layout.addWidget(self.table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.ok_button.setText(ok_text)
        self.cancel_button = buttons.button(QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout.addWidget(buttons)
        # Enter must not destroy data by accident: Cancel is the default once the buttons are in the
        # dialog (set before, the button box made OK the default when shown), and OK never becomes it
        self.ok_button.setAutoDefault(False)
        self.cancel_button.setDefault(True)
        self.resize(520, 160 if not refused else 320)


class QtQuitDialog(QDialog):
    """Quitting while jobs run: keep them running in the background, kill them, or do not quit.

    ``choice`` is ``"background"``, ``"kill"`` or ``"stay"`` once a button was clicked.
    """

    def __init__(self, running: list[str], queued: list[str], parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Jobs are still running")
        self.setObjectName("quitDialog")
        self.choice = "stay"
        layout = QVBoxLayout(self)
        n = len(running) + len(queued)
        text = (f"<b>{len(running)} job(s) running, {len(queued)} queued.</b><br>"
                "Keep them running in the background? The window closes; running jobs finish in this "
                "process, which then exits, and queued jobs go to a background worker. The next start of "
                "cryodesk shows them (and can kill them).")
        self.label = QLabel(text)
        self.label.setWordWrap(True)
        layout.addWidget(self.label)
        rows = [(u, "running") for u in running] + [(u, "queued") for u in queued]
        self.table = _table(rows, ("Job", "Status"))
        self.table.setMaximumHeight(40 + 26 * min(n, 6))
        layout.addWidget(self.table)
        buttons = QDialogButtonBox()
        self.background_button = buttons.addButton("Keep running in the background",
                                                   QDialogButtonBox.ButtonRole.AcceptRole)
        self.kill_button = buttons.addButton(f"Kill {'it' if n == 1 else 'them'} and quit",
                                             QDialogButtonBox.ButtonRole.DestructiveRole)
        self.stay_button = buttons.addButton("Don't quit", QDialogButtonBox.ButtonRole.RejectRole)
        self.background_button.setDefault(True)  # Enter never kills work
        for button, choice in ((self.background_button, "background"), (self.kill_button, "kill"),
                               (self.stay_button, "stay")):
            button.clicked.connect(lambda _=False, c=choice: self._choose(c))
        layout.addWidget(buttons)
        self.resize(560, 260)

    def _choose(self, choice: str) -> None:
        self.choice = choice
        (self.reject if choice == "stay" else self.accept)()
