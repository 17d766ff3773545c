"""Job actions shared by the menu bar, the toolbar and the tree's context menu.

Selection helpers (chain / ancestors / descendants) ask core.graph; batch
actions call core.actions / core.finals, through undo commands where the edit
is reversible.  Destructive actions are planned off the GUI thread, confirmed
with the bytes they free, then executed off the GUI thread with progress in the
running-jobs panel.  Refusals always end in one :class:`QtRefusalDialog`.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMenu

from ..base.errors import CryodeskError
from ..core import actions, availability, builder, graph, jobs
from ..core.explain import explain
from ..core.units import human_bytes
from ..engine import workers
from .commands import LinkCommand, MoveCommand, SetFinalCommand, UnlinkCommand
from .dialogs import OneDialog, QtConfirmDialog, QtRefusalDialog


class JobActions(OneDialog, QObject):
    """Owns the QActions on the job selection of ``host`` (the main window)."""

    changed = Signal()  # this window edited the database: the change watcher looks now
    message = Signal(str)
    error = Signal(str, str)  # what failed, the cause in words: the window keeps it and shows it
    next_step = Signal(str, str, object)  # job type, parent uid, builder.InputChoice: open the builder
    warmed = Signal(object)  # a job's particles were copied to the SSD cache: the stats

    def __init__(self, host) -> None:
        super().__init__(host)
        self.host = host
        self.dialog = None  # the dialog currently open (tests drive it)
        self.pending = None  # the worker of the plan/run in flight
        a = self._action
        self.select_chain = a("Select job &chain", self.do_select_chain, tip="Select every job between the two selected jobs")
        self.select_ancestors = a("Select &ancestors", self.do_select_ancestors)
        self.select_descendants = a("Select &descendants", self.do_select_descendants)
        self.mark_final = a("Mark as &final", lambda: self.do_set_final(True), "Ctrl+Shift+F")
        self.unmark_final = a("&Unmark final", lambda: self.do_set_final(False))
        self.clear = a("C&lear…", self.do_clear)
        self.delete = a("&Delete…", self.do_delete, QKeySequence.StandardKey.Delete)
        self.mark_complete = a("Mark as &complete", self.do_mark_complete)
        self.clone = a("Clo&ne (chain) into this workspace", self.do_clone)
        self.warm = a("Cache particles on &SSD", self.do_warm,
                      tip="Copy the selected jobs' particle outputs to this worker's SSD cache now")
        self.run = a("&Run", lambda: self.do_queue(), "Ctrl+R",
                     tip="Queue the selected jobs; they start in dependency order")
        self.queue = a("&Queue", lambda: self.do_queue(), tip="Queue the selected jobs behind the running ones")
        self.run_on_lane = a("Run on &lane…", lambda: self.do_run_on_lane(),
                             tip="Run the selected jobs on a lane: this app, another workstation or a SLURM cluster")
        self.rerun = a("Re-run c&leared", self.do_rerun, tip="Run cleared jobs again to regenerate their outputs")
        self.clear_intermediate = a("Clear &intermediate results…", self.do_clear_intermediate,
                                    tip="Keep only the last version of each output (and versions other jobs read) "
                                        "of the selected jobs, or of the whole workspace/project when none is "
                                        "selected; final jobs keep theirs")
        self.kill = a("&Kill", self.do_kill, "Ctrl+K",
                      tip="Kill the selected queued or running jobs (also those another process runs)")
        self.tips = {act: act.toolTip() for act in (self.select_chain, self.select_ancestors, self.select_descendants,
                                                    self.mark_final, self.unmark_final, self.clear, self.delete,
                                                    self.mark_complete, self.clone, self.warm, self.run, self.queue,
                                                    self.rerun, self.kill, self.run_on_lane)}
        self.next_steps = []
        self.next_menu = QMenu("Ne&xt step", host)
        self.next_menu.setToolTipsVisible(True)
        for label, type_name, slot in builder.NEXT_STEPS:
            act = a(label, lambda _=False, t=type_name, sl=slot: self.do_next_step(t, sl),
                    tip=f"Build a {type_name} job reading this job's particles")
            self.tips[act] = act.toolTip()
            self.next_steps.append(act)
            self.next_menu.addAction(act)
        self.next_menu.addSeparator()
        self.next_menu.addAction(self.warm)
        self.workspace_menus = {}
        for name, fn in (("Move to workspace", self.do_move), ("Link to workspace", self.do_link),
                         ("Unlink from workspace", self.do_unlink)):
            menu = QMenu(name, host)
            menu.aboutToShow.connect(lambda m=menu, f=fn: self._fill_workspaces(m, f))
            self.workspace_menus[name] = menu
        from .foreign_cleanup import RelionJobActions  # RELION projects: Delete to Trash/, Empty Trash (issue 16)

        self.relion = RelionJobActions(self)
        self.relion.message.connect(self.message)

    def _action(self, text, slot, shortcut=None, tip: str = "") -> QAction:
        act = QAction(text, self)
        if shortcut is not None:
            act.setShortcut(QKeySequence(shortcut))
        if tip:
            act.setToolTip(tip)
            act.setStatusTip(tip)
        act.triggered.connect(slot)
        return act

    # -- state ---------------------------------------------------------------
    @property
    def scene(self):
        return self.host.view.scene()

    def selected_uids(self) -> list[str]:
        snap = self.scene.snap
        return [] if snap is None else [snap.uid(i) for i in self.scene.selection.indices]

    def _states(self) -> list:
        """One :class:`~cryodesk.core.availability.JobState` per distinct (type, status, flags) of the
        selection (judging 50,000 selected jobs one by one would stall a click)."""
        snap = self.scene.snap
        if snap is None:
            return []
        seen = {}
        for i in self.scene.selection.indices.tolist():
            key = (snap.types[i], int(snap.status[i]), bool(snap.is_final[i]), bool(snap.is_ancestor[i]))
            if key not in seen:
                seen[key] = availability.JobState(snap.uid(i), snap.types[i], snap.status_name(i),
                                                  bool(snap.is_final[i]), bool(snap.is_ancestor[i]))
        return list(seen.values())

    def _judge(self, act: QAction, action: str, states) -> None:
        ok, why = availability.judge(action, states)
        self._set(act, ok, why)

    def _set(self, act: QAction, ok: bool, why: str = "") -> None:
        act.setEnabled(ok)
        tip = self.tips.get(act, "") or act.text().replace("&", "")
        act.setToolTip(tip if ok else f"{tip} — not available: {why}" if tip else f"Not available: {why}")
        act.setStatusTip(act.toolTip())

    def update_enabled(self) -> None:
        """Enable each action for the selection's state; a disabled one says why in its tooltip."""
        n = self.scene.selection.count()
        states = self._states()
        for act, action in ((self.mark_final, "mark_final"), (self.unmark_final, "unmark_final"),
                            (self.mark_complete, "mark_complete"), (self.clear, "clear"), (self.delete, "delete"),
                            (self.run, "run"), (self.queue, "queue"), (self.rerun, "rerun"), (self.kill, "kill"),
                            (self.warm, "warm"), (self.run_on_lane, "run")):
            self._judge(act, action, states)
        none = "select a job first"
        for act in (self.select_ancestors, self.select_descendants, self.clone):
            self._set(act, n > 0, none)
        self._set(self.select_chain, n == 2, "select exactly two jobs")
        if n == 1:
            ok, why = availability.judge("next_step", states)
        else:
            ok, why = False, "select one job"
        for act in self.next_steps:
            self._set(act, ok, why)
        self.next_menu.setEnabled(ok or self.warm.isEnabled())
        self.clear_intermediate.setEnabled(getattr(self.host, "project_uid", None) is not None)
        for menu in self.workspace_menus.values():
            menu.setEnabled(n > 0)
        self.relion.update_enabled()

    def populate_menu(self, menu: QMenu) -> None:
        """The context menu / Job menu: selection helpers first, then batch actions."""
        menu.setToolTipsVisible(True)  # a disabled item says why
        for act in (self.select_chain, self.select_ancestors, self.select_descendants):
            menu.addAction(act)
        menu.addSeparator()
        for act in (self.mark_final, self.unmark_final, self.mark_complete):
            menu.addAction(act)
        menu.addSeparator()
        for sub in self.workspace_menus.values():
            menu.addMenu(sub)
        menu.addAction(self.clone)
        menu.addSeparator()
        for act in (self.run, self.queue, self.run_on_lane, self.rerun, self.kill):
            menu.addAction(act)
        menu.addAction(self.warm)
        menu.addMenu(self.next_menu)
        menu.addSeparator()
        menu.addAction(self.clear_intermediate)
        menu.addAction(self.clear)
        menu.addAction(self.delete)
        menu.addAction(self.relion.empty_trash)

    def _fill_workspaces(self, menu: QMenu, fn) -> None:
        menu.clear()
        for uid, title in self.host.workspaces():
            act = menu.addAction(f"{uid} {title}")
            act.triggered.connect(lambda _=False, w=uid: fn(w))

    def _report(self, action: str, result) -> None:
        refused = list(getattr(result, "refused", []) or [])
        if refused:
            self._show(QtRefusalDialog(action, refused, self.host))

    # -- selection helpers ---------------------------------------------------------
    def _select_ids(self, ids) -> None:
        snap = self.scene.snap
        mask = np.isin(snap.ids, np.fromiter(ids, dtype=np.int64))
        self.scene.selection.set(np.flatnonzero(mask))

    def do_select_chain(self) -> None:
        uids = self.selected_uids()
        if len(uids) != 2:
            return self.message.emit("Select exactly two jobs to select the chain between them")
        a, b = jobs.get_jobs(self.host.project_uid, uids)
        try:
            ids = graph.chain_ids(a, b)
        except CryodeskError as exc:
            return self._show(QtRefusalDialog("chained", [actions.Outcome(f"{a.uid}–{b.uid}", "chain", False, str(exc))],
                                              self.host))
        self._select_ids(ids)

    def _closure(self, upward: bool) -> None:
        snap = self.scene.snap
        start = snap.ids[self.scene.selection.mask].tolist()
        found = graph.ancestor_ids(start) if upward else graph.descendant_ids(start)
        self._select_ids(set(found) | set(start))

    def do_select_ancestors(self) -> None:
        self._closure(True)

    def do_select_descendants(self) -> None:
        self._closure(False)

    # -- reversible batch actions (undo stack) ---------------------------------------
    def _push(self, command, action: str) -> None:
        try:
            self.host.undo_stack.push(command)
        except CryodeskError as exc:
            self.message.emit(str(exc))
            return
        if command.result is not None:
            self._report(action, command.result)

    def _notify(self) -> None:
        self.changed.emit()

    def do_set_final(self, final: bool) -> None:
        uids = self.selected_uids()
        if uids:
            self._push(SetFinalCommand(self.host.project_uid, uids, final, self._notify),
                       "marked final" if final else "unmarked")

    def do_link(self, workspace: str) -> None:
        self._push(LinkCommand(self.host.project_uid, self.selected_uids(), workspace, self._notify), "linked")

    def do_unlink(self, workspace: str) -> None:
        self._push(UnlinkCommand(self.host.project_uid, self.selected_uids(), workspace, self._notify), "unlinked")

    def do_move(self, workspace: str) -> None:
        self._push(MoveCommand(self.host.project_uid, self.selected_uids(), workspace, self._notify), "moved")

    # -- other actions ---------------------------------------------------------------
    # Both write one job.json per job: in a worker, so a large selection never freezes the window.
    def do_mark_complete(self) -> None:
        project, uids = self.host.project_uid, self.selected_uids()

        def done(result):
            self.pending = None
            self.changed.emit()
            self._report("marked as complete", result)

        self.pending = workers.submit(lambda: actions.mark_complete(project, jobs.get_jobs(project, uids)),
                                      on_done=done, on_error=self._failed, context=self)

    def do_clone(self) -> None:
        ws = self.host.workspace_uid or (self.host.workspaces()[0][0] if self.host.workspaces() else None)
        if ws is None:
            return
        project, uids = self.host.project_uid, self.selected_uids()

        def done(outcome):
            self.pending = None
            self.message.emit(f"Cloned {len(outcome[1])} job(s) into {ws}")
            self.changed.emit()

        self.pending = workers.submit(lambda: actions.clone(project, jobs.get_jobs(project, uids), ws),
                                      on_done=done, on_error=self._failed, context=self)

    def do_queue(self, uids: list[str] | None = None) -> None:
        uids = self.selected_uids() if uids is None else uids
        if not uids:
            return
        plan = self.host.bridge.queue(self.host.project_uid, uids)
        self.message.emit(f"Queued {len(plan.jobs)} job(s)")
        if plan.refused:
            self._show(QtRefusalDialog("queued", [actions.Outcome(u, "queue", False, m) for u, m in plan.refused],
                                       self.host))

    def do_run_on_lane(self, uids: list[str] | None = None) -> None:
        """Ask for a lane, then queue here (local) or send the jobs there (``cryodesk job queue --lane``)."""
        from .lane_dialogs import QtRunOnLaneDialog

        uids = self.selected_uids() if uids is None else uids
        if not uids:
            return
        dialog = QtRunOnLaneDialog(uids, self.host)
        dialog.accepted.connect(lambda d=dialog, u=uids: self._send_to_lane(u, *d.choice()))
        self._show(dialog)

    def _send_to_lane(self, uids: list[str], lane: str | None, variables: dict) -> None:
        if lane is None:
            self.do_queue(uids)
            return

        def done(result) -> None:
            ids = {j: c for _, j, c in result.submitted}
            sent = ", ".join(f"{j.uid}" + (f" (cluster job {ids[j.uid]})" if j.uid in ids else "")
                             for j in result.queued)
            self.message.emit(f"Sent to lane {lane}: {sent}" if sent else f"Nothing sent to lane {lane}")
            self.changed.emit()
            if result.refused:
                self._show(QtRefusalDialog("sent", [actions.Outcome(u, "run", False, m) for u, m in result.refused],
                                           self.host))

        self.pending = self.host.bridge.send_to_lane(self.host.project_uid, uids, lane, variables, done,
                                                     lambda exc: self.error.emit(f"not sent to lane {lane}", str(exc)))

    def do_rerun(self) -> None:
        """Queue the selected jobs that were cleared (status building); explain the others."""
        snap = self.scene.snap
        idx = self.scene.selection.indices
        cleared = [snap.uid(i) for i in idx if snap.status_name(i) == "building"]
        others = [actions.Outcome(snap.uid(i), "re-run", False,
                                  f"{snap.uid(i)} is {snap.status_name(i)}, not cleared; clear it first")
                  for i in idx if snap.status_name(i) != "building"]
        if cleared:
            self.do_queue(cleared)
        if others and self.dialog is None:
            self._show(QtRefusalDialog("re-run", others, self.host))

    def do_warm(self) -> None:
        """Copy each selected job's particle output to the SSD cache: one engine task per job,
        its copy progress in the running-jobs panel (the same service as ``cryodesk cache warm``)."""
        from ..cache.service import warm_job_output

        project = self.host.project_uid
        refused = []
        for st in self._selected_states():
            why = availability.why_not("warm", st)
            if why:
                refused.append(actions.Outcome(st.uid, "cache", False, why))
        if refused:
            self._show(QtRefusalDialog("cached on SSD", refused, self.host))
        skip = {o.uid for o in refused}
        for uid in (u for u in self.selected_uids() if u not in skip):
            title = f"Cache {project} {uid} particles on SSD"
            task = self.host.running.add_task(title)

            def done(stats, task=task, uid=uid) -> None:
                self.host.running.finish_task(task)
                self.message.emit(f"{uid}: particles cached on SSD ({stats['mode']}): copied "
                                  f"{human_bytes(stats['bytes_copied'])}, already cached "
                                  f"{human_bytes(stats['bytes_reused'])}")
                self.warmed.emit(stats)

            self.host.bridge.run_task(title, partial(warm_job_output, project, uid), task, done,
                                      on_error=lambda msg, uid=uid: self.error.emit(
                                          f"{uid}: its particles were not cached on the SSD",
                                          explain(project, msg, uid)))

    def _selected_states(self) -> list:
        snap = self.scene.snap
        return [availability.JobState(snap.uid(i), snap.types[i], snap.status_name(i), bool(snap.is_final[i]),
                                      bool(snap.is_ancestor[i])) for i in self.scene.selection.indices.tolist()]

    def do_kill(self) -> None:
        """Kill the selected queued or running jobs, wherever they run; say why for the others."""
        states = self._selected_states()
        live = [s.uid for s in states if availability.why_not("kill", s) is None]
        others = [actions.Outcome(s.uid, "kill", False, availability.why_not("kill", s)) for s in states
                  if s.uid not in live]
        if live:
            self.host.session.kill([(self.host.project_uid, uid) for uid in live])
        if others:
            self._show(QtRefusalDialog("killed", others, self.host))

    def do_next_step(self, type_name: str, slot: str) -> None:
        """Open the builder for ``type_name`` with the selected job's particles connected."""
        uids = self.selected_uids()
        if len(uids) != 1:
            return
        steps = {s["type"]: s for s in builder.next_steps(self.host.project_uid, uids[0])}
        step = steps.get(type_name)
        output = step["output"] if step else None
        self.next_step.emit(type_name, uids[0], builder.InputChoice(slot, uids[0], output))

    # -- destructive actions: plan (thread) → confirm → run (thread) ---------------------
    def do_clear(self) -> None:
        self._plan("clear", actions.plan_clear)

    def do_delete(self) -> None:
        if self.relion.is_relion() and self.selected_uids():
            return self.relion.do_delete(self.selected_uids())
        self._plan("delete", actions.plan_delete)

    def _plan(self, verb: str, planner) -> None:
        uids = self.selected_uids()
        if not uids:
            return
        project = self.host.project_uid

        def plan():
            return planner(project, jobs.get_jobs(project, uids))

        self.message.emit(f"Planning {verb} of {len(uids)} job(s)…")
        self.pending = workers.submit(plan, on_done=lambda p: self._confirm(verb, p), on_error=self._failed,
                                      context=self)

    def _confirm(self, verb: str, plan) -> None:
        self.pending = None
        items = plan.plan.items
        if not items:
            self._show(QtRefusalDialog("cleared" if verb == "clear" else "deleted", plan.refused, self.host))
            return
        what = "Clear the outputs of" if verb == "clear" else "Permanently delete"
        text = (f"{what} {len(items)} job(s)? This frees {human_bytes(plan.plan.bytes)} "
                f"({plan.plan.bytes:,} bytes).")
        for w in getattr(plan, "warnings", ()):  # a final result losing its particle images
            text += f"\n\n⚠ {w}"
        dialog = QtConfirmDialog(f"{verb.capitalize()} jobs", text, plan.refused,
                                 f"{verb.capitalize()} {human_bytes(plan.plan.bytes)}", self.host)
        dialog.accepted.connect(lambda: self._execute(verb, plan))
        self._show(dialog)

    def _execute(self, verb: str, plan) -> None:
        project = self.host.project_uid
        task = self.host.running.add_task(f"{verb.capitalize()} {len(plan.plan.items)} job(s)")

        def run():
            return actions.run_plan(project, plan, progress=task.report)

        def done(result):
            self.pending = None
            self.host.running.finish_task(task)
            self.message.emit(f"{verb.capitalize()}: freed {human_bytes(result.bytes_freed)}")
            self.changed.emit()
            failed = [o for o in result.outcomes if not o.ok and o not in plan.refused]
            if failed:
                self._show(QtRefusalDialog("cleared" if verb == "clear" else "deleted", failed, self.host))

        self.pending = workers.submit(run, on_done=done, on_error=self._failed, context=self)

    # -- clear intermediate results (the guide's Actions-menu button: job, workspace or project) ------
    def do_clear_intermediate(self) -> None:
        """Plan (thread) the selected jobs' intermediate results, or the scope's; confirm; run as a task."""
        from ..core.cleanup import plan_clear_intermediate

        project, workspace = self.host.project_uid, getattr(self.host, "workspace_uid", None)
        if project is None:
            return
        uids = self.selected_uids() or None
        self.message.emit(f"Planning: intermediate results of {len(uids) if uids else 'every'} job(s)…")
        self.pending = workers.submit(lambda: plan_clear_intermediate(project, uids, workspace),
                                      on_done=lambda plan: self._confirm_intermediate(plan, uids),
                                      on_error=self._failed, context=self)

    def _confirm_intermediate(self, plan, uids) -> None:
        self.pending = None
        kept = [actions.Outcome(s.uid, "clear intermediate results", False, f"{s.uid}: {s.reason}")
                for s in plan.skipped]
        if not plan.entries:
            none = actions.Outcome(plan.scope, "clear intermediate results", False,
                                   f"{plan.scope}: no intermediate results to clear")
            self._show(QtRefusalDialog("cleared of intermediate results", kept or [none], self.host))
            return
        text = (f"Clear the intermediate results of {len(plan.entries)} job(s) in {plan.scope}? Each keeps the "
                f"last version of its outputs and the versions other jobs read. This frees "
                f"{human_bytes(plan.bytes)} ({plan.bytes:,} bytes).")
        dialog = QtConfirmDialog("Clear intermediate results", text, kept, f"Clear {human_bytes(plan.bytes)}",
                                 self.host)
        dialog.accepted.connect(lambda: self._execute_intermediate(plan))
        self._show(dialog)

    def _execute_intermediate(self, plan) -> None:
        from ..core.cleanup import execute_cleanup

        project = self.host.project_uid
        task = self.host.running.add_task(f"Clear intermediate results: {human_bytes(plan.bytes)}")

        def done(result):
            self.pending = None
            self.host.running.finish_task(task)
            self.message.emit(f"Intermediate results cleared: freed {human_bytes(result.bytes_freed)}")
            self.changed.emit()
            failed = [actions.Outcome(o["uid"], "clear intermediate results", False, f"{o['uid']}: {o['message']}")
                      for o in result.outcomes if not o["ok"]]
            if failed:
                self._show(QtRefusalDialog("cleared of intermediate results", failed, self.host))

        self.pending = workers.submit(lambda: execute_cleanup(project, plan, task.report), on_done=done,
                                      on_error=self._failed, context=self)

    def _failed(self, exc) -> None:
        self.pending = None
        self.error.emit("The action failed", str(exc))
