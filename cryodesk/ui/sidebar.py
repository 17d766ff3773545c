"""Data-management sidebar: size breakdowns of the selected project / workspace as small bar charts.

The project's size on disk, with the out-of-date notice and *Refresh size* of
the Cleanup Data dialog (the scan runs on a worker; its figures show at once,
and the change events it records update the rest of the window).
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QSize, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from ..core.units import human_bytes
from ..engine import workers
from . import palette

STALE_TEXT = "Size out of date — figures use recorded sizes."

UNITS = ((1024**4, "TiB"), (1024**3, "GiB"), (1024**2, "MiB"), (1024, "KiB"), (1, "B"))


def _unit(maximum: float) -> tuple[float, str]:
    for scale, name in UNITS:
        if maximum >= scale:
            return scale, name
    return 1, "B"


class QtBarChart(pg.PlotWidget):
    """A small labelled bar chart of byte counts."""

    #: the chart's height when there is room; it shrinks to MIN_H (the sidebar scrolls below that)
    PREFERRED_H, MIN_H = 150, 110

    def __init__(self, title: str, parent=None) -> None:
        super().__init__(parent=parent, background=None)
        self.title_text = title
        self.setMouseEnabled(False, False)
        self.hideButtons()
        self.setMenuEnabled(False)
        self.setMinimumHeight(self.MIN_H)
        self.setMaximumHeight(self.PREFERRED_H + 20)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.bars: pg.BarGraphItem | None = None
        self.values: list[int] = []
        self.apply_palette()

    def sizeHint(self) -> QSize:  # noqa: N802
        return QSize(240, self.PREFERRED_H)

    def apply_palette(self) -> None:
        """Background, axes and title in the light or dark mode of the application palette."""
        c = palette.chart_colours()
        self.setBackground(c["background"])
        self.setTitle(self.title_text, size="9pt", color=c["text"])
        for name in ("left", "bottom"):
            axis = self.getAxis(name)
            axis.setPen(pg.mkPen(c["axis"]))
            axis.setTextPen(pg.mkPen(c["text"]))

    def set_bars(self, labels: list[str], values: list[int], colours: list[str]) -> None:
        if self.bars is not None:
            self.removeItem(self.bars)
        self.values = [int(v) for v in values]
        scale, unit = _unit(max(self.values, default=0))
        heights = [v / scale for v in self.values]
        self.bars = pg.BarGraphItem(x=list(range(len(values))), height=heights, width=0.6,
                                    brushes=[pg.mkBrush(c) for c in colours], pen=pg.mkPen(None))
        self.addItem(self.bars)
        self.getAxis("bottom").setTicks([list(enumerate(labels))])
        self.setLabel("left", unit)
        self.setXRange(-0.6, len(values) - 0.4, padding=0)
        self.setYRange(0, max(heights, default=1) * 1.1 or 1, padding=0)


def _refresh(project_uid: str) -> dict:
    """Worker body: scan the project directory (:func:`cryodesk.core.sizes.refresh_project_size`)."""
    from ..core import projects, sizes

    return sizes.refresh_project_size(projects.get_project(project_uid))


class QtDataSidebar(QWidget):
    """Totals and four bar charts: disk use, final flags, preprocessing vs other, status.

    ``size_refreshed(summary)`` fires when a *Refresh size* scan has finished.
    """

    size_refreshed = Signal(object)

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        self.summary = QLabel("Select a project or workspace")
        self.summary.setWordWrap(True)
        lay.addWidget(self.summary)
        self.stale_bar = QFrame()
        self.stale_bar.setObjectName("sidebarStale")
        self.stale_bar.setStyleSheet(palette.notice_stylesheet("warning", "QFrame"))
        sl = QHBoxLayout(self.stale_bar)
        sl.setContentsMargins(6, 2, 6, 2)
        self.stale_label = QLabel(STALE_TEXT)
        self.stale_label.setWordWrap(True)
        sl.addWidget(self.stale_label, 1)
        self.stale_bar.setVisible(False)
        lay.addWidget(self.stale_bar)
        buttons = QHBoxLayout()
        self.cleanup_button = QPushButton("Cleanup Data…")
        self.refresh_button = QPushButton("Refresh size")
        self.refresh_button.setToolTip("Measure the project directory again (as du -sb does), off the GUI thread")
        self.refresh_button.setEnabled(False)
        self.refresh_button.clicked.connect(self.refresh_size)
        buttons.addWidget(self.cleanup_button)
        buttons.addWidget(self.refresh_button)
        lay.addLayout(buttons)
        self.project_uid: str | None = None
        self.pending = None  # the scan in flight (tests wait for it)
        self.disk = QtBarChart("Disk use")
        self.finals = QtBarChart("Final results")
        self.kind = QtBarChart("Preprocessing vs other")
        self.status = QtBarChart("By status")
        self.charts = (self.disk, self.finals, self.kind, self.status)
        for chart in self.charts:
            lay.addWidget(chart)
        lay.addStretch(1)

    def changeEvent(self, event) -> None:  # noqa: N802
        if event.type() in (QEvent.Type.PaletteChange, QEvent.Type.ApplicationPaletteChange):
            for chart in self.charts:
                chart.apply_palette()
            sheet = palette.notice_stylesheet("warning", "QFrame")
            if self.stale_bar.styleSheet() != sheet:  # (setting it re-polishes: no loop)
                self.stale_bar.setStyleSheet(sheet)
        super().changeEvent(event)

    def set_data(self, row: dict, breakdown: dict, workspace_uid: str = "") -> None:
        self.project_uid = row["uid"]
        scope = f"{row['uid']}/{workspace_uid}" if workspace_uid else row["uid"]
        total_jobs = sum(breakdown["kind"].values())
        now = row.get("size_now_bytes")
        disk = (f"<br>project on disk: {human_bytes(now)} (other files {human_bytes(row['other_bytes'])})"
                if now is not None else "<br>project on disk: not measured yet")
        self.summary.setText(f"<b>{scope}</b> {row['title']}<br>jobs: {human_bytes(total_jobs)} · sessions: "
                             f"{row['sessions']} ({human_bytes(row['sessions_bytes'])}){disk}")
        self.stale_label.setText(STALE_TEXT)
        self.stale_bar.setVisible(bool(row.get("size_stale")) and self.pending is None)
        self.refresh_button.setEnabled(self.pending is None)
        self.disk.set_bars(["jobs", "sessions", "other"], [total_jobs, row["sessions_bytes"], row["other_bytes"]],
                           ["#1a73e8", "#a142f4", "#9aa0a6"])
        f = breakdown["final"]
        self.finals.set_bars(["final", "ancestor", "non-final"], [f["final"], f["ancestor of final"], f["non-final"]],
                             [palette.FINAL_COLOUR, palette.ANCESTOR_COLOUR, "#9aa0a6"])
        k = breakdown["kind"]
        self.kind.set_bars(["preprocessing", "other"], [k["preprocessing"], k["other"]], ["#00897b", "#5e35b1"])
        s = breakdown["status"]
        self.status.set_bars(list(s), list(s.values()), [palette.STATUS_COLOURS[x] for x in s])

    # -- refresh size -------------------------------------------------------------
    def refresh_size(self) -> None:
        """Scan the shown project on a worker (a click while one runs is ignored)."""
        if self.project_uid is None or self.pending is not None:
            return
        self.refresh_button.setEnabled(False)
        self.refresh_button.setText("Refreshing…")
        self.pending = workers.submit(_refresh, self.project_uid, on_done=self._refreshed, on_error=self._failed,
                                      context=self)

    def _refreshed(self, summary: dict) -> None:
        self.pending = None
        self.refresh_button.setText("Refresh size")
        self.refresh_button.setEnabled(True)
        self.stale_bar.setVisible(bool(summary.get("stale")))
        self.size_refreshed.emit(summary)

    def _failed(self, exc) -> None:
        self.pending = None
        self.refresh_button.setText("Refresh size")
        self.refresh_button.setEnabled(True)
        self.stale_label.setText(f"Cannot refresh the size: {exc}")
        self.stale_bar.setVisible(True)
