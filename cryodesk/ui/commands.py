"""Undoable edits, one QUndoCommand per edit: final flags, link / unlink / move, parameters.

Each command calls the same core service as the CLI in ``redo`` and the
inverse service in ``undo``.  The window shows the result through the change
events those services record; ``on_change`` (the change watcher's ``poke``)
only makes it look at once.  A command that changed nothing (everything was
refused) marks itself obsolete so it never lands on the stack.
"""

from __future__ import annotations

from PySide6.QtGui import QUndoCommand

from ..base.errors import CryodeskError
from ..core import actions, finals, jobs
from ..engine import workers


def _changed(result) -> list[str]:
    return [o.uid for o in result.outcomes if o.ok and "already" not in o.message]


class _Command(QUndoCommand):
    def __init__(self, text: str, project: str, uids: list[str], on_change=None) -> None:
        super().__init__(text)
        self.project, self.uids, self.on_change = project, list(uids), on_change
        self.result = None

    def _jobs(self, uids):
        return jobs.get_jobs(self.project, uids)

    def _notify(self) -> None:
        if self.on_change is not None:
            self.on_change()


class SetFinalCommand(_Command):
    """Mark (``final=True``) or unmark jobs as final results."""

    def __init__(self, project, uids, final: bool, on_change=None) -> None:
        super().__init__(f"{'Mark' if final else 'Unmark'} {len(uids)} job(s) final", project, uids, on_change)
        self.final = final
        self.touched: list[str] | None = None

    def redo(self) -> None:
        before = {j.uid: bool(j.is_final) for j in self._jobs(self.uids)}
        todo = self.uids if self.touched is None else self.touched
        self.result = finals.set_final(self.project, self._jobs(todo), self.final, write_manifests=False)
        _write_manifests_later(self.project, self.result.changed_ids)
        if self.touched is None:
            self.touched = [o.uid for o in self.result.outcomes if o.ok and before[o.uid] != self.final]
            self.setObsolete(not self.touched)
        self._notify()

    def undo(self) -> None:
        result = finals.set_final(self.project, self._jobs(self.touched), not self.final, write_manifests=False)
        _write_manifests_later(self.project, result.changed_ids)
        self._notify()


def _write_manifests_later(project, ids) -> None:
    """The flags are in the database now; their job.json copies are rewritten in a worker."""
    if ids:
        workers.submit(finals.write_manifests, project, ids)


class LinkCommand(_Command):
    def __init__(self, project, uids, workspace: str, on_change=None) -> None:
        super().__init__(f"Link {len(uids)} job(s) to {workspace}", project, uids, on_change)
        self.workspace = workspace
        self.touched: list[str] | None = None

    def redo(self) -> None:
        todo = self.uids if self.touched is None else self.touched
        self.result = actions.link(self.project, self._jobs(todo), self.workspace)
        if self.touched is None:
            self.touched = _changed(self.result)
            self.setObsolete(not self.touched)
        self._notify()

    def undo(self) -> None:
        actions.unlink(self.project, self._jobs(self.touched), self.workspace)
        self._notify()


class UnlinkCommand(_Command):
    def __init__(self, project, uids, workspace: str, on_change=None) -> None:
        super().__init__(f"Unlink {len(uids)} job(s) from {workspace}", project, uids, on_change)
        self.workspace = workspace
        self.touched: list[str] | None = None

    def redo(self) -> None:
        todo = self.uids if self.touched is None else self.touched
        self.result = actions.unlink(self.project, self._jobs(todo), self.workspace)
        if self.touched is None:
            self.touched = _changed(self.result)
            self.setObsolete(not self.touched)
        self._notify()

    def undo(self) -> None:
        actions.link(self.project, self._jobs(self.touched), self.workspace)
        self._notify()


class MoveCommand(_Command):
    """Move jobs to one workspace; undo restores each job's previous workspaces."""

    def __init__(self, project, uids, workspace: str, on_change=None) -> None:
        super().__init__(f"Move {len(uids)} job(s) to {workspace}", project, uids, on_change)
        self.workspace = workspace
        self.before: dict[str, list[str]] = {}

    def redo(self) -> None:
        if not self.before:
            descs = jobs.describe_jobs(self.project, self._jobs(self.uids))
            self.before = {d["uid"]: d["workspaces"] for d in descs}
        self.result = actions.move(self.project, self._jobs(self.uids), self.workspace)
        self.setObsolete(not any(o.ok for o in self.result.outcomes))
        self._notify()

    def undo(self) -> None:
        for uid, spaces in self.before.items():
            for ws in spaces:
                actions.link(self.project, self._jobs([uid]), ws)
            if self.workspace not in spaces:
                actions.unlink(self.project, self._jobs([uid]), self.workspace)
        self._notify()


class SetParamCommand(_Command):
    def __init__(self, project, uid: str, key: str, old, new, on_change=None) -> None:
        super().__init__(f"Set {uid} {key} = {new}", project, [uid], on_change)
        self.key, self.old, self.new = key, old, new
        self.error: CryodeskError | None = None

    def redo(self) -> None:
        try:
            jobs.set_params(self.project, self.uids[0], {self.key: self.new})
        except CryodeskError as exc:  # refused or bad value: nothing changed, nothing to undo
            self.error = exc
            self.setObsolete(True)
        self._notify()

    def undo(self) -> None:
        jobs.set_params(self.project, self.uids[0], {self.key: self.old})
        self._notify()
