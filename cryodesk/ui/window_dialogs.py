"""What the main window opens from its menus: New project / workspace, the job builder, the settings
dialogs, and Undo / Redo that say when a step cannot apply (a mixin of :class:`QtMainWindow`)."""

from __future__ import annotations

from ..base.errors import CryodeskError


class WindowDialogs:
    """Methods of the main window (``self`` is a :class:`~cryodesk.ui.main_window.QtMainWindow`)."""

    # -- creating things ------------------------------------------------------------------
    def _dialog(self, dialog):
        """Keep ``dialog`` as ``self.dialog`` (tests drive it) and open it window-modal."""
        if self.dialog is not None:
            self.dialog.deleteLater()
        self.dialog = dialog
        dialog.open()
        return dialog

    def open_new_project(self):
        """File ▸ New project…"""
        from .create_dialogs import QtNewProjectDialog

        dialog = QtNewProjectDialog(self)
        dialog.created.connect(self._created_scope)
        return self._dialog(dialog)

    def open_new_workspace(self):
        """File ▸ New workspace… (in the current project)."""
        from .create_dialogs import QtNewWorkspaceDialog

        dialog = QtNewWorkspaceDialog(self.browser.rows, self.project_uid, self)
        dialog.created.connect(self._created_scope)
        return self._dialog(dialog)

    def _created_scope(self, project_uid: str, workspace_uid: str) -> None:
        self.refresh_browser()
        self.browser.select_scope(project_uid, workspace_uid)
        self.statusBar().showMessage(f"Created {project_uid}/{workspace_uid}", 8000)

    def open_builder(self, type_name: str | None = None, preset_inputs=()):
        """Job ▸ New job… (Ctrl+B): the job builder for the current workspace."""
        from ..engine import ensure_job_types
        from .builder_dialog import QtJobBuilder

        ensure_job_types()  # (already loaded but in the first second after start)
        if self.project_uid is None:
            self.report("No project is open", "Create or open a project first (File ▸ New project…)", dialog=True)
            return None
        if self.builder is not None:
            self.builder.deleteLater()
        self.builder = QtJobBuilder(self, self.project_uid, self.workspace_uid or self._first_workspace(), type_name,
                                    preset_inputs)
        self.builder.created.connect(self._job_built)
        self.builder.show()  # not modal: cards can be dragged from the tree onto its inputs
        return self.builder

    def _first_workspace(self) -> str | None:
        spaces = self.workspaces()
        return spaces[0][0] if spaces else None

    def _job_built(self, project_uid: str, uid: str, lane: str) -> None:
        self._select_after_load = uid
        self.watcher.poke()
        if lane == "app":
            self.jobs.do_queue([uid])
        elif lane == "worker":
            outcome = self.bridge.queue_for_worker(project_uid, [uid])
            if outcome.get("refused"):
                self.report(f"{uid} was not queued", "; ".join(outcome["refused"]), dialog=True)
            else:
                self.statusBar().showMessage(f"{uid} queued for a background worker (process "
                                             f"{outcome.get('worker_pid')})", 8000)
        else:
            self.statusBar().showMessage(f"Created {uid} (building): queue it when it is ready", 8000)

    def open_project_settings(self, project_uid: str | None = None):
        """File ▸ Project settings…"""
        from .settings_dialogs import QtProjectSettingsDialog

        project_uid = project_uid or self.project_uid
        if project_uid is None:
            return None
        dialog = QtProjectSettingsDialog(project_uid, self)
        dialog.saved.connect(lambda names: self._settings_saved(names))
        return self._dialog(dialog)

    def open_cache_settings(self):
        """Data ▸ SSD cache settings… (this workstation)."""
        from .settings_dialogs import QtCacheSettingsDialog

        dialog = QtCacheSettingsDialog(self)
        dialog.saved.connect(lambda names: (self._settings_saved(names),
                                            self.cache_panel.isVisible() and self.cache_panel.refresh()))
        return self._dialog(dialog)

    def _settings_saved(self, names) -> None:
        self.statusBar().showMessage(f"Saved: {', '.join(names)}", 8000)
        self._on_selection()  # the inspector shows the values that win now

    # -- undo / redo that say when they cannot apply -------------------------------------------
    def undo(self) -> None:
        self._step(self.undo_stack.undo, self.undo_stack.index() - 1, "undone")

    def redo(self) -> None:
        self._step(self.undo_stack.redo, self.undo_stack.index(), "redone")

    def _step(self, fn, index: int, verb: str) -> None:
        cmd = self.undo_stack.command(index) if 0 <= index < self.undo_stack.count() else None
        if cmd is None:
            return
        try:
            fn()
        except CryodeskError as exc:
            self.report(f"“{cmd.text()}” could not be {verb}", str(exc), dialog=True)
            return
        failure = getattr(cmd, "failure", None)
        if failure:
            self.report(f"“{cmd.text()}” could not be {verb}", failure, dialog=True)

