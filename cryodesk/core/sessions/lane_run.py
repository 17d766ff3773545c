"""A live session's restore on a SLURM lane: one cluster job that runs ``cryodesk worker run-session P S --restore``.

The lane's own machinery does the work (:mod:`cryodesk.core.lanes.tracker`):
its script template is rendered into ``S<n>/lane/submit.sh`` and submitted
with its submit command (:func:`~cryodesk.core.lanes.submit_script`), followed
with its status command and cancelled with its cancel command.  What this
module adds is where the state lives: ``Session.lane_run`` (a JSON record:
lane, cluster job id, state, kill request, message), shown by ``session show
--json`` and the session view.

States: *submitting* -> *launched* (the scheduler has it) -> *started* (the
scheduler runs it) -> *running* (the node's cryodesk took it) -> *completed* /
*failed* / *killed*.  The node records its own end; when the scheduler no
longer lists a job the record still has active, :func:`sync` ends it (killed if
it was cancelled, else failed with the script's exit status).  The session
itself stays *restoring* when a restore is killed or fails: restoring again
(here or on the lane) continues with the exposures that are not yet ready.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

from ...base.errors import CryodeskError, Refused
from ...db.models import Lane, Session, utcnow
from .. import events
from ..guard import project_write
from ..lanes import templates, tracker
from ..lanes.service import get_lane, session_lane
from ..projects import get_project
from .compaction import start_restore
from .service import get_session, session_dir

ACTIVE_STATES = ("submitting", "launched", "started", "running")
ENDED_STATES = ("completed", "failed", "killed")
__all__ = ["ACTIVE_STATES", "ENDED_STATES", "active_count", "is_active", "is_active_desc", "kill", "kill_requested",
           "node_begin", "node_end", "restore", "session_lane", "sync"]


def _fresh(session: Session) -> Session:
    return Session.get_by_id(session.id)


def _update(project, session: Session, only: tuple[str, ...] | None = None, token: str | None = None,
            **changes) -> dict | None:
    """Change the session's lane record in one guarded write; None (nothing changed) if its state is not in
    ``only`` or its cluster id is no longer ``token``."""
    with project_write(project):
        s = _fresh(session)
        run = dict(s.lane_run or {})
        if only is not None and run.get("state") not in only:
            return None
        if token is not None and run.get("cluster_job_id") != token:
            return None
        run.update(changes, updated_at=utcnow().isoformat(timespec="seconds"))
        Session.update(lane_run=run).where(Session.id == s.id).execute()
        events.record(project, "project")
    return run


def is_active(session: Session) -> bool:
    return (session.lane_run or {}).get("state") in ACTIVE_STATES


def kill_requested(session: Session) -> bool:
    """Was a kill of the session's lane restore requested (the node polls this)?"""
    row = Session.get_or_none(Session.id == session.id)
    return bool(row is not None and (row.lane_run or {}).get("kill_requested"))


def is_active_desc(described: dict) -> bool:
    """:func:`is_active` of a session's :func:`~cryodesk.core.sessions.describe` dict."""
    return (described.get("lane_run") or {}).get("state") in ACTIVE_STATES


def restore(project, session, lane_name: str | None = None) -> Session:
    """Mark the session restoring and, on a SLURM lane (``lane_name``, else the session's lane), submit its
    restore; returns the session.  On the local lane only the status changes (the caller runs it here)."""
    project = get_project(project)
    s = get_session(project, session)
    lane = session_lane(lane_name or s.lane)
    if is_active(s):
        run = s.lane_run
        raise Refused(f"{project.uid} {s.uid}", f"its restore is already {run['state']} on lane {run['lane']!r} "
                      f"(cluster job {run.get('cluster_job_id') or '-'}); kill it first to submit it again")
    s = start_restore(project, s)
    if lane is None:
        return s
    token = f"submitting:{int(time.time())}:{uuid.uuid4().hex[:8]}"
    with project_write(project):  # claimed for submission: two processes never submit one restore twice
        fresh = _fresh(s)
        if is_active(fresh):
            raise Refused(f"{project.uid} {s.uid}", f"its restore was just {fresh.lane_run['state']} on lane "
                          f"{fresh.lane_run['lane']!r} by another process")
        Session.update(lane_run={"lane": lane.name, "cluster_job_id": token, "state": "submitting",
                                 "kill_requested": False, "message": "", "submitted_at": time.time(),
                                 "updated_at": utcnow().isoformat(timespec="seconds")}).where(
            Session.id == s.id).execute()
        events.record(project, "project")
    sdir = session_dir(project, s)
    try:
        values = _script_values(lane, project, s, sdir)
        cid = tracker.submit_script(lane, sdir, values, project.uid, s.uid)
    except CryodeskError as exc:
        _update(project, s, token=token, state="failed", cluster_job_id=None,
                message=f"not submitted to lane {lane.name!r}: {exc}")
        raise
    _update(project, s, token=token, only=("submitting",), cluster_job_id=cid, state="launched",
            message=f"submitted to lane {lane.name!r} as cluster job {cid}")
    return get_session(project, s.uid)


def _script_values(lane: Lane, project, session: Session, sdir: Path) -> dict:
    cfg = lane.config
    ldir = sdir / tracker.LANE_DIR
    values = {"num_cpu": cfg.get("num_cpu", 1), "ram_gb": cfg.get("ram_gb", 1), "num_gpu": 0,
              "job_dir_abs": str(sdir), "project_dir_abs": str(Path(project.directory).resolve()),
              "run_cmd": tracker.node_command(lane, f"worker run-session {project.uid} {session.uid} --restore"),
              "project_uid": project.uid, "job_uid": session.uid, "job_type": "session_restore",
              "job_title": templates.one_line(f"restore of {session.uid}"
                                              + (f" ({session.title})" if session.title else "")),
              "job_log_path_abs": str(ldir / tracker.OUT_NAME), "exit_code_file": str(ldir / tracker.EXIT_NAME),
              "lane_name": lane.name, "worker": cfg.get("worker") or ""}
    templates.check_custom_vars(cfg.get("vars"), f"lane {lane.name!r}")  # also a config edited by hand
    values.update(cfg.get("vars") or {})
    return {k: str(v) for k, v in values.items()}  # control characters are refused when rendered


# -- the node ---------------------------------------------------------------------------
def node_begin(project, session) -> None:
    """The node's cryodesk takes the restore (compare-and-swap); Refused if it was killed or ended meanwhile."""
    project = get_project(project)
    s = get_session(project, session)
    cid = os.environ.get("SLURM_JOB_ID")
    run = _update(project, s, only=("launched", "started", "submitting"), state="running",
                  host=socket.gethostname(), pid=os.getpid(),
                  message="running on " + socket.gethostname() + (f" (cluster job {cid})" if cid else ""))
    if run is None or run.get("kill_requested"):
        state = (_fresh(s).lane_run or {}).get("state", "not submitted")
        raise Refused(f"{project.uid} {s.uid}", f"its lane restore is {state}; nothing to run")


def node_end(project, session, state: str, message: str) -> None:
    assert state in ENDED_STATES
    _update(get_project(project), session, only=ACTIVE_STATES, state=state, message=message)


# -- following and killing ----------------------------------------------------------------
def _exit_record(sdir: Path, since: float) -> int | None:
    path = sdir / tracker.LANE_DIR / tracker.EXIT_NAME
    try:
        if path.is_symlink() or path.stat().st_mtime < since - 1:
            return None  # a link, or an earlier submission's record
        return int(path.read_text().strip().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _active_sessions(lane_name: str | None = None) -> list[Session]:
    rows = Session.select().where(Session.lane_run.is_null(False))
    return [s for s in rows if is_active(s) and (lane_name is None or s.lane_run.get("lane") == lane_name)]


def active_count(lane_name: str | None = None) -> int:
    """Session restores still active on SLURM lanes (the trackers poll while > 0)."""
    return len(_active_sessions(lane_name))


def sync(lane_name: str | None = None, report: tracker.SyncReport | None = None) -> tracker.SyncReport:
    """Follow the session restores on SLURM lanes with the scheduler (what :func:`cryodesk.core.lanes.sync`
    does for jobs); changes go to ``report.changed`` as ``(project uid, session uid, lane state)``."""
    report = report or tracker.SyncReport()
    by_lane: dict[str, list[Session]] = {}
    for s in _active_sessions(lane_name):
        if not str(s.lane_run.get("cluster_job_id") or "").startswith("submitting"):
            by_lane.setdefault(s.lane_run["lane"], []).append(s)
    for name, rows in sorted(by_lane.items()):
        lane = Lane.get_or_none(Lane.name == name)
        if lane is None:
            continue
        try:
            states = tracker.scheduler_states(lane)
        except CryodeskError as exc:  # unreachable: nothing is judged on no evidence
            report.errors.append(str(exc))
            continue
        for s in rows:
            run = s.lane_run
            cid = run["cluster_job_id"]
            state = states.get(cid)
            project = s.project
            if state in tracker.PENDING_STATES:
                continue
            if state in tracker.RUNNING_STATES:
                if _update(project, s, only=("launched",), token=cid, state="started",
                           message=f"cluster job {cid} is running") is not None:
                    report.changed.append((project.uid, s.uid, "started"))
                continue
            run = _fresh(s).lane_run or {}
            if run.get("state") not in ACTIVE_STATES or run.get("cluster_job_id") != cid:
                continue
            if run.get("kill_requested") or state == "CANCELLED":
                ended, message = "killed", f"cluster job {cid} cancelled (lane {name!r})"
            else:
                code = _exit_record(session_dir(project, s), float(run.get("submitted_at") or 0))
                where = f"{s.directory}/{tracker.LANE_DIR}/{tracker.OUT_NAME}"
                said = f" ({state})" if state else ""
                ended = "failed"
                message = (f"cluster job {cid}{said} ended with exit status {code} before cryodesk recorded how "
                           f"the restore ended; see {where}" if code is not None else
                           f"cluster job {cid} vanished from the scheduler{said} with no exit record; see {where}")
            if _update(project, s, only=ACTIVE_STATES, token=cid, state=ended, message=message) is not None:
                report.changed.append((project.uid, s.uid, ended))
    return report


def kill(project, session) -> str:
    """Kill the session's restore on its SLURM lane (the lane's cancel command, e.g. scancel).

    Returns ``"killed"`` (the node had not taken it) or ``"requested"`` (the node's cryodesk gets the
    scheduler's SIGTERM and stops; :func:`sync` records it).  The session stays *restoring*.
    """
    project = get_project(project)
    s = get_session(project, session)
    run = s.lane_run or {}
    if not is_active(s):
        raise Refused(f"{project.uid} {s.uid}", "no restore of it is active on a lane")
    lane = get_lane(run["lane"])
    cid = run.get("cluster_job_id")
    before = _update(project, s, only=ACTIVE_STATES, kill_requested=True)
    if before is None:
        return "ended"
    if cid and str(cid).startswith("submitting"):
        return "requested"
    tracker.cancel(lane, cid, project.uid, s.uid)
    if _update(project, s, only=("launched", "started"), token=cid, state="killed",
               message=f"killed by the user before it ran (lane {lane.name!r}, cluster job {cid} cancelled)"):
        return "killed"
    return "requested"
