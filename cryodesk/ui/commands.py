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
    """Base: ``failure`` says why the last undo or redo could not (fully) apply; the window shows it
    (an exception cannot leave a Qt virtual call, so the command keeps it)."""

    def __init__(self, text: str, project: str, uids: list[str], on_change=None) -> None:
        super().__init__(text)
        self.project, self.uids, self.on_change = project, list(uids), on_change
        self.result = None
        self.failure: str | None = None

    def _refusals(self, result) -> None:
        refused = list(getattr(result, "refused", []) or [])
        self.failure = "; ".join(f"{o.uid}: {o.message}" for o in refused) or None

    def _guarded(self, fn) -> None:
        self.failure = None
        try:
            fn()
        except CryodeskError as exc:
            self.failure = str(exc)
        self._notify()

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
        self._guarded(self._redo)

    def _redo(self) -> None:
        before = {j.uid: bool(j.is_final) for j in self._jobs(self.uids)}
        todo = self.uids if self.touched is None else self.touched
        self.result = finals.set_final(self.project, self._jobs(todo), self.final, write_manifests=False)
        _write_manifests_later(self.project, self.result.changed_ids)
        if self.touched is None:
            self.touched = [o.uid for o in self.result.outcomes if o.ok and before[o.uid] != self.final]
            self.setObsolete(not self.touched)
        else:  # a redo: the world may have changed since (a job cleared, deleted, ...)
            self._refusals(self.result)

    def undo(self) -> None:
        def run():
            result = finals.set_final(self.project, self._jobs(self.touched), not self.final, write_manifests=False)
            _write_manifests_later(self.project, result.changed_ids)
            self._refusals(result)

        self._guarded(run)


def _write_manifests_later(project, ids) -> None:
    """The flags are in the database now; their job.json copies are rewritten in a worker."""
    if ids:
        workers.submit(finals.write_manifests, project, ids)


class _MembershipCommand(_Command):
    """Link or unlink jobs to a workspace; undo does the opposite to the jobs it changed."""

    title = ""

    def __init__(self, project, uids, workspace: str, on_change=None) -> None:
        super().__init__(self.title.format(n=len(uids), ws=workspace), project, uids, on_change)
        self.workspace = workspace
        self.touched: list[str] | None = None

    def _do(self, uids):
        raise NotImplementedError

    def _undo(self, uids):
        raise NotImplementedError

    def redo(self) -> None:
        def run():
            todo = self.uids if self.touched is None else self.touched
            self.result = self._do(self._jobs(todo))
            if self.touched is None:
                self.touched = _changed(self.result)
                self.setObsolete(not self.touched)
            else:
                self._refusals(self.result)

        self._guarded(run)

    def undo(self) -> None:
        self._guarded(lambda: self._refusals(self._undo(self._jobs(self.touched))))


class LinkCommand(_MembershipCommand):
    title = "Link {n} job(s) to {ws}"

    def _do(self, jobs):
        return actions.link(self.project, jobs, self.workspace)

    def _undo(self, jobs):
        return actions.unlink(self.project, jobs, self.workspace)


class UnlinkCommand(LinkCommand):
    title = "Unlink {n} job(s) from {ws}"
    _do, _undo = LinkCommand._undo, LinkCommand._do


class MoveCommand(_Command):
    """Move jobs to one workspace; undo restores each job's previous workspaces."""

    def __init__(self, project, uids, workspace: str, on_change=None) -> None:
        super().__init__(f"Move {len(uids)} job(s) to {workspace}", project, uids, on_change)
        self.workspace = workspace
        self.before: dict[str, list[str]] = {}

    def redo(self) -> None:
        def run():
            first = not self.before
            if first:
                descs = jobs.describe_jobs(self.project, self._jobs(self.uids))
                self.before = {d["uid"]: d["workspaces"] for d in descs}
            self.result = actions.move(self.project, self._jobs(self.uids), self.workspace)
            if first:
                self.setObsolete(not any(o.ok for o in self.result.outcomes))
            else:
                self._refusals(self.result)

        self._guarded(run)

    def undo(self) -> None:
        def run():
            for uid, spaces in self.before.items():
                for ws in spaces:
                    actions.link(self.project, self._jobs([uid]), ws)
                if self.workspace not in spaces:
                    actions.unlink(self.project, self._jobs([uid]), self.workspace)

        self._guarded(run)


class SetParamCommand(_Command):
    def __init__(self, project, uid: str, key: str, old, new, on_change=None) -> None:
        super().__init__(f"Set {uid} {key} = {new}", project, [uid], on_change)
        self.key, self.old, self.new = key, old, new
        self.error: CryodeskError | None = None
        self.done_once = False

    def redo(self) -> None:
        self.failure = None
        try:
            jobs.set_params(self.project, self.uids[0], {self.key: self.new})
        except CryodeskError as exc:
            if self.done_once:  # a redo the world no longer allows: it stays on the stack, and says so
                self.failure = str(exc)
            else:  # refused or bad value on the first try: nothing changed, nothing to undo
                self.error = exc
                self.setObsolete(True)
        self.done_once = True
        self._notify()

    def undo(self) -> None:
        self._guarded(lambda: jobs.set_params(self.project, self.uids[0], {self.key: self.old}))


class SetJobSettingCommand(_Command):
    """Set (or, with ``value=None``, unset) a job's own value of a setting; undo restores the old one."""

    def __init__(self, project, uid: str, name: str, old, value, on_change=None) -> None:
        text = f"{'Unset' if value is None else 'Set'} {uid} {name}" + ("" if value is None else f" = {value}")
        super().__init__(text, project, [uid], on_change)
        self.name, self.old, self.value = name, old, value
        self.error: CryodeskError | None = None
        self.done_once = False

    def _apply(self, value) -> None:
        from ..core import settings_service

        if value is None:
            settings_service.unset_setting("job", self.name, project=self.project, job=self.uids[0])
        else:
            settings_service.set_setting("job", self.name, value, project=self.project, job=self.uids[0])

    def redo(self) -> None:
        self.failure = None
        try:
            self._apply(self.value)
        except CryodeskError as exc:
            if self.done_once:
                self.failure = str(exc)
            else:
                self.error = exc
                self.setObsolete(True)
        self.done_once = True
        self._notify()

    def undo(self) -> None:
        self._guarded(lambda: self._apply(self.old))
