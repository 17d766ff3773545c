"""The inspector (right dock): one job in detail, or a summary of a multi-job selection."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFormLayout,
    QLabel,
    QPlainTextEdit,
    QScrollArea,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..base import settings as base_settings
from ..base.errors import CryodeskError
from ..core import jobs, registry, rules, settings_service
from ..core.runner import LOG_NAME
from ..core.units import human_bytes
from .tables import fill_table
from .tables import read_only_table as _table

LOG_TAIL_BYTES = 8192
#: Row labels for params whose key alone says little to a user (the key stays in the tooltip).
PARAM_LABELS = {"cache_particles": "Cache particle images on SSD"}
SETTING_LABELS = {"delete_intermediate": "Delete intermediate results when it completes"}
#: What an unset (None) param means when the project sets no default either.
UNSET_MEANS = {"cache_particles": "on"}
_UNSET_TEXT = ("", "default", "none")


def _fmt(value) -> str:
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def param_rows(jtype, params: dict, defaults: dict, project_uid: str) -> list[tuple[str, str, str, str]]:
    """``(key, label, value text, tooltip)`` per param: declared ones too, unset ones with their default.

    A job's ``None`` means "the project's default" (``cryodesk project set-default``),
    so that is what the row shows, saying where it comes from.
    """
    declared = {p.name: p for p in (jtype.params if jtype is not None else ())}
    rows = []
    for key in sorted(set(params) | set(declared)):
        value = params.get(key)
        p = declared.get(key)
        tip = f"{key}: {p.help}" if p is not None and p.help else key
        if value is None and p is not None and p.default is None:
            if key in defaults:
                text = f"default: {_fmt(defaults[key])} (project {project_uid})"
            else:
                text = f"default: {UNSET_MEANS[key]}" if key in UNSET_MEANS else "default (unset)"
            tip += "\nType a value to set it for this job; type 'default' to use the project default again."
        else:
            text = _fmt(value) if p is not None and p.type == "bool" else str(value)
        rows.append((key, PARAM_LABELS.get(key, key), text, tip))
    return rows


def _fill(table: QTableWidget, rows) -> None:
    fill_table(table, rows)
    table.setFixedHeight(min(240, 28 + 24 * max(1, len(rows))))


def tail(path: Path, nbytes: int = LOG_TAIL_BYTES) -> str:
    """The last ``nbytes`` of a text file ('' if it does not exist)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            fh.seek(max(0, fh.tell() - nbytes))
            return fh.read().decode("utf-8", "replace")
    except OSError:
        return ""


class QtInspector(QScrollArea):
    """Shows params (editable unless frozen), inputs, outputs, history and log of the selected job."""

    param_edited = Signal(str, str, object, object)  # uid, key, old value, new text (None: back to default)
    setting_edited = Signal(str, str, object, object)  # uid, setting, old own value, new (None: inherit)
    job_link = Signal(str)  # a parent uid was clicked

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setWidgetResizable(True)
        body = QWidget()
        lay = QVBoxLayout(body)
        self.header = QLabel("No job selected")
        self.header.setObjectName("inspectorHeader")
        self.header.setWordWrap(True)
        self.header.setTextFormat(Qt.TextFormat.RichText)
        self.params_note = QLabel("")
        self.params_note.setWordWrap(True)
        self.params = _table(["Parameter", "Value"])
        self.params.itemChanged.connect(self._on_param_changed)
        self.inputs = QLabel("")
        self.inputs.setTextFormat(Qt.TextFormat.RichText)
        self.inputs.linkActivated.connect(self.job_link)
        self.outputs = _table(["Output", "Version", "Kind", "Size", "Role", "Path"])
        self.job_settings = QWidget()
        self.job_settings.setObjectName("jobSettings")
        self.job_settings_form = QFormLayout(self.job_settings)
        self.job_settings_form.setRowWrapPolicy(QFormLayout.RowWrapPolicy.WrapAllRows)  # label above: docks are narrow
        self.job_settings_form.setContentsMargins(0, 0, 0, 0)
        self.setting_boxes: dict[str, QComboBox] = {}
        self.lane_info = QLabel("")  # lanes (issue 18): where it was sent, the cluster's job id
        self.lane_info.setWordWrap(True)
        self.lane_info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.lane_script = QPlainTextEdit()
        self.lane_script.setReadOnly(True)
        self.lane_script.setFixedHeight(120)
        self.history = _table(["Status", "At"])
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(400)
        self.log.setFixedHeight(150)
        self.sections = []
        for title, w in (("", self.header), ("Parameters", self.params_note), ("", self.params),
                         ("Settings of this job", self.job_settings),
                         ("Inputs", self.inputs), ("Outputs", self.outputs), ("Lane", self.lane_info),
                         ("", self.lane_script), ("Status history", self.history),
                         (f"Log ({LOG_NAME}, tail)", self.log)):
            if title:
                label = QLabel(f"<b>{title}</b>")
                lay.addWidget(label)
                self.sections.append(label)
            lay.addWidget(w)
            self.sections.append(w)
        lay.addStretch(1)
        self.setWidget(body)
        self.uid: str | None = None
        self._params: dict = {}
        self._jtype = None
        self._loading = False
        self.show_nothing()

    def _detail_visible(self, on: bool) -> None:
        for w in self.sections[1:]:
            w.setVisible(on)

    def show_nothing(self) -> None:
        self.uid = None
        self.header.setText("No job selected")
        self._detail_visible(False)

    def show_selection(self, snap, indices) -> None:
        """Counts, sizes and statuses of a multi-job selection."""
        self.uid = None
        self._detail_visible(False)
        statuses = Counter(snap.status_name(i) for i in indices)
        total = int(snap.size[indices].sum())
        finals = int(snap.is_final[indices].sum())
        anc = int((snap.is_ancestor[indices] & ~snap.is_final[indices]).sum())
        lines = "".join(f"<br>{s}: {n}" for s, n in sorted(statuses.items()))
        self.header.setText(f"<b>{len(indices)} jobs selected</b><br>Total size: {human_bytes(total)}"
                            f"<br>Final: {finals} · ancestor of final: {anc}{lines}")

    def show_job(self, project_uid: str, uid: str) -> None:
        """Load job ``uid`` (small queries: one job)."""
        try:
            job = jobs.get_job(project_uid, uid)
            d = jobs.describe_jobs(project_uid, [job])[0]
        except CryodeskError as exc:  # deleted meanwhile, or a type whose plugin is not installed
            self.show_nothing()
            self.header.setText(f"<b>{uid}</b>: {exc}")
            return
        self.uid = uid
        self._detail_visible(True)
        flags = " · <span style='color:#b8860b'><b>FINAL</b></span>" if d["is_final"] else (
            " · <span style='color:#00a3bf'><b>ancestor of final</b></span>" if d["is_ancestor_of_final"] else "")
        self.header.setText(f"<b>{uid}</b> {d['title']}<br>{d['type']} ({d['category']}) · {d['status']}"
                            f" · {human_bytes(d['size_bytes'])}{flags}<br>Workspaces: {', '.join(d['workspaces'])}"
                            + (f"<br><span style='color:#d93025'>{d['error']}</span>" if d.get("error") else ""))
        frozen = rules.why_not_set_params(job)
        self.params_note.setText(f"Read-only: {frozen}" if frozen else "Double-click a value to edit it.")
        self._loading = True
        self._params = dict(d["params"])
        try:
            defaults = settings_service.project_values(project_uid)
        except CryodeskError:
            defaults = {}
        try:
            self._jtype = registry.get(job.type)
        except CryodeskError:  # a plugin's type that is not installed (or types still loading)
            self._jtype = None
        rows = param_rows(self._jtype, self._params, defaults, project_uid)
        _fill(self.params, [(label, text) for _key, label, text, _tip in rows])
        self.params.resizeColumnToContents(0)
        for r, (key, _label, _text, tip) in enumerate(rows):
            self.params.item(r, 0).setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.params.item(r, 0).setData(Qt.ItemDataRole.UserRole, key)
            for c in (0, 1):
                self.params.item(r, c).setToolTip(tip)
            if frozen:
                self.params.item(r, 1).setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable)
        self.params.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers if frozen
                                    else QAbstractItemView.EditTrigger.DoubleClicked)
        self._loading = False
        self._show_settings(project_uid, uid)
        links = [f"{i['slot']}: <a href='{i['parent']}'>{i['parent']}</a>.{i['output']}"
                 + (f" v{i['version']}" if i["version"] is not None else "") for i in d["inputs"]]
        self.inputs.setText("<br>".join(links) or "none")
        latest: dict[str, int] = {}
        for o in d["outputs"]:
            latest[o["group"]] = max(latest.get(o["group"], -1), o["version"])
        _fill(self.outputs, [(o["group"], o["version"], o["kind"], human_bytes(o["size_bytes"]),
                              "final" if o["version"] == latest[o["group"]] else "intermediate", o["path"])
                             for o in d["outputs"]])
        _fill(self.history, [(h.get("status", ""), h.get("at", "")) for h in reversed(job.status_history or [])])
        self.log.setPlainText(tail(jobs.job_dir(job) / LOG_NAME) or "(no log)")
        self._show_lane(project_uid, uid)

    def _show_lane(self, project_uid: str, uid: str) -> None:
        from ..core import lanes

        try:
            info = lanes.job_lane_info(project_uid, uid)
        except CryodeskError:
            info = None
        i = self.sections.index(self.lane_info)
        for w in (self.sections[i - 1], self.lane_info, self.lane_script):  # the title, the text, the script
            w.setVisible(info is not None)
        if info is None:
            return
        cid = info["cluster_job_id"]
        self.lane_info.setText(f"{info['lane']} ({info['type']})" + (f" · cluster job {cid}" if cid else
                                                                      " · not submitted yet")
                               + (f"<br>script: {info['script_rel']}" if info["script_rel"] else ""))
        self.lane_script.setPlainText(info["script"] or "(no submission script yet)")
        self.lane_info.setToolTip(info["script_path"] or "")

    def _show_settings(self, project_uid: str, uid: str) -> None:
        """The job-level settings (not its parameters): own value or inherit, and what wins now."""
        while self.job_settings_form.rowCount():
            # takeRow + deleteLater, not removeRow: a refresh can come while one of these boxes is still
            # handling the key or click that changed it (deleting it then would crash the app)
            taken = self.job_settings_form.takeRow(0)
            for item in (taken.labelItem, taken.fieldItem):
                widget = item.widget() if item is not None else None
                if widget is not None:
                    widget.hide()
                    widget.deleteLater()
        self.setting_boxes = {}
        try:
            view = settings_service.settings_view(project=project_uid, job=uid)
        except CryodeskError as exc:
            self.job_settings_form.addRow(QLabel(f"Cannot read settings: {exc}"))
            return
        for row in view["settings"]:
            s = base_settings.SETTINGS[row["name"]]
            if "job" not in s.levels or s.job_param or s.kind != "bool":
                continue  # job parameters are in the table above
            own = row["values"].get("job")
            below = next((f"{'on' if row['values'][lv] else 'off'} (from {lv})" for lv in ("project", "worker", "user")
                          if lv in row["values"] and lv in s.levels), f"{'on' if row['default'] else 'off'} (default)")
            box = QComboBox()
            box.setObjectName(f"jobSetting_{row['name']}")
            box.addItem(f"inherit: {below}", None)
            box.addItem("on", True)
            box.addItem("off", False)
            box.setCurrentIndex(0 if own is None else (1 if own else 2))
            box.setToolTip(f"{row['name']}: {row['help']}\nNow: {'on' if row['value'] else 'off'} "
                           f"(from {row['level']})")
            box.currentIndexChanged.connect(
                lambda _i, b=box, n=row["name"], o=own: self.setting_edited.emit(self.uid, n, o, b.currentData()))
            self.setting_boxes[row["name"]] = box
            label = QLabel(SETTING_LABELS.get(row["name"], row["name"]))
            label.setWordWrap(True)
            label.setToolTip(row["help"])
            self.job_settings_form.addRow(label, box)

    def _on_param_changed(self, item: QTableWidgetItem) -> None:
        if self._loading or self.uid is None or item.column() != 1:
            return
        key = self.params.item(item.row(), 0).data(Qt.ItemDataRole.UserRole)
        new = item.text()
        try:
            declared = self._jtype.param(key)
        except CryodeskError:
            declared = None
        if declared is not None and declared.default is None and new.strip().lower() in _UNSET_TEXT:
            new = None  # back to the project default
        self.param_edited.emit(self.uid, key, self._params.get(key), new)
