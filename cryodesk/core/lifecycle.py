"""Job lifecycle between *building* and a final status (Qt-free).

The engine (GUI or ``cryodesk worker``) and the CLI share these rules:

* :func:`plan_queue` / :func:`mark_queued` — which jobs may be queued together
  (dependency order, a parent cleared or failed refuses its child, naming it).
* :func:`claim` / :func:`release` — a queued job is *owned* by one engine of one
  process (the ``owner_*`` columns); a job queued with ``cryodesk job queue``
  has no owner until a worker claims it (compare-and-swap on the owner, so two
  workers never run the same job, and a user's edit of the job's settings
  cannot make a claim fail).
* :func:`heartbeat` — an engine stamps the jobs it owns; an owner on another
  host whose stamps stopped for :data:`HEARTBEAT_TIMEOUT` is taken as dead.
* :func:`readiness_many` — may a queued job start now, must it wait for a parent,
  or will it never run because a parent failed or was killed?
* :func:`request_kill` / :func:`kill_requested` — a kill that crosses
  processes: the request is stored in ``Job.kill_requested_at`` and the
  owning engine polls for it.
* :func:`recover_interrupted` — jobs left active by a process that died are
  marked *killed* (``"interrupted: cryodesk exited while it ran"``).
"""

from __future__ import annotations

import os
import socket
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..base import nofollow
from ..base.errors import DataError, NotFound, Refused
from ..db.models import ACTIVE_STATUSES, Connection, Job, utcnow
from . import registry
from .guard import check_writable, kind_refusal, may_write
from .jobs import refresh, set_status
from .projects import get_project
from .rules import why_not_kill
from .sizes import job_size

INTERRUPTED = "interrupted: cryodesk exited while it ran"
INTERRUPTED_QUEUED = "interrupted: cryodesk exited while it was queued"
INTERRUPTED_REMOTE = "interrupted: the worker running it stopped sending heartbeats"
#: engines alive in this process (tokens); a job owned by this pid but by no live engine is orphaned
_LIVE_ENGINES: set[str] = set()
#: an engine stamps its jobs this often (s) ...
HEARTBEAT_INTERVAL = 5.0
#: ... and an owner on another host silent this long (s) is taken as dead
HEARTBEAT_TIMEOUT = 120.0


# -- who owns a job ----------------------------------------------------------------

def _read(path: str) -> str | None:
    try:
        return Path(path).read_text().strip()
    except OSError:
        return None


def _start_ticks(pid: int) -> str | None:
    """Process start time (clock ticks since boot): guards against pid reuse (Linux only)."""
    stat = _read(f"/proc/{pid}/stat")
    if not stat:
        return None
    # the command name may contain spaces and parentheses: split after the last ")"
    return stat.rsplit(")", 1)[-1].split()[19]


def new_owner() -> dict:
    """A fresh owner record for an engine of this process (register it with :func:`engine_alive`)."""
    return {"host": socket.gethostname(), "pid": os.getpid(), "boot": _read("/proc/sys/kernel/random/boot_id"),
            "start": _start_ticks(os.getpid()), "engine": uuid.uuid4().hex[:12]}


def engine_alive(owner: dict, alive: bool = True) -> None:
    """Declare the engine of ``owner`` alive (on start) or gone (on shutdown)."""
    (_LIVE_ENGINES.add if alive else _LIVE_ENGINES.discard)(owner["engine"])


def owner_alive(owner: dict | None) -> bool | None:
    """True/False if the owner's process (and engine) is known alive/dead; None if it cannot be told.

    On this host the process table decides; on another host the owner's
    heartbeat does (dead after :data:`HEARTBEAT_TIMEOUT` of silence).
    """
    if not owner or not owner.get("engine"):
        return False
    if owner.get("host") != socket.gethostname():
        beat = owner.get("heartbeat")
        if beat is None:
            return None
        return (utcnow() - beat).total_seconds() < HEARTBEAT_TIMEOUT
    if owner.get("boot") and owner["boot"] != _read("/proc/sys/kernel/random/boot_id"):
        return False  # the machine rebooted since
    pid = int(owner.get("pid") or -1)
    if pid == os.getpid():
        return owner.get("engine") in _LIVE_ENGINES
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, belongs to someone else
    except (OSError, ValueError):
        return False
    start = owner.get("start")
    return start is None or _start_ticks(pid) in (None, start)


def owner_of(job: Job) -> dict | None:
    """The owner record of ``job`` (host, pid, boot, start, engine, heartbeat), or None."""
    if not job.owner_engine:
        return None
    return {"host": job.owner_host, "pid": job.owner_pid, "boot": job.owner_boot, "start": job.owner_start,
            "engine": job.owner_engine, "heartbeat": job.heartbeat_at}


def _owner_columns(owner: dict | None) -> dict:
    """Column values that record ``owner`` (None: no owner)."""
    owner = owner or {}
    return {"owner_host": owner.get("host"), "owner_pid": owner.get("pid"), "owner_boot": owner.get("boot"),
            "owner_start": owner.get("start"), "owner_engine": owner.get("engine"),
            "heartbeat_at": utcnow() if owner else None}


def _describe_owner(owner: dict) -> str:
    return f"process {owner.get('pid')} on {owner.get('host')}"


# -- queueing ------------------------------------------------------------------------

@dataclass
class QueuePlan:
    """Jobs that may be queued, in dependency order, and the refused ones with reasons."""

    jobs: list[Job] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)  # (uid, message)


def _parent_links(job: Job) -> list[tuple[str, Job]]:
    # one query: the engine asks this for every waiting job at every poll, in the GUI thread
    q = (Connection.select(Connection.slot, Job).join(Job, on=(Connection.parent == Job.id))
         .where(Connection.child == job).order_by(Connection.slot, Connection.position))
    return [(c.slot, c.parent) for c in q]


def plan_queue(project, jobs, owner: dict | None = None) -> QueuePlan:
    """Check ``jobs`` before queueing them together; ordered so that parents come first.

    A parent must be completed, be in the batch, or be queued/running already;
    a parent that was cleared (building), failed or killed refuses its child,
    naming the parent to re-run.  ``owner`` may re-claim jobs it already owns.
    """
    project = get_project(project)
    check_writable(project)  # an archived project, or another database's, runs nothing
    batch = {j.id: j for j in refresh(jobs)}
    plan = QueuePlan()
    refused_ids: dict[int, str] = {}
    done: set[int] = set()

    def visit(job: Job, stack: tuple = ()) -> None:
        if job.id in done or job.id in stack:
            return
        links = _parent_links(job)
        for _, parent in links:
            if parent.id in batch:
                visit(batch[parent.id], stack + (job.id,))
        done.add(job.id)
        reason = _queue_refusal(project, job, links, batch, refused_ids, owner)
        if reason:
            refused_ids[job.id] = reason
            plan.refused.append((job.uid, f"{job.uid}: {reason}"))
        else:
            plan.jobs.append(job)

    for job in sorted(batch.values(), key=lambda j: j.number):
        visit(job)
    return plan


def _queue_refusal(project, job, links, batch, refused_ids, owner) -> str | None:
    from .inputs import resolve_inputs

    jtype = registry.get(job.type)
    if jtype.run is None:
        return f"job type {job.type!r} cannot be run by cryodesk"
    if job.status == "queued":
        current = owner_of(job)
        mine = owner is not None and current is not None and current.get("engine") == owner.get("engine")
        if current and not mine and owner_alive(current) is not False:
            return f"it is already queued by {_describe_owner(current)}"
    elif job.status in ACTIVE_STATUSES:
        return f"it is already {job.status}"
    elif job.status != "building":
        return f"it is {job.status}; clear it before running it again"
    connected = {slot for slot, _ in links}
    for s in jtype.inputs:
        if s.required and s.name not in connected:
            return f"required input {s.name!r} is not connected"
    waiting = False
    for slot, parent in links:
        if parent.id in batch and parent.id not in refused_ids:
            waiting = True
        elif parent.id in refused_ids and parent.status not in ("completed", *ACTIVE_STATUSES):
            return f"input {slot!r} needs {parent.uid}, which cannot run ({refused_ids[parent.id]})"
        elif parent.status in ACTIVE_STATUSES:
            waiting = True
        elif parent.status != "completed":
            return f"input {slot!r} needs {parent.uid}, which is {parent.status}; run (or re-run) {parent.uid} first"
    if not waiting:
        try:  # every parent is completed: the runner's own check (cleared outputs, versions)
            resolve_inputs(project, job)
        except Refused as exc:
            return exc.reason
    return None


def mark_queued(jobs, owner: dict | None = None, lane: str | None = None) -> list[Job]:
    """Set ``jobs`` (already checked by :func:`plan_queue`) to *queued*, owned by ``owner`` (or nobody),
    on ``lane`` (None: this engine, or any ``cryodesk worker run`` without ``--lane``).  Returns the
    jobs queued: one that another process queued or started since it was planned is left out."""
    out = []
    for job in refresh(jobs):
        # planned a moment ago; another process may have queued or started it since (two `job run`s of
        # one job): take it only as it was planned, in one compare-and-swap, never from under its runner
        current = owner_of(job)
        mine = owner is not None and current is not None and current.get("engine") == owner.get("engine")
        if job.status != "building" and not (job.status == "queued" and (
                not current or mine or owner_alive(current) is False)):
            continue
        values = {**_owner_columns(owner), "kill_requested_at": None, "lane": lane, "cluster_job_id": None}
        same = Job.owner_engine.is_null() if job.owner_engine is None else (Job.owner_engine == job.owner_engine)
        if Job.update(**values).where((Job.id == job.id) & (Job.status == job.status) & same).execute() != 1:
            continue
        for key, value in values.items():
            setattr(job, key, value)
        set_status(job, "queued")
        out.append(job)
    return out


def claim(job: Job, owner: dict) -> bool:
    """Take a queued job that nobody (alive) owns; atomic across processes."""
    fresh = Job.get_by_id(job.id)
    current = owner_of(fresh)
    if fresh.status != "queued" or (current and owner_alive(current) is not False):
        return False
    # compare-and-swap on the owner alone: a concurrent claimer changed it, we lose
    same_owner = Job.owner_engine.is_null() if fresh.owner_engine is None else (Job.owner_engine == fresh.owner_engine)
    n = (Job.update(**_owner_columns(owner), kill_requested_at=None)
         .where((Job.id == job.id) & (Job.status == "queued") & same_owner).execute())
    return n == 1


def claimable(project=None, lane: str | None = None) -> list[Job]:
    """Queued jobs without a live owner (oldest first), e.g. queued by ``cryodesk job queue``.

    Only jobs of ``lane`` (a worker lane), or with ``lane`` None only jobs sent to no lane; never
    another program's jobs.
    """
    q = Job.select().where((Job.status == "queued") & ((Job.lane == lane) if lane else Job.lane.is_null())
                           & Job.path.is_null())
    if project is not None:
        q = q.where(Job.project == get_project(project))
    writable: dict[int, bool] = {}
    out = []
    for j in q.order_by(Job.queued_at, Job.id):
        if owner_alive(owner_of(j)) is not False:
            continue
        if j.project_id not in writable:  # archived, another database's: not run from here
            writable[j.project_id] = may_write(j.project_id)
        if writable[j.project_id]:
            out.append(j)
    return out


def own_direct_run(job: Job) -> dict:
    """Record this process as the owner of ``job``, run without an engine (call in the start's transaction)."""
    owner = new_owner()
    engine_alive(owner)
    Job.update(**_owner_columns(owner)).where(Job.id == job.id).execute()
    return owner


def end_direct_run(job: Job, owner: dict) -> None:
    """The run of :func:`own_direct_run` is over: forget its owner (if it still is the owner)."""
    engine_alive(owner, False)
    Job.update(**_owner_columns(None)).where((Job.id == job.id) & (Job.owner_engine == owner["engine"])).execute()


def take_lane_job(job: Job, owner: dict) -> bool:
    """``cryodesk worker run-job`` on a node takes a job submitted to a lane (launched or started,
    owned by nobody alive); atomic across processes, like :func:`claim`."""
    fresh = Job.get_by_id(job.id)
    current = owner_of(fresh)
    if fresh.status not in ("queued", "launched", "started") or (current and owner_alive(current) is not False):
        return False
    same_owner = Job.owner_engine.is_null() if fresh.owner_engine is None else (Job.owner_engine == fresh.owner_engine)
    n = (Job.update(**_owner_columns(owner))
         .where((Job.id == job.id) & (Job.status == fresh.status) & same_owner).execute())
    return n == 1


def release(job: Job) -> None:
    """Forget the owner and any kill request once the job has finished."""
    values = {**_owner_columns(None), "kill_requested_at": None}
    Job.update(**values).where(Job.id == job.id).execute()
    for key, value in values.items():
        setattr(job, key, value)


def heartbeat(job_ids, owner: dict) -> int:
    """Stamp the jobs of ``job_ids`` that ``owner`` still owns; returns how many."""
    ids = sorted(job_ids)
    n = 0
    for k in range(0, len(ids), 500):
        n += (Job.update(heartbeat_at=utcnow())
              .where(Job.id.in_(ids[k:k + 500]) & (Job.owner_engine == owner["engine"])).execute())
    return n


def owned_queued(job_ids, owner: dict) -> set[int]:
    """Those of ``job_ids`` that are still queued and owned by ``owner`` (the others left its hands)."""
    ids = sorted(job_ids)
    out: set[int] = set()
    for k in range(0, len(ids), 500):
        out.update(i for (i,) in Job.select(Job.id).where(
            Job.id.in_(ids[k:k + 500]) & (Job.status == "queued") & (Job.owner_engine == owner["engine"])).tuples())
    return out


def status_of(job_ids) -> dict[int, str]:
    """Current status of each existing job of ``job_ids``."""
    ids = sorted(job_ids)
    out: dict[int, str] = {}
    for k in range(0, len(ids), 500):
        out.update(Job.select(Job.id, Job.status).where(Job.id.in_(ids[k:k + 500])).tuples())
    return out


def children_of(parent_ids) -> set[int]:
    """Ids of the direct children of ``parent_ids``."""
    ids = sorted(parent_ids)
    if not ids:
        return set()
    return {c for (c,) in Connection.select(Connection.child).where(Connection.parent.in_(ids)).tuples()}


def readiness_many(job_ids) -> dict[int, tuple[str, str | None]]:
    """Per queued job: ``("ready", None)``, ``("wait", why)``, or ``("failed"|"killed", error)``.

    A parent that failed fails its queued children and a killed one kills them:
    they are never left queued for ever.  One query per 500 jobs (the engine
    polls this in the GUI thread).
    """
    ids = list(job_ids)
    links: dict[int, list[tuple[str, int, str]]] = {i: [] for i in ids}
    for k in range(0, len(ids), 500):
        q = (Connection.select(Connection.child, Connection.slot, Job.number, Job.status)
             .join(Job, on=(Connection.parent == Job.id)).where(Connection.child.in_(ids[k:k + 500]))
             .order_by(Connection.slot, Connection.position).tuples())
        for child, slot, number, status in q:
            links[child].append((slot, number, status))
    return {i: _judge(links[i]) for i in ids}


def _judge(links) -> tuple[str, str | None]:
    waiting = []
    for slot, number, status in links:
        uid = f"J{number}"
        if status == "completed":
            continue
        if status in ACTIVE_STATUSES:
            waiting.append(f"{uid} ({status})")
        elif status == "failed":
            return "failed", f"not run: its input {uid} failed; fix and re-run {uid} first"
        elif status == "killed":
            return "killed", f"not run: its input {uid} was killed; re-run {uid} first"
        else:
            return "failed", f"not run: input {slot!r} needs {uid}, which is {status}; run (or re-run) {uid} first"
    return ("wait", "waiting for " + ", ".join(waiting)) if waiting else ("ready", None)


def end_unrun(job: Job | int, status: str, error: str) -> Job:
    """End a job that never started (a queued job whose parent failed, a kill before start)."""
    row = Job.get_or_none(Job.id == (job if isinstance(job, int) else job.id))
    if row is None:  # deleted meanwhile: nothing to end
        return job
    job = row
    writable = may_write(job.project_id)  # another database's directory: its row here changes, no file
    if writable:
        _log_line(job, f"{status}: {error}")
    release(job)
    set_status(job, status, error=error, write=writable)
    return job


def end_if_active(job: Job | int, error: str, statuses=("queued",)) -> Job:
    """End ``job`` as failed with ``error`` if it is still in one of ``statuses`` (an engine error)."""
    fresh = Job.get_or_none(Job.id == (job if isinstance(job, int) else job.id))
    if fresh is None:  # deleted meanwhile (its run said so): nothing to end
        return job
    if fresh.status in statuses:
        return end_unrun(fresh, "failed", error)
    return fresh


def _log_line(job: Job, text: str) -> None:
    try:
        jdir = Path(job.project.directory) / job.directory
        if jdir.is_dir() and not jdir.is_symlink():
            log = jdir / "job.log"
            new = not log.exists()
            line = f"{utcnow().isoformat(sep=' ', timespec='seconds')} INFO {text}\n".encode()
            with nofollow.open_append(log) as fh:
                fh.write(line.decode())
            # the log is part of the job's size (du -sb): keep the record exact without a walk
            grown = len(line) if not new else log.stat().st_size
            Job.update(size_bytes=Job.size_bytes + grown).where(Job.id == job.id).execute()
            job.size_bytes = (job.size_bytes or 0) + grown
    except (OSError, DataError):
        pass  # the log is a courtesy (and never written through a link); the status and error count


# -- kill requests and crash recovery ----------------------------------------------

def request_kill(project, job) -> str:
    """Kill ``job`` from any process: returns ``"killed"`` (it had not started) or ``"requested"``.

    A queued job is killed at once; a running one gets a request that its
    engine picks up within a poll interval (or it is marked killed if its
    process is gone).
    """
    from .jobs import get_job

    project = get_project(project)
    job = Job.get_by_id(get_job(project, job).id)
    why = why_not_kill(job) or kind_refusal(project)
    if why:
        raise Refused(job.uid, why)
    if job.status == "queued":
        n = Job.update(status="killed").where((Job.id == job.id) & (Job.status == "queued")).execute()
        job = Job.get_by_id(job.id)
        # an engine starting it at this very moment may have overwritten our "killed": then
        # it is running, and the request below reaches it
        if n == 1 and job.status == "killed":
            end_unrun(job, "killed", "killed by the user before it ran")
            return "killed"
    if job.status not in ACTIVE_STATUSES:
        raise Refused(job.uid, f"it is {job.status}; only queued or running jobs can be killed")
    if owner_alive(owner_of(job)) is False:
        _mark_interrupted(job)
        return "killed"
    Job.update(kill_requested_at=utcnow()).where(Job.id == job.id).execute()
    return "requested"


def kill_requested(job_ids) -> set[int]:
    """Ids among ``job_ids`` with a pending kill request (one query)."""
    ids = list(job_ids)
    if not ids:
        return set()
    return {i for (i,) in Job.select(Job.id).where(Job.id.in_(ids) & Job.kill_requested_at.is_null(False)).tuples()}


def _mark_interrupted(job: Job) -> Job:
    error = INTERRUPTED_QUEUED if job.status == "queued" else INTERRUPTED
    if job.owner_host and job.owner_host != socket.gethostname():
        error = INTERRUPTED_REMOTE  # its heartbeats stopped
    return mark_interrupted(job, "killed", error)


def mark_interrupted(job: Job, status: str, error: str) -> Job:
    """End an active job whose process is gone as ``status`` with ``error``; its partial files count."""
    job = end_unrun(job, status, error)
    job.size_bytes = job_size(Path(job.project.directory) / job.directory)  # partial files count
    job.save(only=[Job.size_bytes])
    return job


def recover_interrupted(project=None) -> list[Job]:
    """Mark *killed* every active job whose owner process is gone; returns them.

    Jobs owned by a live process, or by a process on another host, are left
    alone; a queued job nobody owns is waiting for a worker and is left too.
    """
    # another program's jobs (Job.path set: RELION's, CryoSPARC's) are run by that program, not owned here
    q = Job.select().where(Job.status.in_(ACTIVE_STATUSES) & Job.path.is_null())
    if project is not None:
        q = q.where(Job.project == get_project(project))
    out = []
    writable: dict[int, bool] = {}
    for job in q:
        owner = owner_of(job)
        if not owner and (job.status == "queued" or job.cluster_job_id):
            continue  # waiting for a worker, or in a cluster's hands (core.lanes follows those)
        if job.project_id not in writable:  # another database's project: its rows here are stale, never written
            writable[job.project_id] = may_write(job.project_id)
        if not writable[job.project_id]:
            continue
        if owner_alive(owner) is False:
            out.append(_mark_interrupted(job))
    return out


# -- handing work over when the app goes to the background ---------------------------

def hand_off(job_ids, owner: dict) -> list[Job]:
    """Give up ``owner``'s jobs of ``job_ids`` that are still queued (not started): they lose
    their owner, so a ``cryodesk worker run`` claims them (:func:`claim`).  Returns them.

    The app does this when it is asked to quit but keep its jobs running: a job
    body already running is a thread of the app and cannot move, but a job that
    has not started can go to a detached worker process, so the app's process
    ends as soon as its running jobs have.
    """
    out = []
    for job_id in sorted(job_ids):
        n = (Job.update(**_owner_columns(None))
             .where((Job.id == job_id) & (Job.status == "queued") & (Job.owner_engine == owner["engine"])).execute())
        if n == 1:
            out.append(Job.get_by_id(job_id))
    return out


@dataclass
class ActiveJob:
    """An active job anywhere (any project, any process), as the running-jobs panel lists it."""

    project_uid: str
    uid: str
    title: str
    type: str
    status: str
    queued_at: object
    started_at: object
    #: ``"here"`` (this process), ``"process 1234 on host"`` (another, alive), ``"no process"`` (a queued
    #: job waiting for a worker), or ``"gone"`` (its process died: recovery marks it killed)
    where: str
    owner_pid: int | None
    kill_requested: bool


def active_jobs(project=None) -> list[ActiveJob]:
    """Every queued or running job (of ``project``, or of all projects) and who runs it."""
    q = Job.select().where(Job.status.in_(ACTIVE_STATUSES))
    if project is not None:
        q = q.where(Job.project == get_project(project))
    out = []
    for job in q.order_by(Job.queued_at, Job.id):
        owner = owner_of(job)
        if owner is None and job.cluster_job_id:
            where = f"lane {job.lane}, cluster job {job.cluster_job_id}"
        elif owner is None and job.lane:
            where = f"lane {job.lane}"
        elif owner is None:
            where = "no process"
        elif owner.get("host") == socket.gethostname() and owner.get("pid") == os.getpid():
            where = "here" if owner_alive(owner) else "gone"
        else:
            alive = owner_alive(owner)
            where = _describe_owner(owner) if alive is not False else "gone"
        out.append(ActiveJob(job.project.uid, job.uid, job.title, job.type, job.status, job.queued_at,
                             job.started_at, where, job.owner_pid, job.kill_requested_at is not None))
    return out


def finished_since(project_uid: str, uids) -> dict[str, dict]:
    """How jobs ``uids`` of ``project_uid`` stand now: ``{uid: {status, error, started_at, completed_at}}``
    (jobs deleted meanwhile are left out)."""
    from .jobs import get_job

    out = {}
    project = get_project(project_uid)
    for uid in uids:
        try:
            job = get_job(project, uid)
        except NotFound:  # deleted meanwhile
            continue
        out[uid] = {"status": job.status, "error": job.error, "started_at": job.started_at,
                    "completed_at": job.completed_at}
    return out
