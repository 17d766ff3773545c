"""The deletion actions: for each, the one rule rechecked when it applies, and its database change.

Every action is an :class:`Action` object registered here, so any process
that imports :mod:`cryodesk.core.deletion` (recovery at start-up included)
knows every action a journal can name.  Rules common to all of them, checked
first (:meth:`Action.check`):

* nothing of a **final** job is ever removed;
* nothing outside the item's own job directory is touched (:func:`path_problem`);
* the conditions the plan was made under still hold (``versions["require"]``:
  ``allow_ancestor`` — an ancestor of final may be cleared: a plan that does not
  say so is refused for one; ``status_in`` — the job still has the status it was chosen for);
* no running (or queued) job reads what is removed, at any depth.

Then each action's own rule.  Every ``apply`` is idempotent: a restart that
replays an item already applied changes nothing more.
"""

from __future__ import annotations

from pathlib import Path

from ...db.models import ACTIVE_STATUSES, Connection, Job, OutputFile, Project, utcnow
from .. import events, manifest
from ..fsutil import check_job_dir
from ..graph import descendant_ids
from ..rules import active_readers, readers_text, why_not_clear, why_not_delete
from ..sizes import job_size
from .plan import JOB_UID, LOG, MANIFEST, PlanItem, path_problem


class Action:
    """A kind of plan item; subclasses set ``name`` and may override the hooks."""

    name = ""
    #: the item names the whole job directory (delete) rather than entries inside it
    whole_dir = False
    #: allowed while the job itself runs (partial output of a cancelled run)
    while_running = False
    #: an ancestor of final is refused unless the plan allowed it (``require.allow_ancestor``)
    protects_ancestors = True
    #: what the item's uid names (a session action names ``S<n>``: see session_action)
    uid_pattern = JOB_UID

    def target(self, project: Project, uid: str):
        """The row the item acts on (None: it is gone)."""
        return Job.get_or_none((Job.project == project) & (Job.number == int(uid[1:])))

    def directory(self, project_dir: Path, uid: str) -> Path:
        """The item's own directory, checked (no symlink, inside the project); nothing outside is touched."""
        return check_job_dir(project_dir, uid)

    def locked_job_ids(self, target) -> list[int]:
        """Job rows the recheck reads, locked with the project's row."""
        return [target.id]
    #: applies to paths of no job row (another program's trash): ``check``/``apply`` get job None
    jobless = False

    def item_dir(self, item: PlanItem) -> str:
        """The directory the item's paths lie in, relative to the project (``J<n>``, ``S<n>``; see other programs')."""
        return item.job

    def check_dir(self, project_dir: Path, item: PlanItem) -> Path:
        """The item's directory, checked to be a real directory (or absent) in the project (DataError if not)."""
        return self.directory(project_dir, self.item_dir(item))

    def guard(self, project_dir: Path):
        """A context held around the item's transaction (another program's lock); none by default."""
        from contextlib import nullcontext

        return nullcontext()

    def check(self, project: Project, job: Job, item: PlanItem) -> str | None:
        """Why ``item`` may not apply to ``job`` now (None: it may).  Runs in the write transaction."""
        why = path_problem(item, self.whole_dir, self.uid_pattern, self.item_dir(item))
        if why:
            return why
        if job.is_final:
            return "it is marked as a final result (it was not when the plan was made)"
        require = item.versions.get("require") or {}
        # (unsaid is not allowed: a plan that did not know the job as an ancestor of final did not show it so)
        if job.is_ancestor_of_final and self.protects_ancestors and not require.get("allow_ancestor", False):
            return "it became an ancestor of a final result after the plan was made"
        status_in = require.get("status_in")
        if status_in and job.status not in status_in:
            return f"it is {job.status} now (it was {'/'.join(status_in)} when planned)"
        if not self.while_running:
            readers = active_readers(job)  # at any depth (read under the project's lock: no job starts now)
            if readers:
                return readers_text(readers)
        return self.rule(project, job, item)

    def rule(self, project: Project, job: Job, item: PlanItem) -> str | None:
        return None

    def apply(self, project: Project, job: Job, item: PlanItem) -> None:
        raise NotImplementedError

    @staticmethod
    def _remeasure(project: Project, job: Job) -> None:
        job.size_bytes = job_size(Path(project.directory) / job.directory)
        job.save(only=[Job.size_bytes])  # other fields may be changing under the engine
        manifest.write_job(job, Path(project.directory))
        events.record(project, "sizes", [job])


class Clear(Action):
    """Remove everything of the job but its record; it becomes *building* and can be re-run."""

    name = "clear"

    def rule(self, project, job, item):
        return why_not_clear(job)

    def apply(self, project, job, item):
        from ..jobs import set_status

        OutputFile.delete().where(OutputFile.job == job).execute()
        set_status(job, "building", write=False)
        self._remeasure(project, job)


class Delete(Action):
    """Remove the job, its directory and its rows; only when every descendant has gone before it."""

    name = "delete"
    whole_dir = True

    def rule(self, project, job, item):
        # items run children first, so a descendant still here was skipped or failed:
        # deleting now would cut its input from under it
        left = descendant_ids([job])
        if left:
            names = sorted((f"J{n}" for (n,) in Job.select(Job.number).where(Job.id.in_(sorted(left))).tuples()),
                           key=lambda u: int(u[1:]))
            return why_not_delete(job, names)
        return why_not_delete(job)

    def apply(self, project, job, item):
        job.delete_instance()  # connections, links and output rows cascade
        events.record(project, "removed", [job])


class ClearVersions(Action):
    """Remove intermediate results: versions of output groups that are not the last and no job reads."""

    name = "clear_versions"

    def rule(self, project, job, item):
        why = why_not_clear(job)
        if why:
            return why
        groups = item.versions["groups"]  # its shape was checked (plan.versions_problem)
        kept: set[str] = set()
        for group, versions in groups.items():
            last = (OutputFile.select(OutputFile.version).where((OutputFile.job == job) & (OutputFile.group == group))
                    .order_by(OutputFile.version.desc()).scalar())
            if last is not None and last in versions:
                return f"v{last} of {group} is now its last version (the job was re-run)"
            reader = (Connection.select(Connection.child).where(
                (Connection.parent == job.id) & (Connection.output == group) & (Connection.version.in_(versions)))
                .first())
            if reader is not None:
                return f"J{reader.child.number} now reads an intermediate version of {group}"
        for path, group, version in OutputFile.select(OutputFile.path, OutputFile.group, OutputFile.version).where(
                OutputFile.job == job).tuples():
            if version not in (groups.get(group) or ()):
                kept.add(path)
        for rel in item.paths:
            if rel in kept:
                return f"{rel} belongs to a version that is kept"
            if rel == f"{job.uid}/{LOG}":
                return f"{rel} is the job's log, not an intermediate result"
        return None

    def apply(self, project, job, item):
        for group, versions in item.versions["groups"].items():
            OutputFile.delete().where((OutputFile.job == job) & (OutputFile.group == group)
                                      & (OutputFile.version.in_(list(versions)))).execute()
        self._remeasure(project, job)
        events.record(project, "updated", [job])


class Discard(Action):
    """Remove the unregistered partial output of a run that was cancelled (the job ends killed)."""

    name = "discard"
    while_running = True
    protects_ancestors = False  # only unregistered partial output of its own cancelled run: nobody reads it

    def rule(self, project, job, item):
        if job.status not in ("running", "killed"):
            return f"it is {job.status}: only the partial output of a cancelled run is discarded"
        recorded = {p for (p,) in OutputFile.select(OutputFile.path).where(OutputFile.job == job).tuples()}
        for rel in item.paths:
            if rel in recorded or any(r.startswith(rel + "/") for r in recorded):
                return f"{rel} is a recorded output of the job"
            if rel in (f"{job.uid}/{LOG}", f"{job.uid}/{MANIFEST}"):
                return f"{rel} is the job's own record"
        return None

    def apply(self, project, job, item):
        pass  # partial output was never registered: the database needs no change


class DiscardTemp(Action):
    """Remove the unfinished writes a killed process left in a job directory (crash recovery).

    Only cryodesk's own temp names (:func:`cryodesk.base.fsio.own_temp_target`:
    ``.job.json.1a2b3c4d.tmp``, ``.batch_000.mrc.1a2b3c4d.tmp``, ``.x.cryodesk-part``)
    and only while the job is not active (a running job's are live).  They are
    debris, not the job's data or outputs, so a final job's are removed too.
    """

    name = "discard_temp"

    def check(self, project, job, item):
        why = path_problem(item, self.whole_dir)
        if why:
            return why
        if job.status in ACTIVE_STATUSES:
            return f"it is {job.status}: its unfinished writes may still be in progress"
        from ...base.fsio import own_temp_target

        recorded = {p for (p,) in OutputFile.select(OutputFile.path).where(OutputFile.job == job).tuples()}
        for rel in item.paths:
            if own_temp_target(rel.rsplit("/", 1)[-1]) is None:
                return f"{rel} is not a temp file of cryodesk"
            if rel in recorded:
                return f"{rel} is a recorded output of the job"
        return None

    def apply(self, project, job, item):
        self._remeasure(project, job)


ACTIONS: dict[str, Action] = {a.name: a for a in (Clear(), Delete(), ClearVersions(), Discard(), DiscardTemp())}


def register(action: Action) -> Action:
    """Add an action (a later subsystem's, e.g. session compaction); names are unique."""
    if action.name in ACTIONS and type(ACTIONS[action.name]) is not type(action):
        raise ValueError(f"deletion action {action.name!r} is already registered")
    ACTIONS[action.name] = action
    return action


def stamp_project(project: Project) -> None:
    """The project's measured size is now out of date."""
    Project.update(jobs_changed_at=utcnow()).where(Project.id == project.id).execute()
