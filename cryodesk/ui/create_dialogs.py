"""New project and New workspace dialogs (File menu), through the same services as ``cryodesk project create``.

Each dialog checks its fields as they are typed (the Create button says what is
missing), creates on a worker and stays open with the reason when a service
refuses (a directory that is not empty, a title left blank).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ..core import projects
from ..engine import workers
from . import palette


def _create_project(title: str, directory: str, workspace: str):
    p = projects.create_project(title, directory)
    ws = projects.create_workspace(p, workspace or "Main")
    return p.uid, ws.uid


def _create_workspace(project_uid: str, title: str):
    return project_uid, projects.create_workspace(project_uid, title).uid


class _CreateDialog(QDialog):
    """Shared shape: a form, an error line, Create / Cancel; ``created(project_uid, workspace_uid)``."""

    created = Signal(str, str)

    def __init__(self, title: str, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        lay = QVBoxLayout(self)
        self.form = QFormLayout()
        lay.addLayout(self.form)
        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.setVisible(False)
        lay.addWidget(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.create_button = buttons.addButton("Create", QDialogButtonBox.ButtonRole.AcceptRole)
        self.create_button.setDefault(True)
        self.cancel_button = buttons.button(QDialogButtonBox.StandardButton.Cancel)
        buttons.rejected.connect(self.reject)
        self.create_button.clicked.connect(self._create)
        lay.addWidget(buttons)
        self.pending = None

    def showEvent(self, event) -> None:  # noqa: N802
        # Enter creates (the button box would otherwise make Cancel the default on show)
        super().showEvent(event)
        self.cancel_button.setAutoDefault(False)
        self.create_button.setDefault(True)

    def _problem(self) -> str:
        return ""

    def _check(self) -> None:
        problem = self._problem()
        self.create_button.setEnabled(not problem and self.pending is None)
        self.create_button.setToolTip(problem)

    def _fail(self, exc) -> None:
        self.pending = None
        self.error.setStyleSheet(palette.notice_stylesheet("error"))
        self.error.setText(str(exc))
        self.error.setVisible(True)
        self._check()

    def _done(self, result) -> None:
        self.pending = None
        self.created.emit(*result)
        self.accept()

    def _create(self) -> None:
        raise NotImplementedError


class QtNewProjectDialog(_CreateDialog):
    """Title, a new or empty directory, and the first workspace's title."""

    def __init__(self, parent=None, default_parent: str | None = None) -> None:
        super().__init__("New project", parent)
        self.setObjectName("newProjectDialog")
        self.title = QLineEdit()
        self.title.setPlaceholderText("e.g. Apoferritin, grid 3")
        self.directory = QLineEdit()
        self.directory.setPlaceholderText("a new or empty directory, e.g. /data/apo")
        self.browse = QPushButton("Browse…")
        row = QWidget()
        rl = QHBoxLayout(row)
        rl.setContentsMargins(0, 0, 0, 0)
        rl.addWidget(self.directory, 1)
        rl.addWidget(self.browse)
        self.workspace = QLineEdit("Main")
        self.form.addRow("Title", self.title)
        self.form.addRow("Directory", row)
        self.form.addRow("First workspace", self.workspace)
        hint = QLabel("The project lives in its own directory: every job writes there, in J<n>/.")
        hint.setWordWrap(True)
        self.form.addRow(hint)
        self.default_parent = default_parent or str(Path.home())
        for w in (self.title, self.directory, self.workspace):
            w.textChanged.connect(self._check)
        self.title.textChanged.connect(self._suggest_directory)
        self.browse.clicked.connect(self._browse)
        self._suggested = ""
        self._check()
        self.resize(560, 220)

    def _suggest_directory(self, text: str) -> None:
        # follow the title until the user types a directory of their own
        if self.directory.text() in ("", self._suggested):
            slug = "".join(c if c.isalnum() or c in "-_" else "_" for c in text.strip()).strip("_")
            self._suggested = str(Path(self.default_parent) / slug) if slug else ""
            self.directory.setText(self._suggested)

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Project directory", self.directory.text() or
                                                self.default_parent)
        if path:
            self.directory.setText(path)

    def _problem(self) -> str:
        if not self.title.text().strip():
            return "Give the project a title"
        d = self.directory.text().strip()
        if not d:
            return "Choose a directory for the project"
        if not Path(d).expanduser().is_absolute():
            return "The directory must be an absolute path"
        if not self.workspace.text().strip():
            return "Give the first workspace a title"
        return ""

    def _create(self) -> None:
        if self._problem():
            return
        self.pending = workers.submit(_create_project, self.title.text(), self.directory.text().strip(),
                                      self.workspace.text(), on_done=self._done, on_error=self._fail, context=self)
        self._check()


class QtNewWorkspaceDialog(_CreateDialog):
    """A title, in one of the projects (the current one preselected)."""

    def __init__(self, project_rows: list[dict], current: str | None = None, parent=None) -> None:
        super().__init__("New workspace", parent)
        self.setObjectName("newWorkspaceDialog")
        self.project = QComboBox()
        for row in project_rows:
            self.project.addItem(f"{row['uid']}  {row['title']}", row["uid"])
            if row["uid"] == current:
                self.project.setCurrentIndex(self.project.count() - 1)
        self.title = QLineEdit()
        self.title.setPlaceholderText("e.g. Refinement, exploration")
        self.form.addRow("Project", self.project)
        self.form.addRow("Title", self.title)
        self.title.textChanged.connect(self._check)
        self._check()
        self.resize(440, 150)

    def _problem(self) -> str:
        if self.project.count() == 0:
            return "Create a project first"
        if not self.title.text().strip():
            return "Give the workspace a title"
        return ""

    def _create(self) -> None:
        if self._problem():
            return
        self.pending = workers.submit(_create_workspace, self.project.currentData(), self.title.text(),
                                      on_done=self._done, on_error=self._fail, context=self)
        self._check()
