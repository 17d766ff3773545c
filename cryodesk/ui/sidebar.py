"""Data-management sidebar: size breakdowns of the selected project / workspace as small bar charts."""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtCore import QEvent, QSize
from PySide6.QtWidgets import QLabel, QPushButton, QSizePolicy, QVBoxLayout, QWidget

from ..core.units import human_bytes
from . import palette

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


class QtDataSidebar(QWidget):
    """Totals and four bar charts: disk use, final flags, preprocessing vs other, status."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        lay = QVBoxLayout(self)
        self.summary = QLabel("Select a project or workspace")
        self.summary.setWordWrap(True)
        lay.addWidget(self.summary)
        self.cleanup_button = QPushButton("Cleanup Data…")
        lay.addWidget(self.cleanup_button)
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
        super().changeEvent(event)

    def set_data(self, row: dict, breakdown: dict, workspace_uid: str = "") -> None:
        scope = f"{row['uid']}/{workspace_uid}" if workspace_uid else row["uid"]
        total_jobs = sum(breakdown["kind"].values())
        self.summary.setText(f"<b>{scope}</b> {row['title']}<br>jobs: {human_bytes(total_jobs)} · sessions: "
                             f"{row['sessions']} ({human_bytes(row['sessions_bytes'])})")
        self.disk.set_bars(["jobs", "sessions", "other"], [total_jobs, row["sessions_bytes"], row["other_bytes"]],
                           ["#1a73e8", "#a142f4", "#9aa0a6"])
        f = breakdown["final"]
        self.finals.set_bars(["final", "ancestor", "non-final"], [f["final"], f["ancestor of final"], f["non-final"]],
                             [palette.FINAL_COLOUR, palette.ANCESTOR_COLOUR, "#9aa0a6"])
        k = breakdown["kind"]
        self.kind.set_bars(["preprocessing", "other"], [k["preprocessing"], k["other"]], ["#00897b", "#5e35b1"])
        s = breakdown["status"]
        self.status.set_bars(list(s), list(s.values()), [palette.STATUS_COLOURS[x] for x in s])
