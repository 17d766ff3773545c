"""The project's lifecycle actions in the app: archive, unarchive, detach, move, delete; reduce database size.

The same services as ``cryodesk project archive|unarchive|detach|move|delete``
and ``cryodesk db compact`` (:mod:`cryodesk.core.project_lifecycle`,
:mod:`cryodesk.core.project_move`, :mod:`cryodesk.core.compact`).  Each asks
first — a move and a delete show their plan (what is copied or removed, the
final results a delete takes with it) — and runs off the GUI thread, with its
progress in the running-jobs panel.  Refusals ("P1 is archived", "owned by
another database", a job still running) end in one refusal dialog.

Installed by :func:`install` into a *Project* menu and the project browser's
context menu; the directory to move to (or to unarchive from) is asked with
:attr:`ProjectActions.ask_directory`, which tests replace.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction
from PySide6.QtWidgets import QCheckBox, QFileDialog, QMenu

from ..base.errors import CryodeskError, Refused
from ..core import attach, compact, ownership, project_lifecycle, project_move, projects
from ..core.results import Outcome
from ..core.units import human_bytes
from ..engine import workers
from .dialogs import OneDialog, QtConfirmDialog, QtRefusalDialog


def _ask_directory(parent, title: str, start: str) -> str | None:
    path = QFileDialog.getExistingDirectory(parent, title, start)
    return path or None


class ProjectActions(OneDialog, QObject):
    """Owns the project actions of ``host`` (the main window); ``uid`` of the project they act on."""

    changed = Signal()  # the list of projects changed: the host refreshes its browser
    message = Signal(str)

    def __init__(self, host) -> None:
        super().__init__(host)
        self.host = host
        self.dialog = None  # the dialog open now (tests drive it)
        self.pending = None  # the worker in flight
        self.ask_directory = lambda title, start: _ask_directory(host, title, start)
        self.target: str | None = None  # set by the context menu; else the project shown
        a = self._action
        self.archive = a("&Archive project…", self.do_archive,
                         "Make the project read-only; its directory may then be moved to long-term storage")
        self.unarchive = a("&Unarchive project…", self.do_unarchive, "Make an archived project writable again")
        self.move = a("&Move project…", self.do_move, "Move the project directory (copy and verify across disks)")
        self.detach = a("De&tach project…", self.do_detach,
                        "Remove the project from this database; its directory stays and can be attached again")
        self.delete = a("&Delete project…", self.do_delete, "Delete the project and its directory")
        self.compact = a("Reduce database &size…", self.do_compact,
                         "Prune old change-log rows and orphans, then VACUUM the database")
        self.attach = a("Attac&h project directory…", self.do_attach,
                        "Add a project directory (from its manifests) to this database")

    def _action(self, text, slot, tip: str) -> QAction:
        act = QAction(text, self)
        act.setStatusTip(tip)
        act.setToolTip(tip)
        act.triggered.connect(lambda _=False: slot())
        return act

    # -- menus ------------------------------------------------------------------------
    def populate_menu(self, menu: QMenu, with_compact: bool = True) -> None:
        for act in (self.attach, None, self.archive, self.unarchive, self.move, None, self.detach, self.delete):
            menu.addSeparator() if act is None else menu.addAction(act)
        if with_compact:
            menu.addSeparator()
            menu.addAction(self.compact)
        menu.aboutToShow.connect(lambda: self.update_enabled(None))

    def extend_context_menu(self, menu: QMenu, project_uid: str) -> None:
        """The browser's context menu of a project row."""
        menu.addSeparator()
        sub = menu.addMenu("Project")
        self.update_enabled(project_uid)
        for act in (self.archive, self.unarchive, self.move, self.detach, self.delete):
            sub.addAction(act)

    def _row(self, uid: str | None) -> dict | None:
        for row in getattr(self.host.browser, "rows", []):
            if row["uid"] == uid:
                return row
        return None

    def update_enabled(self, project_uid: str | None) -> None:
        self.target = project_uid
        row = self._row(self.uid())
        state = (row or {}).get("state", "")
        for act in (self.archive, self.move, self.detach, self.delete, self.unarchive):
            act.setEnabled(row is not None)
        if row is not None:
            self.archive.setEnabled(state == "")
            self.unarchive.setEnabled(state == "archived")
            self.delete.setEnabled(state == "")

    def uid(self) -> str | None:
        return self.target or self.host.project_uid

    # -- plumbing ----------------------------------------------------------------------
    def _failed(self, exc) -> None:
        self.pending = None
        self.message.emit(f"Failed: {exc}")
        self._show(QtRefusalDialog("changed", [Outcome("—", "project", False, str(exc))], self.host))

    def _confirm(self, title: str, text: str, ok: str, then, extra=None) -> None:
        dialog = QtConfirmDialog(title, text, (), ok, self.host)
        if extra is not None:
            dialog.layout().insertWidget(1, extra)
        dialog.accepted.connect(then)
        self._show(dialog)

    def _run(self, title: str, fn, done, progress: bool = False) -> None:
        """``fn(report)`` in a worker; its progress as a task of the running-jobs panel."""
        task = self.host.running.add_task(title) if progress else None

        def finished(result) -> None:
            self.pending = None
            if task is not None:
                self.host.running.finish_task(task)
            done(result)
            self.changed.emit()

        def failed(exc) -> None:
            if task is not None:
                self.host.running.finish_task(task)
            self._failed(exc)

        self.pending = workers.submit(lambda: fn(task.report if task is not None else None),
                                      on_done=finished, on_error=failed, context=self)

    # -- the actions ---------------------------------------------------------------------
    def do_archive(self) -> None:
        uid = self.uid()
        if uid is None:
            return
        self._confirm(f"Archive {uid}", f"Archive {uid}? It becomes read-only: it can still be browsed, measured "
                      "and exported, but nothing in it can be changed until it is unarchived. Its directory may "
                      "then be moved to long-term storage.", f"Archive {uid}",
                      lambda: self._run(f"Archive {uid}", lambda _r: project_lifecycle.archive_project(uid),
                                        lambda p: self.message.emit(f"{p.uid} archived")))

    def do_unarchive(self) -> None:
        uid = self.uid()
        if uid is None:
            return
        p = projects.get_project(uid)
        path = None
        if not (Path(p.directory) / "project.json").is_file():
            path = self.ask_directory(f"Where is the directory of {uid} now?", str(Path(p.directory).parent))
            if not path:
                return
        self._run(f"Unarchive {uid}", lambda _r: project_lifecycle.unarchive_project(uid, path),
                  lambda q: self.message.emit(f"{q.uid} is writable again, at {q.directory}"))

    def do_attach(self, directory: str | None = None, force: bool = False) -> None:
        path = directory or self.ask_directory("Attach which project directory?", str(Path.home()))
        if not path:
            return

        def attach_it():
            try:
                return attach.attach_project(path, force=force)
            except ownership.NotOwned as exc:
                if force:
                    raise
                return exc

        def done(result) -> None:
            if isinstance(result, ownership.NotOwned):  # another database's: taking it over is a visible choice
                self._confirm("Take over the project?", f"{result}\n\nTake it over? That database can then no "
                              "longer change it.", "Take it over", lambda: self.do_attach(path, force=True))
            else:
                self.message.emit(f"attached {result.directory} as {result.uid}")

        self._run(f"Attach {path}", lambda _r: attach_it(), done)

    def do_detach(self) -> None:
        uid = self.uid()
        if uid is None:
            return
        p = projects.get_project(uid)
        self._confirm(f"Detach {uid}", f"Detach {uid} from this database? Its manifests are written and its lock "
                      f"removed; no file is deleted. It can be attached again (here or to another database) "
                      f"from {p.directory}.", f"Detach {uid}",
                      lambda: self._run(f"Detach {uid}", lambda _r: project_lifecycle.detach_project(uid),
                                        lambda out: self.message.emit(f"{uid} detached")))

    def do_move(self) -> None:
        uid = self.uid()
        if uid is None:
            return
        p = projects.get_project(uid)
        parent = self.ask_directory(f"Move {uid} into which directory?", str(Path(p.directory).parent))
        if not parent:
            return
        dest = Path(parent) / Path(p.directory).name

        def confirm(plan) -> None:
            self.pending = None
            if plan.problems:
                self._failed(CryodeskError("; ".join(plan.problems)))
                return
            how = {"rename": "a rename (the same file system)",
                   "copy": "a copy, verified, then the old copy is removed (another file system)",
                   "rebind": "already there: only the database is changed"}[plan.mode]
            stale = len(plan.escaping_links) + len(plan.inside_links)
            warn = (f"\n\n{stale} symlink(s) (relative ones leaving the project, absolute ones into it) will "
                    "point elsewhere afterwards." if stale else "")
            self._confirm(f"Move {uid}", f"Move {uid} ({plan.files} files, {human_bytes(plan.bytes)}, "
                          f"{plan.links} symlinks moved as links) to {dest}? This is {how}.{warn}", f"Move {uid}",
                          lambda: self._run(f"Move {uid} to {dest}",
                                            lambda report: project_move.move_project(uid, dest, progress=report),
                                            lambda out: self.message.emit(f"{uid} moved to {out['dest']} in "
                                                                          f"{out['seconds']:.1f} s"),
                                            progress=True))

        self.pending = workers.submit(lambda: project_move.plan_move(uid, dest), on_done=confirm,
                                      on_error=self._failed, context=self)

    def do_delete(self, include_finals: bool = False) -> None:
        uid = self.uid()
        if uid is None:
            return

        def plan():
            try:
                return project_lifecycle.plan_delete(uid, include_finals=include_finals)
            except Refused as exc:
                if "final results" in str(exc) and not include_finals:
                    return exc
                raise

        self.pending = workers.submit(plan, on_done=lambda p: self._confirm_delete(uid, p),
                                      on_error=self._failed, context=self)

    def _confirm_delete(self, uid: str, plan) -> None:
        self.pending = None
        if isinstance(plan, Refused):  # it has finals: deleting them too is a choice made here, visibly
            box = QCheckBox("Delete its final results too")
            box.setObjectName("includeFinals")
            self._confirm(f"Delete {uid}", f"{plan}", "Plan again", lambda: box.isChecked() and self.do_delete(True),
                          extra=box)
            return
        finals = f"\n\nFinal results deleted with it: {', '.join(plan.finals)}." if plan.finals else ""
        self._confirm(f"Delete {uid}", f"Permanently delete {uid} and its directory {plan.directory}? "
                      f"{len(plan.plan.items)} job(s), {len(plan.sessions)} session(s): frees "
                      f"{human_bytes(plan.bytes)}. Symlinks ({plan.links}) are removed as links; their targets "
                      f"are never touched.{finals}", f"Delete {human_bytes(plan.bytes)}",
                      lambda: self._run(f"Delete {uid}",
                                        lambda report: project_lifecycle.execute_delete(uid, plan, progress=report),
                                        lambda out: self._deleted(uid, out), progress=True))

    def _deleted(self, uid: str, out: dict) -> None:
        if out["deleted"]:
            self.message.emit(f"{uid} deleted: freed {human_bytes(out['bytes'])}")
        else:
            self._show(QtRefusalDialog("deleted", [Outcome(uid, "delete", False, e) for e in out["errors"]],
                                       self.host))

    def do_compact(self) -> None:
        def confirm(dry) -> None:
            self.pending = None
            pruned = dry["pruned"]
            self._confirm("Reduce database size",
                          f"The database ({dry['backend']}) takes {human_bytes(dry['before_bytes'])}. Prune "
                          f"{pruned['change']} old change-log row(s) and {pruned['applied_item']} finished journal "
                          "row(s), remove orphaned rows, then give the free space back (VACUUM)?", "Compact",
                          lambda: self._run("Reduce database size", lambda _r: compact.compact_database(),
                                            lambda out: self.message.emit(
                                                f"Database: {human_bytes(out['before_bytes'])} → "
                                                f"{human_bytes(out['after_bytes'])}")))

        self.pending = workers.submit(lambda: compact.compact_database(dry_run=True), on_done=confirm,
                                      on_error=self._failed, context=self)


def install(win, menu: QMenu) -> ProjectActions:
    """Create ``win.project_actions``: the *Project* menu ``menu`` and the browser's context menu entries."""
    actions = ProjectActions(win)
    actions.populate_menu(menu)
    actions.changed.connect(win.refresh_browser)
    actions.message.connect(lambda m: win.statusBar().showMessage(m, 8000))
    win.browser.extend_menu = actions.extend_context_menu
    win.project_actions = actions
    return actions
