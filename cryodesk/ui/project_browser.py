"""Project / workspace browser (left dock): a tree of projects and workspaces with job counts and sizes."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHeaderView, QMenu, QTreeWidget, QTreeWidgetItem

from ..core.units import human_bytes

ROLE = Qt.ItemDataRole.UserRole
SESSION_ROLE = Qt.ItemDataRole.UserRole + 1  # (project uid, session uid) of a live-session row
#: what a project row says beside its title when it is another program's (issue 16)
KIND_LABELS = {"relion": "RELION", "cryosparc": "CryoSPARC — read-only"}


class QtProjectBrowser(QTreeWidget):
    """Emits ``scope_selected(project_uid, workspace_uid_or_empty)`` when the user picks a row."""

    scope_selected = Signal(str, str)
    #: a live session's row was activated (double-click / Enter): ``(project_uid, session_uid)``
    session_activated = Signal(str, str)
    cleanup_requested = Signal(str, str)
    #: ``extend_menu(menu, project_uid)`` adds the project's actions to a project row's context menu
    extend_menu = None

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.setObjectName("projectBrowser")
        self.setColumnCount(3)
        self.setHeaderLabels(["Project / workspace", "Jobs", "Size"])
        self.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.setRootIsDecorated(True)
        self.rows: list[dict] = []
        self.itemSelectionChanged.connect(self._on_selection)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.itemActivated.connect(self._on_activated)

    @staticmethod
    def _texts(row: dict) -> list[str]:
        state = f"  [{row['state']}]" if row.get("state") else ""  # archived, moving, … (read-only)
        kind = KIND_LABELS.get(row.get("kind", ""), "")  # another program's project (issue 16)
        if kind:
            state = f"  [{kind}]"
        return [f"{row['uid']}  {row['title']}{state}", str(row["jobs"]), human_bytes(row["size_bytes"])]

    @staticmethod
    def _session_texts(row: dict) -> list[str]:
        return [f"{row['uid']}  {row['title']}  [{row['status']}]", "live", human_bytes(row["size_bytes"])]

    @staticmethod
    def _tip(row: dict) -> str:
        kind = KIND_LABELS.get(row.get("kind", ""), "")
        return f"{row['directory']}\n{kind} project" if kind else row["directory"]

    @staticmethod
    def _shape(rows: list[dict]) -> list:
        return [(p["uid"], [w["uid"] for w in p["workspaces"]], [s["uid"] for s in p.get("session_rows", [])])
                for p in rows]

    def set_rows(self, rows: list[dict]) -> None:
        """Fill from :func:`cryodesk.core.projects.project_summaries`, keeping the current row selected.

        When the same projects and workspaces are listed (a change event updated
        counts or sizes), only the texts change: expansion and scrolling stay.
        """
        if self.rows and self._shape(rows) == self._shape(self.rows):
            self.rows = rows
            for i, p in enumerate(rows):
                top = self.topLevelItem(i)
                for item, row in [(top, p)] + [(top.child(k), w) for k, w in enumerate(p["workspaces"])]:
                    for c, text in enumerate(self._texts(row)):
                        item.setText(c, text)
                for k, srow in enumerate(p.get("session_rows", [])):
                    for c, text in enumerate(self._session_texts(srow)):
                        top.child(len(p["workspaces"]) + k).setText(c, text)
                top.setToolTip(0, self._tip(p))
            return
        current = self.current_scope()
        self.blockSignals(True)
        self.clear()
        self.rows = rows
        for p in rows:
            top = QTreeWidgetItem(self._texts(p))
            top.setData(0, ROLE, (p["uid"], ""))
            top.setToolTip(0, self._tip(p))
            for w in p["workspaces"]:
                child = QTreeWidgetItem(self._texts(w))
                child.setData(0, ROLE, (p["uid"], w["uid"]))
                top.addChild(child)
            for srow in p.get("session_rows", []):
                child = QTreeWidgetItem(self._session_texts(srow))
                child.setData(0, ROLE, (p["uid"], ""))  # selecting it shows its project's tree
                child.setData(0, SESSION_ROLE, (p["uid"], srow["uid"]))
                child.setToolTip(0, "Live session: double-click to open it")
                top.addChild(child)
            self.addTopLevelItem(top)
            top.setExpanded(True)
        for c in (1, 2):
            self.resizeColumnToContents(c)
        self.blockSignals(False)
        if current is not None:
            self.select_scope(*current, emit=False)

    def current_scope(self) -> tuple[str, str] | None:
        item = self.currentItem()
        return None if item is None else tuple(item.data(0, ROLE))

    def select_scope(self, project_uid: str, workspace_uid: str = "", emit: bool = True) -> bool:
        for i in range(self.topLevelItemCount()):
            top = self.topLevelItem(i)
            for item in [top] + [top.child(k) for k in range(top.childCount())]:
                if tuple(item.data(0, ROLE)) == (project_uid, workspace_uid or ""):
                    self.blockSignals(not emit)
                    self.setCurrentItem(item)
                    self.blockSignals(False)
                    return True
        return False

    def _on_selection(self) -> None:
        scope = self.current_scope()
        if scope is not None:
            self.scope_selected.emit(*scope)

    def _on_activated(self, item, _column=0) -> None:
        session = item.data(0, SESSION_ROLE)
        if session:
            self.session_activated.emit(*session)

    def _menu(self, pos) -> None:
        item = self.itemAt(pos)
        if item is None:
            return
        menu = QMenu(self)
        session = item.data(0, SESSION_ROLE)
        if session:
            menu.addAction("Open live session…").triggered.connect(lambda: self.session_activated.emit(*session))
        act = menu.addAction("Cleanup Data…")
        act.triggered.connect(lambda: self.cleanup_requested.emit(*item.data(0, ROLE)))
        if self.extend_menu is not None and not item.data(0, ROLE)[1] and not session:
            self.extend_menu(menu, item.data(0, ROLE)[0])
        menu.exec(self.viewport().mapToGlobal(pos))
