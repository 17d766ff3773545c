"""The job builder (Job ▸ New job…, Ctrl+B): pick a type, connect its inputs, set its parameters, queue it.

Job types are listed by category with their descriptions; inputs connect by
choosing a job's output group (and version), or by dragging a job's card from
the tree onto the input; each parameter shows its default and help and is
checked as it is typed (:func:`cryodesk.core.builder.check_params`).  *Create*
makes the job (building); *Queue* makes it and queues it on the chosen lane:
this app's engine runs it now, or a background ``cryodesk worker`` does (which
keeps running when the app quits).  Everything goes through
:mod:`cryodesk.core.builder`, on workers.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QScrollArea,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..core import builder
from ..engine import workers
from . import palette

JOB_MIME = "application/x-cryodesk-job"
LANES = (("app", "Local: this app runs it now"),
         ("worker", "Local: a background worker runs it (keeps running when the app quits)"))
_DEFAULT_BOOL = ("default", "on", "off")


def job_mime_text(project_uid: str, uid: str) -> bytes:
    return f"{project_uid} {uid}".encode()


def parse_job_mime(mime) -> tuple[str, str] | None:
    """``(project_uid, uid)`` from drag-and-drop data made by a card drag, else None."""
    if mime is None or not mime.hasFormat(JOB_MIME):
        return None
    parts = bytes(mime.data(JOB_MIME)).decode(errors="replace").split()
    return (parts[0], parts[1]) if len(parts) == 2 else None


class _FilterEdit(QLineEdit):
    """The type filter: Enter picks the first matching type (and never presses the dialog's Queue)."""

    chosen = Signal()

    def keyPressEvent(self, event) -> None:  # noqa: N802
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.chosen.emit()
            event.accept()
            return
        super().keyPressEvent(event)


class QtInputSlot(QWidget):
    """One input slot: which job output feeds it (and which version); accepts a card dropped on it."""

    changed = Signal()

    def __init__(self, slot: dict, project_uid: str, parent=None) -> None:
        super().__init__(parent)
        self.slot, self.project_uid = slot, project_uid
        self.choices: list[builder.OutputChoice] = []
        self.setAcceptDrops(True)
        lay = QHBoxLayout(self)
        lay.setContentsMargins(0, 0, 0, 0)
        self.combo = QComboBox()
        self.combo.setObjectName(f"input_{slot['name']}")
        self.combo.setMinimumContentsLength(28)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.version = QComboBox()
        self.version.setToolTip("Which version of the output to read (iterative jobs keep one per iteration)")
        lay.addWidget(self.combo, 1)
        lay.addWidget(self.version)
        self.combo.currentIndexChanged.connect(self._chosen)
        self.version.currentIndexChanged.connect(lambda _i: self.changed.emit())
        self.set_choices([])
        self.setToolTip(f"{slot['name']}: {slot['type']} data{' — ' + slot['help'] if slot['help'] else ''}.\n"
                        "Choose a job's output, or drag the job's card from the tree onto this field.")

    def set_choices(self, choices) -> None:
        keep = self.current()
        self.choices = list(choices)
        self.combo.blockSignals(True)
        self.combo.clear()
        self.combo.addItem("(not connected)" if self.choices else f"(no job has {self.slot['type']} outputs)", None)
        for k, c in enumerate(self.choices):
            self.combo.addItem(c.label + ("" if c.in_workspace else "  [other workspace]"), k)
        self.combo.blockSignals(False)
        if keep is not None:
            self.choose(keep.parent, keep.output, keep.version)
        else:
            self._chosen()

    def choose(self, uid: str, output: str | None = None, version: int | None = None) -> bool:
        """Connect job ``uid``'s output (its first fitting one unless ``output`` is named)."""
        hits = [k for k, c in enumerate(self.choices) if c.uid == uid and (output is None or c.output == output)]
        if not hits:
            return False
        named = [k for k in hits if self.choices[k].output == self.slot["name"]]
        self.combo.setCurrentIndex(1 + (named or hits)[0])
        if version is not None:
            i = self.version.findData(version)
            if i >= 0:
                self.version.setCurrentIndex(i)
        return True

    def _chosen(self) -> None:
        k = self.combo.currentData()
        self.version.blockSignals(True)
        self.version.clear()
        self.version.addItem("latest", None)
        if k is not None:
            for v in self.choices[k].versions:
                self.version.addItem(f"v{v}", v)
        self.version.setEnabled(k is not None and len(self.choices[k].versions) > 1)
        self.version.blockSignals(False)
        self.changed.emit()

    def current(self) -> builder.InputChoice | None:
        k = self.combo.currentData()
        if k is None or k >= len(self.choices):
            return None
        c = self.choices[k]
        return builder.InputChoice(self.slot["name"], c.uid, c.output, self.version.currentData())

    # -- a card dragged from the tree ------------------------------------------------------
    def _dropped_uid(self, event) -> str | None:
        job = parse_job_mime(event.mimeData())
        if job is None or job[0] != self.project_uid:
            return None
        return job[1] if any(c.uid == job[1] for c in self.choices) else None

    def dragEnterEvent(self, event) -> None:  # noqa: N802
        if self._dropped_uid(event):
            event.acceptProposedAction()
        else:
            event.ignore()

    def dragMoveEvent(self, event) -> None:  # noqa: N802
        self.dragEnterEvent(event)

    def dropEvent(self, event) -> None:  # noqa: N802
        uid = self._dropped_uid(event)
        if uid and self.choose(uid):
            event.acceptProposedAction()
        else:
            event.ignore()


class QtJobBuilder(QDialog):
    """The builder; ``created(project_uid, uid, queued_on)`` after a job was made ('' when only created)."""

    created = Signal(str, str, str)

    def __init__(self, win, project_uid: str, workspace_uid: str | None, preset_type: str | None = None,
                 preset_inputs=(), parent=None) -> None:
        super().__init__(parent or win)
        self.win, self.project_uid, self.workspace_uid = win, project_uid, workspace_uid
        self.setWindowTitle(f"New job in {project_uid}{'/' + workspace_uid if workspace_uid else ''}")
        self.setObjectName("jobBuilder")
        self.type_name: str | None = None
        self.type_info: dict | None = None
        self.slots: dict[str, QtInputSlot] = {}
        self.editors: dict[str, QWidget] = {}
        self.errors: dict[str, QLabel] = {}
        self.pending = None
        self._preset_inputs = list(preset_inputs)
        self._loads = 0
        self.choices_loaded = False  # the input slots list their candidates (read on a worker)
        root = QVBoxLayout(self)
        split = QSplitter(Qt.Orientation.Horizontal)
        root.addWidget(split, 1)
        left = QWidget()
        ll = QVBoxLayout(left)
        ll.setContentsMargins(0, 0, 0, 0)
        self.filter = _FilterEdit()
        self.filter.setPlaceholderText("Filter job types (Enter picks the first)")
        self.types = QTreeWidget()
        self.types.setObjectName("builderTypes")
        self.types.setHeaderHidden(True)
        ll.addWidget(self.filter)
        ll.addWidget(self.types, 1)
        split.addWidget(left)
        self.form_area = QScrollArea()
        self.form_area.setWidgetResizable(True)
        split.addWidget(self.form_area)
        split.setSizes([250, 560])
        bottom = QHBoxLayout()
        self.lane = QComboBox()
        self.lane.setObjectName("builderLane")
        for key, text in LANES:
            self.lane.addItem(text, key)
        self.lane.setToolTip("Where the job runs (other lanes, such as SLURM, come later)")
        self.problem = QLabel("")
        self.problem.setWordWrap(True)
        bottom.addWidget(QLabel("Lane"))
        bottom.addWidget(self.lane)
        bottom.addWidget(self.problem, 1)
        root.addLayout(bottom)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.create_button = buttons.addButton("Create", QDialogButtonBox.ButtonRole.ApplyRole)
        self.create_button.setToolTip("Create the job (building): connect or edit it further, queue it later")
        self.queue_button = buttons.addButton("Queue", QDialogButtonBox.ButtonRole.AcceptRole)
        self.queue_button.setToolTip("Create the job and queue it on the lane")
        self.queue_button.setDefault(True)
        buttons.rejected.connect(self.reject)
        self.create_button.clicked.connect(lambda: self.submit(queue=False))
        self.queue_button.clicked.connect(lambda: self.submit(queue=True))
        root.addWidget(buttons)
        self._fill_types()
        self.filter.textChanged.connect(self._filter)
        self.filter.chosen.connect(self._pick_first)
        self.types.currentItemChanged.connect(self._type_item_changed)
        self.resize(900, 620)
        if preset_type:
            self.select_type(preset_type)
        self._check()

    def showEvent(self, event) -> None:  # noqa: N802
        super().showEvent(event)
        for button in self.findChildren(type(self.queue_button)):
            button.setAutoDefault(False)
        self.queue_button.setDefault(True)  # Enter queues; never Cancel by accident

    # -- types ---------------------------------------------------------------------------
    def _fill_types(self) -> None:
        self.catalogue = builder.catalogue()
        for group in self.catalogue:
            top = QTreeWidgetItem([group["title"]])
            top.setFlags(Qt.ItemFlag.ItemIsEnabled)
            for t in group["types"]:
                item = QTreeWidgetItem([t["title"]])
                item.setData(0, Qt.ItemDataRole.UserRole, t["name"])
                item.setToolTip(0, f"{t['name']}: {t['description']}")
                if not t["runnable"]:
                    item.setText(0, f"{t['title']} (not runnable)")
                top.addChild(item)
            self.types.addTopLevelItem(top)
            top.setExpanded(True)

    def _filter(self, text: str) -> None:
        text = text.strip().lower()
        for i in range(self.types.topLevelItemCount()):
            top = self.types.topLevelItem(i)
            shown = 0
            for k in range(top.childCount()):
                item = top.child(k)
                hit = not text or text in item.text(0).lower() or text in item.toolTip(0).lower()
                item.setHidden(not hit)
                shown += hit
            top.setHidden(shown == 0)

    def _pick_first(self) -> None:
        for item in self.type_items().values():
            if not item.isHidden() and not item.parent().isHidden():
                self.types.setCurrentItem(item)
                return

    def type_items(self) -> dict[str, QTreeWidgetItem]:
        out = {}
        for i in range(self.types.topLevelItemCount()):
            top = self.types.topLevelItem(i)
            for k in range(top.childCount()):
                out[top.child(k).data(0, Qt.ItemDataRole.UserRole)] = top.child(k)
        return out

    def select_type(self, name: str) -> None:
        item = self.type_items().get(name)
        if item is not None:
            self.types.setCurrentItem(item)

    def _type_item_changed(self, item, _previous) -> None:
        name = item.data(0, Qt.ItemDataRole.UserRole) if item is not None else None
        if name:
            self._show_type(name)

    # -- the form ----------------------------------------------------------------------------
    def _show_type(self, name: str) -> None:
        info = next(t for g in self.catalogue for t in g["types"] if t["name"] == name)
        self.type_name, self.type_info = name, info
        self.choices_loaded = not info["inputs"]
        body = QWidget()
        lay = QVBoxLayout(body)
        head = QLabel(f"<b>{info['title']}</b> <span style='color:gray'>({info['name']}, "
                      f"{info['category_title']})</span><br>{info['description']}")
        head.setWordWrap(True)
        head.setObjectName("builderDescription")
        lay.addWidget(head)
        self.title_edit = QLineEdit()
        self.title_edit.setPlaceholderText(info["title"])
        tl = QFormLayout()
        tl.addRow("Title", self.title_edit)
        lay.addLayout(tl)
        self.slots, self.editors, self.errors = {}, {}, {}
        if info["inputs"]:
            box = QGroupBox("Inputs")
            form = QFormLayout(box)
            for slot in info["inputs"]:
                w = QtInputSlot(slot, self.project_uid)
                w.changed.connect(self._check)
                self.slots[slot["name"]] = w
                label = QLabel(f"{slot['name']}{' *' if slot['required'] else ''}")
                label.setToolTip(w.toolTip())
                form.addRow(label, w)
            lay.addWidget(box)
            self._load_choices(info)
        if info["params"]:
            box = QGroupBox("Parameters")
            form = QFormLayout(box)
            for p in info["params"]:
                editor = self._editor(p)
                self.editors[p["name"]] = editor
                cell = QWidget()
                cl = QVBoxLayout(cell)
                cl.setContentsMargins(0, 0, 0, 4)
                cl.setSpacing(1)
                cl.addWidget(editor)
                help_text = QLabel(p["help"] or "")
                help_text.setWordWrap(True)
                help_text.setStyleSheet("color: gray; font-size: 9pt")
                help_text.setVisible(bool(p["help"]))
                cl.addWidget(help_text)
                err = QLabel("")
                err.setWordWrap(True)
                err.setStyleSheet(f"color: {palette.notice_colours('error')[1]}")
                err.setVisible(False)
                cl.addWidget(err)
                self.errors[p["name"]] = err
                label = QLabel(p["name"] + (" *" if p["required"] and p["default"] is None else ""))
                label.setToolTip(p["help"])
                form.addRow(label, cell)
            lay.addWidget(box)
        lay.addStretch(1)
        self.form_area.setWidget(body)
        self._check()

    def _editor(self, p: dict) -> QWidget:
        if p["type"] == "bool" and p["default"] is None:
            w = QComboBox()
            for text in _DEFAULT_BOOL:
                w.addItem({"default": "default (the project's setting)"}.get(text, text), text)
            w.currentIndexChanged.connect(self._check)
        elif p["type"] == "bool":
            w = QCheckBox("on")
            w.setChecked(bool(p["default"]))
            w.toggled.connect(self._check)
        elif p["choices"]:
            w = QComboBox()
            for c in p["choices"]:
                w.addItem(str(c), c)
            if p["default"] in p["choices"]:
                w.setCurrentIndex(p["choices"].index(p["default"]))
            w.currentIndexChanged.connect(self._check)
        else:
            w = QLineEdit()
            w.setPlaceholderText("required" if p["default"] is None and p["required"] else
                                 f"default: {p['default']}" if p["default"] not in (None, "") else "")
            w.textChanged.connect(self._check)
        w.setObjectName(f"param_{p['name']}")
        w.setToolTip(f"{p['name']} ({p['type']}): {p['help']}")
        return w

    def set_param(self, name: str, text) -> None:
        """Enter ``text`` into parameter ``name``'s field as a user would."""
        w = self.editors[name]
        if isinstance(w, QLineEdit):
            w.setText(str(text))
        elif isinstance(w, QCheckBox):
            w.setChecked(bool(text))
        else:
            i = w.findData(text)
            w.setCurrentIndex(i if i >= 0 else w.findText(str(text)))

    def param_texts(self) -> dict:
        out = {}
        for name, w in self.editors.items():
            if isinstance(w, QLineEdit):
                out[name] = w.text()
            elif isinstance(w, QCheckBox):
                out[name] = w.isChecked()
            else:
                value = w.currentData()
                out[name] = None if value == "default" else value
        return out

    def inputs(self) -> list[builder.InputChoice]:
        return [c for c in (s.current() for s in self.slots.values()) if c is not None]

    def _load_choices(self, info: dict) -> None:
        self._loads += 1
        serial = self._loads
        kinds = sorted({s["type"] for s in info["inputs"]})

        def read():
            return {k: builder.output_choices(self.project_uid, k, self.workspace_uid) for k in kinds}

        self.problem.setText("Reading the jobs whose outputs can be connected…")
        workers.submit(read, context=self, on_done=lambda res: self._choices_loaded(serial, res),
                       on_error=lambda exc: self.problem.setText(f"Cannot list outputs: {exc}"))

    def _choices_loaded(self, serial: int, by_kind: dict) -> None:
        if serial != self._loads:
            return
        for slot in self.slots.values():
            slot.set_choices(by_kind.get(slot.slot["type"], []))
        presets, self._preset_inputs = self._preset_inputs, []
        for choice in presets:
            if choice.slot in self.slots:
                self.slots[choice.slot].choose(choice.parent, choice.output, choice.version)
        self.choices_loaded = True
        self._check()

    # -- checking and submitting ---------------------------------------------------------------
    def problems(self) -> list[str]:
        if self.type_name is None:
            return ["Choose a job type"]
        _values, errors = builder.check_params(self.type_name, self.param_texts())
        for name, label in self.errors.items():
            label.setText(errors.get(name, ""))
            label.setVisible(name in errors)
        out = list(errors.values())
        missing = builder.missing_inputs(self.type_name, self.inputs())
        if missing:
            out.insert(0, f"Connect {', '.join(missing)}")
        return out

    def _check(self) -> None:
        problems = self.problems()
        ok = not problems and self.pending is None
        runnable = bool(self.type_info and self.type_info["runnable"])
        self.create_button.setEnabled(ok)
        self.queue_button.setEnabled(ok and runnable)
        self.queue_button.setToolTip("Create the job and queue it on the lane" if runnable or not self.type_info
                                     else "cryodesk cannot run this job type; create it and run it elsewhere")
        text = "; ".join(problems)
        self.problem.setText(text)
        self.problem.setStyleSheet(f"color: {palette.notice_colours('error')[1]}" if problems else "")
        self.create_button.setToolTip(text or "Create the job (building)")

    def submit(self, queue: bool) -> None:
        if self.problems() or self.pending is not None:
            return
        lane = self.lane.currentData() if queue else ""
        params = {k: v for k, v in self.param_texts().items() if v not in (None, "")}
        args = (self.project_uid, self.type_name, self.workspace_uid, params, self.inputs(), self.title_edit.text())

        def make():
            return builder.build_job(*args).uid

        self.pending = workers.submit(make, context=self, on_done=lambda uid: self._made(uid, lane),
                                      on_error=self._failed)
        self._check()

    def _made(self, uid: str, lane: str) -> None:
        self.pending = None
        self.created.emit(self.project_uid, uid, lane)
        self.accept()

    def _failed(self, exc) -> None:
        self.pending = None
        self._check()
        self.problem.setText(f"Not created: {exc}")
        self.problem.setStyleSheet(f"color: {palette.notice_colours('error')[1]}")

