"""Colours of the job tree: status, size heat map and category, plus badge colours.

Semantic colours (status, badges) are fixed so they mean the same thing in
light and dark mode; text and background come from the application palette,
which Qt keeps in step with the system colour scheme.
"""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor, QGuiApplication, QPalette

from ..core import registry
from ..db import JOB_STATUSES

STATUS_COLOURS = {
    "building": "#9aa0a6", "queued": "#8ab4f8", "launched": "#8ab4f8", "started": "#4f8ff7",
    "running": "#1a73e8", "waiting": "#a142f4", "completed": "#34a853", "killed": "#fa7b17",
    "failed": "#d93025",
}
FINAL_COLOUR = "#f2b705"  # gold: the final result
ANCESTOR_COLOUR = "#00a3bf"  # teal: ancestor of a final result
SELECTION_COLOUR = "#ff2d95"
LINKED_COLOUR = "#7e57c2"
CATEGORY_COLOURS = ["#5e35b1", "#1e88e5", "#00897b", "#7cb342", "#fdd835", "#fb8c00", "#e53935",
                    "#d81b60", "#8e24aa", "#6d4c41"]
HEAT_COLOURS = ["#313695", "#4575b4", "#74add1", "#abd9e9", "#fee090", "#fdae61", "#f46d43", "#d73027"]
COLOUR_MODES = ("status", "size", "category")


def is_dark() -> bool:
    pal = QGuiApplication.palette()
    return pal.color(QPalette.ColorRole.Window).lightness() < 128


#: notice backgrounds and text, light and dark (warnings: amber; errors: red; info: blue)
_NOTICE = {"warning": (("#fef7e0", "#5f4b00"), ("#3d3413", "#fde293")),
           "error": (("#fce8e6", "#a50e0e"), ("#3c1f1f", "#f6aea9")),
           "info": (("#e8f0fe", "#174ea6"), ("#1c2b41", "#aecbfa"))}


def notice_colours(kind: str = "warning") -> tuple[str, str]:
    """``(background, text)`` of a notice of ``kind`` that reads in the current light or dark mode."""
    light, dark = _NOTICE[kind]
    return dark if is_dark() else light


def notice_stylesheet(kind: str = "warning", widget: str = "QLabel") -> str:
    """A style sheet for a notice (``widget`` is the class it applies to: QLabel, QFrame)."""
    bg, fg = notice_colours(kind)
    return f"{widget} {{ background: {bg}; color: {fg}; border-radius: 4px; padding: 6px; }}"


def chart_colours() -> dict[str, str]:
    """Background, axis and text colours of the sidebar's charts in the current mode."""
    if is_dark():
        return {"background": "#202124", "axis": "#9aa0a6", "text": "#e8eaed"}
    return {"background": "#ffffff", "axis": "#5f6368", "text": "#202124"}


def themed_palette(theme: str) -> QPalette:
    """A light or dark palette for the Fusion style (``cryodesk gui --theme``), whatever the desktop's."""
    from PySide6.QtWidgets import QStyleFactory

    base = QStyleFactory.create("Fusion").standardPalette()
    if theme == "light":
        return base
    roles = QPalette.ColorRole
    dark = {roles.Window: "#202124", roles.WindowText: "#e8eaed", roles.Base: "#17181a",
            roles.AlternateBase: "#26282b", roles.ToolTipBase: "#303134", roles.ToolTipText: "#e8eaed",
            roles.Text: "#e8eaed", roles.Button: "#303134", roles.ButtonText: "#e8eaed",
            roles.BrightText: "#ffffff", roles.Highlight: "#1a73e8", roles.HighlightedText: "#ffffff",
            roles.Link: "#8ab4f8", roles.PlaceholderText: "#9aa0a6", roles.Mid: "#3c4043",
            roles.Dark: "#17181a", roles.Light: "#5f6368", roles.Midlight: "#44474a", roles.Shadow: "#000000"}
    pal = QPalette(base)
    for role, colour in dark.items():
        pal.setColor(role, QColor(colour))
    for role in (roles.WindowText, roles.Text, roles.ButtonText):
        pal.setColor(QPalette.ColorGroup.Disabled, role, QColor("#80868b"))
    return pal


def link_colour() -> str:
    """Text colour of a link (readable on light and dark backgrounds)."""
    return "#8ab4f8" if is_dark() else "#1a73e8"


def ghost_fill() -> str:
    """Fill of a ghost card (a parent that lives in another workspace): a faint tint of the background."""
    return "#26282b" if is_dark() else "#f1f3f4"


def colour_groups(snap, mode: str) -> tuple[np.ndarray, list[QColor]]:
    """Per-job colour index and the colour table for ``mode`` (status, size or category)."""
    if mode == "status":
        table = [QColor(STATUS_COLOURS[s]) for s in JOB_STATUSES]
        return snap.status.astype(np.int64), table
    if mode == "size":
        table = [QColor(c) for c in HEAT_COLOURS]
        if len(snap) == 0:
            return np.zeros(0, dtype=np.int64), table
        logs = np.log10(np.maximum(snap.size, 1).astype(float))
        lo, hi = float(logs.min()), float(logs.max())
        span = max(hi - lo, 1e-9)
        idx = np.clip(((logs - lo) / span * len(table)).astype(np.int64), 0, len(table) - 1)
        return idx, table
    if mode == "category":
        table = [QColor(c) for c in CATEGORY_COLOURS[: len(registry.CATEGORIES)]] + [QColor("#9e9e9e")]
        idx = snap.category.astype(np.int64)
        return np.where(idx < 0, len(table) - 1, idx), table
    raise ValueError(f"unknown colour mode {mode!r}")
