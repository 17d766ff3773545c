"""Compacting a completed live session, and starting its restoration.

Compaction is a deletion plan like any other (:mod:`cryodesk.core.deletion`,
action ``compact_session``): :func:`compaction_plan` lists the files and
their bytes per kind (micrographs, thumbnails, CTF spectra, particle
stacks) and warns when a particle set exported from the session is read by
other jobs (they would lose their images: restack first); :func:`compact`
executes it through the journal.  What stays: the exposures' rows — automatic
and manual picks, CTF fits, per-exposure results — the session's parameters
and thresholds, and the movies (never touched).

Restoration (:func:`start_restore`) marks the session *restoring*; a runner
(:mod:`cryodesk.engine.live`) then re-runs motion → CTF → extraction from the
saved picks for every compacted exposure.  It is resumable: each stage's
result is recorded when its files are complete, so a runner killed at any
point continues where it stopped.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ...base.errors import DataError, Refused
from ...base.fsio import du_size
from ...db.models import Connection, Exposure, Job, Project, Session
from .. import deletion, events
from ..deletion.plan import DeletionPlan, PlanItem
from ..guard import project_write
from ..projects import get_project
from .service import KIND_LABEL, KINDS, get_session, runner_lock, set_status, symlink_problem, update_size

EXPORT_TYPE = "session_export"


@dataclass
class CompactionPlan:
    project: str
    session: str
    bytes_by_kind: dict[str, int]
    files_by_kind: dict[str, int]
    item: PlanItem
    warnings: list[str] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return self.item.bytes

    def to_dict(self) -> dict:
        return {"project": self.project, "session": self.session, "bytes": self.bytes,
                "bytes_by_kind": {KIND_LABEL[k]: v for k, v in self.bytes_by_kind.items()},
                "files_by_kind": {KIND_LABEL[k]: v for k, v in self.files_by_kind.items()},
                "warnings": self.warnings, "keeps": ["picks (automatic and manual)", "parameters and thresholds",
                                                     "per-exposure metadata (CTF fit, particle counts)", "movies"],
                "item": asdict(self.item)}


def export_jobs(project: Project, session: Session) -> list[Job]:
    """Jobs that exported particles of ``session`` (their outputs reference its stacks)."""
    return [j for j in Job.select().where((Job.project == project.id) & (Job.type == EXPORT_TYPE))
            if str((j.params or {}).get("session", "")).upper() == session.uid]


def _warnings(project: Project, session: Session) -> list[str]:
    out = []
    for job in export_jobs(project, session):
        readers = sorted({f"J{n}" for (n,) in Job.select(Job.number).join(Connection, on=(Connection.child == Job.id))
                          .where(Connection.parent == job.id).tuples()}, key=lambda u: int(u[1:]))
        if readers:
            out.append(f"{job.uid} (particles exported from {session.uid}) is used by {', '.join(readers)}: "
                       f"its particle images are in {session.uid} and would be lost; restack them first "
                       f"(cryodesk job create {project.uid} restack_particles -i particles={job.uid}.particles)")
        elif job.status == "completed":
            out.append(f"{job.uid} (particles exported from {session.uid}) would lose its particle images "
                       "until the session is restored")
    return out


def compaction_plan(project, session) -> CompactionPlan:
    """What compacting ``session`` removes (bytes per kind) and what it warns about; changes nothing."""
    project = get_project(project)
    s = get_session(project, session)
    if s.status == "compacted":
        raise Refused(f"{project.uid} {s.uid}", "it is compacted already")
    if s.status not in ("completed", "compacting"):
        raise Refused(f"{project.uid} {s.uid}", f"cannot compact: it is {s.status}; only a session marked "
                      f"completed can be compacted (cryodesk session complete {project.uid} {s.uid})")
    pdir = Path(project.directory)
    bytes_by_kind = dict.fromkeys(KINDS, 0)
    files_by_kind = dict.fromkeys(KINDS, 0)
    paths = []
    checked: dict[str, str | None] = {}
    for (outputs,) in Exposure.select(Exposure.outputs).where(Exposure.session == s.id).order_by(
            Exposure.number).tuples():
        for kind, out in sorted((outputs or {}).items()):
            rel = out.get("path") if isinstance(out, dict) else None
            if not rel or kind not in bytes_by_kind:
                continue
            parent = rel.rsplit("/", 1)[0]
            if parent not in checked:
                checked[parent] = symlink_problem(pdir, rel)
            if checked[parent]:  # as the apply would: never counted (or removed) through a link
                raise Refused(f"{project.uid} {s.uid}", f"cannot compact: {checked[parent]}; "
                              "nothing was planned (put the real directory back in place)")
            if not os.path.lexists(pdir / rel):
                continue
            size = du_size(pdir / rel)
            bytes_by_kind[kind] += size
            files_by_kind[kind] += 1
            paths.append(rel)
    item = PlanItem(job=s.uid, action="compact_session", paths=sorted(set(paths)),
                    bytes=sum(bytes_by_kind.values()),
                    reason=f"compact live session {s.uid}: remove preprocessing and extraction data",
                    versions={"kinds": {k: v for k, v in bytes_by_kind.items() if v}})
    return CompactionPlan(project.uid, s.uid, bytes_by_kind, files_by_kind, item, _warnings(project, s))


def compact(project, session, progress=None) -> dict:
    """Compact ``session`` (completed) through the deletion journal; returns the plan and the result.

    Holds the session's runner lock throughout, so no runner writes while
    its files go; a compaction that crashed is finished by the journal's
    recovery (on the next write to the project) or by running this again.
    """
    project = get_project(project)
    deletion.recover(project)
    s = get_session(project, session)
    with runner_lock(project, s):
        plan = compaction_plan(project, s)
        if s.status == "completed" and not set_status(project, s, "compacting", only_from=("completed",)):
            raise Refused(f"{project.uid} {s.uid}", "its status changed meanwhile; nothing was compacted")
        results = deletion.execute(project, DeletionPlan(project.uid, [plan.item]), progress=progress)
        bad = [r for r in results if not r.ok and r.action == "compact_session"]
        s = get_session(project, s.uid)
        if bad or s.status != "compacted":
            set_status(project, s, "completed", error=bad[0].message if bad else None, only_from=("compacting",))
            raise DataError(f"{project.uid} {s.uid}: compaction not applied: "
                            f"{bad[0].message if bad else 'the plan did not apply'}; the session is completed again")
    update_size(project, s)
    return {"plan": plan.to_dict(), "freed_bytes": plan.bytes, "status": "compacted",
            "messages": [r.message for r in results if not r.ok]}


def start_restore(project, session) -> Session:
    """Mark a compacted (or half-restored) session *restoring*: a runner then regenerates its data."""
    project = get_project(project)
    s = get_session(project, session)
    if s.status == "restoring":
        return s
    if s.status not in ("compacted", "restoration_failed"):
        raise Refused(f"{project.uid} {s.uid}", f"cannot restore: it is {s.status}; only a compacted session "
                      "is restored")
    if s.status == "restoration_failed":
        failed = Exposure.select().where((Exposure.session == s.id) & (Exposure.stage == "failed")).count()
        if failed:
            raise Refused(f"{project.uid} {s.uid}", f"{failed} exposure(s) failed to restore; reset them first "
                          f"(cryodesk session reset-failed {project.uid} {s.uid}) or fix their movies")
    sdir = Path(project.directory) / s.directory
    if sdir.is_symlink():  # before anything changes (a SLURM lane would write its script through it too)
        raise DataError(f"{project.uid} {s.uid}: its directory {sdir} is a symlink; cryodesk never writes "
                        "through one (put the real directory back in place); nothing was changed")
    deletion.recover(project)  # a compaction that crashed is finished before restoring over it
    with project_write(project):
        Exposure.update(stage="motion").where((Exposure.session == s.id) & (Exposure.stage == "compacted")).execute()
        Session.update(status="restoring", error=None).where(Session.id == s.id).execute()
        events.record(project, "project")
    return get_session(project, s.uid)


def discard_temp(project, session) -> int:
    """Remove unfinished writes (own temp names) a killed runner left under ``S<n>/``; returns how many.

    Call it holding the session's runner lock (a runner does, as it starts).
    Through the deletion service like every removal: planned, journaled, rechecked.
    """
    from ...base.fsio import own_temp_target

    project = get_project(project)
    s = get_session(project, session)
    sdir = Path(project.directory) / s.directory
    if not sdir.is_dir() or sdir.is_symlink():
        return 0
    paths = []
    for sub in ("motion", "thumbnails", "ctf", "extract"):
        d = sdir / sub
        if d.is_dir() and not d.is_symlink():
            paths += [f"{s.uid}/{sub}/{e.name}" for e in os.scandir(d)
                      if own_temp_target(e.name) is not None and e.is_file(follow_symlinks=False)]
    if not paths:
        return 0
    pdir = Path(project.directory)
    item = PlanItem(job=s.uid, action="discard_session_temp", paths=sorted(paths),
                    bytes=sum(du_size(pdir / r) for r in paths), reason="unfinished writes of a runner that died")
    results = deletion.execute(project, DeletionPlan(project.uid, [item]))
    return len(paths) if all(r.ok for r in results) else 0
