"""The main window's docks: projects and data on the left, inspector (and SSD cache) on the right, running jobs below."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QDockWidget, QFrame, QScrollArea

from .cache_panel import QtCachePanel
from .inspector import QtInspector
from .messages import QtMessageLog
from .project_browser import QtProjectBrowser
from .running_panel import QtRunningJobsPanel

LEFT, RIGHT, BOTTOM = (Qt.DockWidgetArea.LeftDockWidgetArea, Qt.DockWidgetArea.RightDockWidgetArea,
                       Qt.DockWidgetArea.BottomDockWidgetArea)


def build_docks(win) -> None:
    """Create ``win.browser``, ``sidebar``, ``inspector``, ``running``, ``cache_panel`` and ``win.docks`` (by title)."""
    win.browser = QtProjectBrowser()
    win.inspector = QtInspector()
    win.running = QtRunningJobsPanel()
    win.messages = QtMessageLog()
    win.cache_panel = QtCachePanel()
    win.docks = {}
    # At 1024x700 the docks must shrink and scroll, never draw over each other: the sidebar's
    # charts scroll inside their dock, the panels below have small minimum heights.
    sidebar_scroll = QScrollArea()
    sidebar_scroll.setObjectName("sidebarScroll")
    sidebar_scroll.setWidgetResizable(True)
    sidebar_scroll.setFrameShape(QFrame.Shape.NoFrame)
    sidebar_scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    # the sidebar itself (pyqtgraph charts: a third of a second to import) is made just after the
    # tree first shows (QtMainWindow.sidebar), so the tree is on screen sooner
    win.sidebar_scroll = sidebar_scroll
    win.browser.setMinimumHeight(60)
    for name, widget, area in (("Projects", win.browser, LEFT), ("Data", sidebar_scroll, LEFT),
                               ("Inspector", win.inspector, RIGHT), ("Running jobs", win.running, BOTTOM)):
        dock = QDockWidget(name, win)
        dock.setObjectName(f"dock{name.replace(' ', '')}")
        dock.setWidget(widget)
        win.addDockWidget(area, dock)
        win.docks[name] = dock
    # The SSD cache panel shares the right area with the inspector, hidden until asked for
    # (Data ▸ SSD cache…): its figures are computed only while it is visible.
    cache_dock = QDockWidget("SSD cache", win)
    cache_dock.setObjectName("dockSSDcache")
    cache_dock.setWidget(win.cache_panel)
    win.addDockWidget(RIGHT, cache_dock)
    win.tabifyDockWidget(win.docks["Inspector"], cache_dock)
    cache_dock.hide()
    cache_dock.visibilityChanged.connect(lambda on: on and win.cache_panel.refresh())
    win.docks["SSD cache"] = cache_dock
    # messages share the bottom with the running jobs (a tab); a new error brings them forward
    msg_dock = QDockWidget("Messages", win)
    msg_dock.setObjectName("dockMessages")
    msg_dock.setWidget(win.messages)
    win.addDockWidget(BOTTOM, msg_dock)
    win.tabifyDockWidget(win.docks["Running jobs"], msg_dock)
    win.docks["Messages"] = msg_dock
    win.messages.added.connect(lambda level, _t: level == "error" and (msg_dock.show(), msg_dock.raise_()))
    win.docks["Running jobs"].raise_()
    size_docks(win, win.width(), win.height())


def size_docks(win, width: int, height: int) -> None:
    """Dock sizes for a window of ``width`` x ``height``: the tree keeps at least half of the width."""
    side = 300 if width >= 1300 else 240
    right = 340 if width >= 1300 else 260
    win.resizeDocks([win.docks["Projects"], win.docks["Inspector"]], [side, right], Qt.Orientation.Horizontal)
    win.resizeDocks([win.docks["Projects"], win.docks["Data"]], [130, max(200, height - 330)],
                    Qt.Orientation.Vertical)
    win.resizeDocks([win.docks["Running jobs"]], [200 if height >= 850 else 150], Qt.Orientation.Vertical)
