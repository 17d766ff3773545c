"""Settings in the GUI: a project's defaults and this workstation's SSD cache, through the one settings module.

Both dialogs show every setting of their level with the value that wins now
and where it comes from (:func:`cryodesk.core.settings_service.settings_view`,
precedence environment > job > project > worker > user > default), let the
user set a value at their level or leave it to the levels below ("inherit"),
and write with :func:`~cryodesk.core.settings_service.set_setting` /
``unset_setting`` — the storage of ``cryodesk settings set``.  A value the
environment overrides says so.  Reads and writes run on workers.
"""

from __future__ import annotations

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

from ..base import settings as base_settings
from ..base.errors import CryodeskError, NotFound, UsageError
from ..core import settings_service
from ..engine import workers
from . import palette

INHERIT = "inherit"
LABELS = {
    "delete_intermediate": "Delete intermediate results when a job completes",
    "cache_particles": "Cache particles on the SSD",
    "ssd_path": "SSD cache directory",
    "no_ssd": "This workstation has no SSD cache",
    "ssd_quota_mb": "Quota (MB)",
    "ssd_reserve_mb": "Reserve: free space always left (MB)",
    "cache_num_threads": "Copy threads",
    "cache_lifetime_days": "Lifetime of unused entries (days)",
    "cache_subset_threshold": "Cache only the particles used below this fraction",
    "cache_fsync": "fsync each copy",
}


def _shown(value) -> str:
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def inherited_text(row: dict, level: str) -> str:
    """What the value would be without this level's own: the next level down that sets it."""
    below = base_settings.STORED_LEVELS[base_settings.STORED_LEVELS.index(level) + 1:]
    for lv in below:
        if lv in row["values"]:
            return f"{_shown(row['values'][lv])} (from {lv})"
    return f"{_shown(row['default'])} (default)"


class QtSettingRow(QWidget):
    """The editor of one setting at one level: inherit or a value; says where the winner comes from."""

    def __init__(self, row: dict, level: str, parent=None) -> None:
        super().__init__(parent)
        self.row, self.level = row, level
        self.name = row["name"]
        lay = QVBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 2)
        lay.setSpacing(1)
        line = QHBoxLayout()
        own = row["values"].get(level)
        self.browse = None
        if row["kind"] == "bool":
            self.editor = QComboBox()
            self.editor.addItem(f"inherit: {inherited_text(row, level)}", INHERIT)
            self.editor.addItem("on", True)
            self.editor.addItem("off", False)
            self.editor.setCurrentIndex(0 if own is None else (1 if own else 2))
        else:
            self.editor = QLineEdit("" if own is None else str(own))
            self.editor.setPlaceholderText(f"inherit: {inherited_text(row, level)}")
            if row["kind"] == "path":
                self.browse = QPushButton("Browse…")
                self.browse.clicked.connect(self._browse)
        self.editor.setObjectName(f"setting_{self.name}")
        self.editor.setToolTip(f"{self.name}: {row['help']}")
        line.addWidget(self.editor, 1)
        if self.browse is not None:
            line.addWidget(self.browse)
        lay.addLayout(line)
        self.note = QLabel(self._note())
        self.note.setWordWrap(True)
        self.note.setStyleSheet("color: gray; font-size: 9pt")
        lay.addWidget(self.note)

    def _note(self) -> str:
        r = self.row
        if r.get("error"):
            return r["error"]
        text = f"now: {_shown(r['value'])} (from {r['level']})"
        if r["level"] == "environment":
            text += f" — ${r['env']} overrides every stored value for this process"
        return text + f". {r['help'][:1].upper()}{r['help'][1:]}."

    def _browse(self) -> None:
        path = QFileDialog.getExistingDirectory(self, LABELS.get(self.name, self.name), self.editor.text())
        if path:
            self.editor.setText(path)

    def set_value(self, value) -> None:
        """Enter ``value`` (``INHERIT`` or a value) as a user would."""
        if isinstance(self.editor, QComboBox):
            self.editor.setCurrentIndex(self.editor.findData(value))
        else:
            self.editor.setText("" if value == INHERIT or value is None else str(value))

    def wanted(self):
        """``INHERIT`` or the value entered (text for text fields)."""
        if isinstance(self.editor, QComboBox):
            return self.editor.currentData()
        text = self.editor.text().strip()
        return text if text else INHERIT

    def changed(self) -> bool:
        own = self.row["values"].get(self.level)
        want = self.wanted()
        if want == INHERIT:
            return own is not None
        return own is None or str(want) != str(own)


class _SettingsDialog(QDialog):
    """A form of the settings of ``level``; ``saved(list of names)`` after Apply/OK wrote them."""

    saved = Signal(list)
    LEVEL = ""
    NAMES: tuple[str, ...] = ()

    def __init__(self, title: str, parent=None) -> None:
        super().__init__(parent)
        self.setWindowTitle(title)
        lay = QVBoxLayout(self)
        self.intro = QLabel("")
        self.intro.setWordWrap(True)
        lay.addWidget(self.intro)
        self.form = QFormLayout()
        lay.addLayout(self.form)
        self.error = QLabel("")
        self.error.setWordWrap(True)
        self.error.setVisible(False)
        lay.addWidget(self.error)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Apply
                                   | QDialogButtonBox.StandardButton.Cancel)
        self.ok_button = buttons.button(QDialogButtonBox.StandardButton.Ok)
        self.apply_button = buttons.button(QDialogButtonBox.StandardButton.Apply)
        self.cancel_button = buttons.button(QDialogButtonBox.StandardButton.Cancel)
        self.ok_button.clicked.connect(lambda: self.apply(close=True))
        self.apply_button.clicked.connect(lambda: self.apply(close=False))
        buttons.rejected.connect(self.reject)
        lay.addWidget(buttons)
        self.rows: dict[str, QtSettingRow] = {}
        self.pending = None
        self.loads = 0
        self.resize(620, 420)

    def _view(self) -> dict:
        raise NotImplementedError

    def load(self) -> None:
        self.pending = workers.submit(self._view, context=self, on_done=self._loaded, on_error=self._failed)

    def _loaded(self, view: dict) -> None:
        self.pending = None
        while self.form.rowCount():
            self.form.removeRow(0)
        self.rows = {}
        by_name = {r["name"]: r for r in view["settings"]}
        for name in self.NAMES:
            row = QtSettingRow(by_name[name], self.LEVEL)
            self.rows[name] = row
            label = QLabel(LABELS.get(name, name))
            label.setToolTip(name)
            self.form.addRow(label, row)
        self.loads += 1

    def _failed(self, exc) -> None:
        self.pending = None
        self.error.setStyleSheet(palette.notice_stylesheet("error"))
        self.error.setText(str(exc))
        self.error.setVisible(True)

    def _write(self, changes: dict) -> None:
        raise NotImplementedError

    def apply(self, close: bool = False) -> None:
        changes = {n: r.wanted() for n, r in self.rows.items() if r.changed()}
        if not changes:
            if close:
                self.accept()
            return
        self.error.setVisible(False)

        def done(_r) -> None:
            self.pending = None
            self.saved.emit(sorted(changes))
            if close:
                self.accept()
            else:
                self.load()

        self.pending = workers.submit(self._write, changes, context=self, on_done=done, on_error=self._failed)


class QtProjectSettingsDialog(_SettingsDialog):
    """A project's defaults for its jobs: delete intermediate results, cache particles on the SSD."""

    LEVEL = "project"
    NAMES = ("delete_intermediate", "cache_particles")

    def __init__(self, project_uid: str, parent=None) -> None:
        super().__init__(f"Project settings: {project_uid}", parent)
        self.setObjectName("projectSettingsDialog")
        self.project_uid = project_uid
        self.intro.setText(f"Defaults for the jobs of {project_uid}. A job's own value (in the inspector) wins "
                           "over these; these win over the workstation's and your own settings.")
        self.load()

    def _view(self) -> dict:
        return settings_service.settings_view(project=self.project_uid)

    def _write(self, changes: dict) -> None:
        for name, value in changes.items():
            if value == INHERIT:
                settings_service.unset_setting("project", name, project=self.project_uid)
            else:
                settings_service.set_setting("project", name, value, project=self.project_uid)


def _ensure_worker(changes: dict) -> None:
    """This workstation's worker row, made on first use (with its SSD path, or as having none)."""
    from ..cache import connect_worker

    if settings_service.worker_row() is not None:
        return
    path = changes.get("ssd_path")
    if path not in (None, INHERIT):
        connect_worker(ssd_path=str(path))
    else:
        connect_worker(no_ssd=True)


class QtCacheSettingsDialog(_SettingsDialog):
    """The SSD cache of this workstation (its worker): path, quota, reserve, threads, lifetime, ..."""

    LEVEL = "worker"
    NAMES = ("ssd_path", "no_ssd", "ssd_quota_mb", "ssd_reserve_mb", "cache_num_threads", "cache_lifetime_days",
             "cache_subset_threshold", "cache_fsync", "cache_particles")

    def __init__(self, parent=None) -> None:
        super().__init__("SSD cache settings (this workstation)", parent)
        self.setObjectName("cacheSettingsDialog")
        self.worker = base_settings.resolve("worker")
        self.intro.setText(f"The SSD particle cache of worker {self.worker!r} (this workstation). The cache lives "
                           "in <path>/cryodesk_cache; nothing else on the disk is touched.")
        self.load()

    def _view(self) -> dict:
        try:
            return settings_service.settings_view(worker=settings_service.worker_row())
        except NotFound:
            return settings_service.settings_view()

    def _write(self, changes: dict) -> None:
        _ensure_worker(changes)
        row = settings_service.worker_row(required=True)
        if changes.get("ssd_path") not in (None, INHERIT) and "no_ssd" not in changes and row.no_ssd:
            changes = {**changes, "no_ssd": False}  # choosing a path turns the cache on
        for name, value in changes.items():
            try:
                if value == INHERIT:
                    settings_service.unset_setting("worker", name, worker=row.name)
                else:
                    settings_service.set_setting("worker", name, value, worker=row.name)
            except CryodeskError as exc:
                raise UsageError(f"{LABELS.get(name, name)}: {exc}") from None
