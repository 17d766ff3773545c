"""The SSD cache panel (a dock): the figures of ``cryodesk cache status``, Refresh and Clear.

Everything that touches the cache (status, the preview of what a clear frees,
the clear itself) runs on a worker (:func:`cryodesk.engine.workers.submit`):
a status call stats every entry and takes the cache's space lock, which another
process may hold for a while, so the GUI thread never waits for it.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from ..core.units import human_bytes
from ..engine import workers
from .dialogs import QtConfirmDialog
from .tables import fill_table, read_only_table

__all__ = ["QtCachePanel", "cache_status", "clear_preview", "clear_cache"]

NO_CACHE = ("No SSD cache is configured for worker {worker!r}: connect one with "
            "<tt>cryodesk worker connect --ssdpath PATH</tt> or set <tt>CRYODESK_SSD_PATH</tt>.")


def _cache():
    """``(config, Cache or None)`` of this worker (worker row + environment)."""
    from ..cache import Cache, resolve_config

    cfg = resolve_config()
    return cfg, (Cache(cfg) if cfg.usable else None)


def cache_status() -> dict:
    """Worker body: ``Cache.status()`` (``{"usable": False, "worker": ...}`` without a cache)."""
    from ..cache.config import reserve_advice

    cfg, cache = _cache()
    if cache is None:
        return {"usable": False, "worker": cfg.worker}
    st = cache.status()
    return {"usable": True, **st, "advice": reserve_advice(cfg.ssd_path, st["reserve_bytes"], cfg.worker)}


def _project_key(label: str | None) -> str | None:
    # status() lists entries without a project under "-"; clear() matches them by "".
    return None if label is None else ("" if label == "-" else label)


def clear_preview(project: str | None = None) -> dict:
    """Worker body: what ``Cache.clear(project)`` would free now (entries held by jobs are kept)."""
    _cfg, cache = _cache()
    st = cache.status()
    held = {lk["key"] for lk in st["locks"]}
    key = _project_key(project)
    mine = [e for e in cache.index.all() if key is None or e.project == key]
    free = [e for e in mine if e.state == "ready" and e.key not in held]
    return {"project": project, "entries": len(free), "bytes": sum(e.size for e in free),
            "kept": len(mine) - len(free)}


def clear_cache(project: str | None = None) -> dict:
    """Worker body: ``Cache.clear(project)``."""
    _cfg, cache = _cache()
    return cache.clear(_project_key(project))


def _table(headers) -> QTableWidget:
    t = read_only_table(headers)
    t.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    t.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
    t.setWordWrap(False)
    t.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # long paths keep both ends; full text in the tooltip
    return t


def _fill(table: QTableWidget, rows) -> None:
    fill_table(table, rows, tooltips=True)


def figures(st: dict) -> list[tuple[str, str]]:
    """The (label, value) rows the panel shows for a ``Cache.status()`` dict."""
    quota = human_bytes(st["quota_bytes"]) if st["quota_bytes"] is not None else "none"
    reserve = human_bytes(st["reserve_bytes"]) if st["reserve_bytes"] else "none"
    return [("Path", st["path"]), ("Quota", quota), ("Reserve", reserve),
            ("Used", f"{human_bytes(st['used_bytes'])} in {st['entries']} entries"),
            ("Held by running jobs", human_bytes(st["held_bytes"])),
            ("Disk free", f"{human_bytes(st['disk_free_bytes'])} of {human_bytes(st['disk_total_bytes'])}"),
            ("Available to the cache", human_bytes(st["available_bytes"])),
            ("Lifetime", f"{st['lifetime_days']:g} days unused"), ("Copy threads", str(st["threads"]))]


class QtCachePanel(QWidget):
    """Figures, entries by project and locks of this worker's SSD cache; Refresh, Clear.

    ``refreshed(status)`` fires when new figures are shown, ``cleared(result)``
    after a clear; ``dialog`` is the confirmation currently open (tests drive it).
    """

    refreshed = Signal(object)
    cleared = Signal(object)
    message = Signal(str)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("cachePanel")
        lay = QVBoxLayout(self)
        lay.setContentsMargins(4, 4, 4, 4)
        self.summary = QLabel("SSD cache: not loaded yet")
        self.summary.setWordWrap(True)
        lay.addWidget(self.summary)
        self.figures = _table(["Figure", "Value"])
        self.figures.setObjectName("cacheFigures")
        lay.addWidget(self.figures)
        self.advice = QLabel("")  # a suggested reserve when there is none (the guide's default)
        self.advice.setObjectName("cacheAdvice")
        self.advice.setWordWrap(True)
        self.advice.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.advice.setVisible(False)
        lay.addWidget(self.advice)
        lay.addWidget(QLabel("<b>Entries by project</b> (select one to clear only it)"))
        self.projects = _table(["Project", "Entries", "Size"])
        self.projects.setObjectName("cacheProjects")
        self.projects.itemSelectionChanged.connect(self._update_buttons)
        lay.addWidget(self.projects)
        lay.addWidget(QLabel("<b>Locks held</b>"))
        self.locks = _table(["PID", "Mode", "Kind", "Size", "Entry"])
        self.locks.setObjectName("cacheLocks")
        lay.addWidget(self.locks)
        self.projects.setMinimumHeight(90)
        self.locks.setMinimumHeight(90)
        lay.addWidget(self._build_calculator())
        row = QHBoxLayout()
        self.refresh_button = QPushButton("Refresh")
        self.clear_button = QPushButton("Clear all…")
        self.clear_project_button = QPushButton("Clear project…")
        self.clear_button.setToolTip("Remove every cached entry no running job holds")
        self.clear_project_button.setToolTip("Remove the selected project's cached entries no running job holds")
        for b in (self.refresh_button, self.clear_button, self.clear_project_button):
            row.addWidget(b)
        row.addStretch(1)
        lay.addLayout(row)
        self.refresh_button.clicked.connect(self.refresh)
        self.clear_button.clicked.connect(lambda: self.ask_clear(None))
        self.clear_project_button.clicked.connect(lambda: self.ask_clear(self.selected_project()))
        self.status: dict | None = None
        self.pending = None  # the worker in flight (tests wait for it)
        self.dialog = None
        self._busy = False
        self._update_buttons()

    def _build_calculator(self) -> QWidget:
        """The guide's dataset-size formula: particles and box in, exact bytes out (as ``cache estimate``)."""
        box = QWidget()
        col = QVBoxLayout(box)
        col.setContentsMargins(0, 4, 0, 0)
        row = QHBoxLayout()
        row.addWidget(QLabel("<b>Size calculator</b> particles"))
        self.calc_count = QSpinBox()
        self.calc_count.setRange(0, 2_000_000_000)
        self.calc_count.setGroupSeparatorShown(True)
        self.calc_count.setValue(1_000_000)
        row.addWidget(self.calc_count)
        row.addWidget(QLabel("box (px)"))
        self.calc_box = QSpinBox()
        self.calc_box.setRange(1, 4096)
        self.calc_box.setValue(256)
        row.addWidget(self.calc_box)
        row.addStretch(1)
        col.addLayout(row)
        self.calc_result = QLabel("")
        self.calc_result.setObjectName("cacheCalculator")
        self.calc_result.setWordWrap(True)
        self.calc_result.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        col.addWidget(self.calc_result)
        self.calc_count.valueChanged.connect(self._calculate)
        self.calc_box.valueChanged.connect(self._calculate)
        self._calculate()
        return box

    def _calculate(self, *_args) -> None:
        from ..cache.estimate import describe_formula, estimate_formula

        self.calc_result.setText(describe_formula(estimate_formula(self.calc_count.value(), self.calc_box.value())))

    # -- refresh -----------------------------------------------------------------
    def refresh(self) -> None:
        """Recompute the figures off the GUI thread (a click while one runs is ignored)."""
        if self._busy:
            return
        self._set_busy(True)
        self.pending = workers.submit(cache_status, on_done=self._show, on_error=self._failed, context=self)

    def _set_busy(self, busy: bool) -> None:
        self._busy = busy
        self.refresh_button.setText("Refreshing…" if busy else "Refresh")
        self._update_buttons()

    def _show(self, st: dict) -> None:
        self.pending = None
        self._set_busy(False)
        self.status = st if st.get("usable") else None
        self.advice.setText(st.get("advice") or "")
        self.advice.setVisible(bool(st.get("advice")))
        if self.status is None:
            self.summary.setText(NO_CACHE.format(worker=st.get("worker", "")))
            for t in (self.figures, self.projects, self.locks):
                t.setRowCount(0)
        else:
            self.summary.setText(f"SSD cache of worker <b>{st['worker']}</b> (settings from {st['config_source']})")
            _fill(self.figures, figures(st))
            self.figures.resizeColumnToContents(0)
            self.figures.resizeRowsToContents()
            # all figures visible at once: the table is as tall as its rows
            self.figures.setFixedHeight(self.figures.horizontalHeader().height() + 4
                                        + sum(self.figures.rowHeight(r) for r in range(self.figures.rowCount())))
            _fill(self.projects, [(p, d["entries"], human_bytes(d["bytes"]))
                                  for p, d in sorted(st["by_project"].items())])
            _fill(self.locks, [(lk["pid"], lk["mode"], lk["kind"], human_bytes(lk["bytes"]), lk["key"])
                               for lk in st["locks"]])
        self._update_buttons()
        self.refreshed.emit(st)

    def _failed(self, exc) -> None:
        self.pending = None
        self._set_busy(False)
        self.summary.setText(f"<span style='color:#d93025'>SSD cache: {exc}</span>")
        self.message.emit(f"SSD cache: {exc}")

    # -- clear --------------------------------------------------------------------
    def selected_project(self) -> str | None:
        rows = self.projects.selectionModel().selectedRows()
        return self.projects.item(rows[0].row(), 0).text() if rows else None

    def _update_buttons(self) -> None:
        usable = self.status is not None and not self._busy
        self.clear_button.setEnabled(usable and self.status["entries"] > 0)
        self.clear_project_button.setEnabled(usable and self.selected_project() is not None)

    def ask_clear(self, project: str | None) -> None:
        """Compute what the clear frees (worker), then ask before clearing."""
        if self.status is None or self._busy:
            return
        self._set_busy(True)
        self.pending = workers.submit(clear_preview, project, on_done=self._confirm, on_error=self._failed,
                                      context=self)

    def _confirm(self, preview: dict) -> None:
        self.pending = None
        self._set_busy(False)
        project = preview["project"]
        scope = "the whole SSD cache" if project is None else f"project {project}'s entries in the SSD cache"
        kept = (f" {preview['kept']} entries in use by running jobs are kept." if preview["kept"] else "")
        text = (f"Clear {scope}? This removes {preview['entries']} entries and frees "
                f"{human_bytes(preview['bytes'])} ({preview['bytes']:,} bytes) on the SSD.{kept} "
                f"The project files are not touched; jobs copy what they need again.")
        if self.dialog is not None:
            self.dialog.deleteLater()
        dialog = QtConfirmDialog("Clear SSD cache", text, (), f"Clear {human_bytes(preview['bytes'])}", self)
        dialog.accepted.connect(lambda: self._clear(project))
        dialog.finished.connect(lambda _r, d=dialog: self._forget(d))
        self.dialog = dialog
        dialog.open()

    def _forget(self, dialog) -> None:
        if self.dialog is dialog:
            self.dialog = None
        dialog.deleteLater()

    def _clear(self, project: str | None) -> None:
        self._set_busy(True)
        self.pending = workers.submit(clear_cache, project, on_done=self._cleared, on_error=self._failed, context=self)

    def _cleared(self, result: dict) -> None:
        self.pending = None
        self._set_busy(False)
        kept = f"; {result['held_skipped']} in use were kept" if result["held_skipped"] else ""
        self.message.emit(f"SSD cache: removed {result['removed']} entries, freed "
                          f"{human_bytes(result['bytes_freed'])}{kept}")
        self.cleared.emit(result)
        self.refresh()
