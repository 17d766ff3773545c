"""The preview tabs of the Cleanup Data dialog: an estimate bar chart and four figure tables.

Every number shown comes from ``plan.tabs`` / ``plan.entries`` (the planner's
figures); nothing is recomputed here except grouping entries by action.
"""

from __future__ import annotations

import pyqtgraph as pg
from PySide6.QtWidgets import QHeaderView, QLabel, QTabWidget, QVBoxLayout, QWidget

from ..core.units import human_bytes
from .sidebar import _unit
from .tables import fill_table as _fill
from .tables import read_only_table

ESTIMATE_BARS = ("cleared", "intermediate only", "deleted", "untouched")
ESTIMATE_COLOURS = ("#1a73e8", "#00a3bf", "#d93025", "#9aa0a6")
CATEGORY_LABELS = {"motion_correction": "Motion correction", "ctf_estimation": "CTF estimation",
                   "particle_picking": "Particle picking", "extraction": "Extraction",
                   "restack": "Restack jobs", "non_preprocessing": "Not preprocessing"}
BLOCK_HEADERS = ["Group", "Jobs", "% jobs", "Size", "% size", "Affected", "Frees"]


def estimate_text(est: dict) -> str:
    """The estimate's headline: freed, then the share of the scope being cleaned, the project's beside it."""
    text = (f"<b>{human_bytes(est['bytes_freed'])}</b> freed — <b>{est['percent_of_scope']:.1f}%</b> of "
            f"{est['scope']} ({human_bytes(est['scope_bytes'])})")
    if est["scope_bytes"] != est["project_bytes"] or " " in est["scope"]:
        text += f" · {est['percent_of_project']:.1f}% of the project ({human_bytes(est['project_bytes'])})"
    return text


def estimate_values(plan) -> dict[str, int]:
    """Bytes per estimate bar: freed by clearing, by dropping intermediates, by deleting; and what stays in scope."""
    by = {a: sum(e.bytes for e in plan.by_action(a)) for a in ("clear", "clear_intermediate", "delete")}
    est = plan.tabs["estimate"]
    return {"cleared": by["clear"], "intermediate only": by["clear_intermediate"], "deleted": by["delete"],
            "untouched": int(est["bytes_after"])}


def _block_row(name: str, b: dict) -> list:
    return [name, b["jobs"], f"{b['percent_jobs']:.1f}", human_bytes(b["bytes"]), f"{b['percent_bytes']:.1f}",
            b["jobs_affected"], human_bytes(b["bytes_freed"])]


class QtCleanupTabs(QTabWidget):
    """Estimate | Preprocessing | Intermediate results | Non-final | Killed/Failed."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        est = QWidget()
        lay = QVBoxLayout(est)
        self.estimate_label = QLabel("")
        self.estimate_label.setWordWrap(True)
        self.chart = pg.PlotWidget(background=None)
        self.chart.setMouseEnabled(False, False)
        self.chart.hideButtons()
        self.chart.setMenuEnabled(False)
        self.chart.getAxis("bottom").setTicks([list(enumerate(ESTIMATE_BARS))])
        self.bars: pg.BarGraphItem | None = None
        self.values: dict[str, int] = {}
        lay.addWidget(self.estimate_label)
        lay.addWidget(self.chart)
        self.addTab(est, "Estimate")
        self.pre = read_only_table(BLOCK_HEADERS, stretch=0)
        self.addTab(self.pre, "Preprocessing")
        inter = QWidget()
        ilay = QVBoxLayout(inter)
        self.inter_label = QLabel("")
        self.inter = read_only_table(["Job", "Intermediate versions", "Intermediate size", "Job size"], stretch=0)
        ilay.addWidget(self.inter_label)
        ilay.addWidget(self.inter)
        self.addTab(inter, "Intermediate results")
        self.non_final = read_only_table(BLOCK_HEADERS, stretch=0)
        self.addTab(self.non_final, "Non-final")
        self.killed = read_only_table(BLOCK_HEADERS, stretch=0)
        self.addTab(self.killed, "Killed/Failed")  # by every status; killed and failed have options
        self.jobs = read_only_table(["Job", "Action", "Frees", "Why"], stretch=0)
        self.jobs.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.jobs.horizontalHeader().setSectionResizeMode(3, QHeaderView.ResizeMode.Stretch)
        self.addTab(self.jobs, "Jobs")

    def show_plan(self, plan) -> None:
        tabs = plan.tabs
        est = tabs["estimate"]
        self.values = estimate_values(plan)
        self.estimate_label.setText(
            f"{estimate_text(est)}<br>{est['jobs_cleared']} cleared, "
            f"{est['jobs_intermediate_only']} intermediate only, {est['jobs_deleted']} deleted, "
            f"{est['jobs_skipped']} protected (skipped)")
        if self.bars is not None:
            self.chart.removeItem(self.bars)
        scale, unit = _unit(max(self.values.values(), default=0))
        heights = [self.values[k] / scale for k in ESTIMATE_BARS]
        self.bars = pg.BarGraphItem(x=list(range(4)), height=heights, width=0.6, pen=pg.mkPen(None),
                                    brushes=[pg.mkBrush(c) for c in ESTIMATE_COLOURS])
        self.chart.addItem(self.bars)
        self.chart.setLabel("left", unit)
        self.chart.setXRange(-0.6, 3.6, padding=0)
        self.chart.setYRange(0, max(heights) * 1.1 or 1, padding=0)
        pre = tabs["preprocessing"]
        _fill(self.pre, [_block_row(("☑ " if b.get("selected") else "") + CATEGORY_LABELS.get(k, k), b)
                         for k, b in pre.items()])
        it = tabs["intermediate"]
        self.inter_label.setText(f"{it['jobs_with_intermediate']} job(s) hold {human_bytes(it['intermediate_bytes'])}"
                                 f" of intermediate results ({it['percent_of_jobs_bytes']:.1f}% of job data); "
                                 f"this cleanup frees {human_bytes(it['bytes_freed'])}")
        _fill(self.inter, [(j["uid"], j["versions"], human_bytes(j["intermediate_bytes"]), human_bytes(j["size_bytes"]))
                           for j in it["jobs"]])
        nf = tabs["non_final"]
        _fill(self.non_final, [_block_row(k.replace("_", " "), nf[k]) for k in ("final", "ancestor_of_final", "neither")])
        kf = tabs["killed_failed"]
        rows = []
        for status, b in kf["statuses"].items():  # every status, as the guide's tab shows them
            mode = kf[status]["mode"] if status in ("killed", "failed") else None
            rows.append(_block_row(status + (f" ({'clear' if mode == 'clear' else 'clear and delete'})"
                                             if mode else ""), b))
        _fill(self.killed, rows)
        rows = [(e.uid, e.action.replace("_", " "), human_bytes(e.bytes), "; ".join(e.reasons)) for e in plan.entries]
        rows += [(s.uid, "protected", "", f"{s.option}: {s.reason}") for s in plan.skipped]
        _fill(self.jobs, rows)
