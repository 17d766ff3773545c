"""``cryodesk worker run-job P J``: run one job on a cluster node (or any host) against the shared database.

The SLURM lane's submission script calls this.  It takes the job (owner: this
process, compare-and-swap so a job never runs twice), runs its body in a
thread through :func:`cryodesk.core.runner.run_job` — the same code the app's
engine runs — and meanwhile, from the main thread, stamps heartbeats (so a
node that dies has its job marked killed once they stop), picks up kill
requests from the database and turns SIGTERM/SIGINT (what ``scancel`` sends)
into a cancel: the job ends *killed*, with its partial output handled as its
type declares.  The SSD cache is the node's: the worker named ``--worker``,
else the setting ``worker`` (``$CRYODESK_WORKER``, else the host name).
No Qt here.
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

from .. import db as dbmod
from ..base.errors import CryodeskError, NotFound, Refused
from ..core import lifecycle, runner
from ..core.jobs import get_job, refresh
from ..core.projects import get_project
from .scheduler import ensure_job_types

POLL_S = 0.5


def run_lane_job(project_uid: str, job_uid: str, worker: str | None = None, log=print):
    """Run job ``job_uid`` of ``project_uid`` here; returns it in its final state.

    Raises :class:`Refused` if the job is not waiting to run (already running elsewhere,
    killed meanwhile, ...).
    """
    if worker:
        os.environ["CRYODESK_WORKER"] = worker  # the cache resolves its SSD for this worker
    ensure_job_types()
    project = get_project(project_uid)
    job = get_job(project, job_uid)
    owner = lifecycle.new_owner()
    lifecycle.engine_alive(owner)
    try:
        if not lifecycle.take_lane_job(job, owner):
            fresh = refresh([job])[0]
            raise Refused(job.uid, f"it is {fresh.status}" + (f" ({fresh.error})" if fresh.error else "")
                          + "; nothing to run")
        return _run_owned(project, job, owner, log)
    finally:
        lifecycle.engine_alive(owner, False)


def _run_owned(project, job, owner: dict, log):
    cancel = threading.Event()
    result: dict = {}

    def body() -> None:
        with dbmod.db.connection_context():
            try:
                result["job"] = runner.run_job(project.uid, job.uid, cancel_event=cancel)
            except Refused as exc:  # an input changed since it was submitted: say so in the job
                result["job"] = lifecycle.end_unrun(job.id, "failed", f"not run: {exc.reason}")
            except BaseException as exc:  # noqa: BLE001 - recorded below, never a silent "running"
                result["error"] = exc

    def on_signal(signum, _frame) -> None:
        log(f"worker: signal {signum}: cancelling {project.uid} {job.uid}")
        cancel.set()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    thread = threading.Thread(target=body, name=f"run-job {project.uid} {job.uid}", daemon=True)
    thread.start()
    last_beat = time.monotonic()
    try:
        while thread.is_alive():
            thread.join(POLL_S)
            if time.monotonic() - last_beat >= lifecycle.HEARTBEAT_INTERVAL:
                last_beat = time.monotonic()
                lifecycle.heartbeat([job.id], owner)
            if not cancel.is_set() and lifecycle.kill_requested([job.id]):
                log(f"worker: kill requested: cancelling {project.uid} {job.uid}")
                cancel.set()
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    if "error" in result:
        exc = result["error"]
        log(f"worker: {project.uid} {job.uid}: {type(exc).__name__}: {exc}")  # (the detail: the worker's log)
        why = str(exc) if isinstance(exc, CryodeskError) else \
            f"cryodesk could not run or record it: an internal error ({type(exc).__name__}); details in the worker's log"
        lifecycle.end_if_active(job.id, why, statuses=("launched", "started", "running"))
    fresh = refresh([job])
    if not fresh:
        raise NotFound(f"{project.uid} {job.uid} was deleted while it ran; its result was not recorded")
    lifecycle.release(fresh[0])
    return fresh[0]


def run_lane_session(project_uid: str, session_uid: str, restore: bool = True, worker: str | None = None,
                     log=print) -> tuple[str, str]:
    """``cryodesk worker run-session P S --restore``: run a live session's restore on a cluster node.

    The session's lane record is taken (compare-and-swap; :class:`Refused` if it
    was killed or ended meanwhile), then :func:`cryodesk.engine.live.run_session`
    runs it here exactly as ``cryodesk session restore`` does on a workstation;
    SIGTERM (``scancel``) or a kill requested in the database (``session kill``,
    should the cancel command not reach the node) stops it with the session
    still *restoring*, so the next restore continues.  Returns ``(lane state, message)``.
    """
    from ..core import sessions
    from ..core.sessions import lane_run
    from .live import run_session

    if worker:
        os.environ["CRYODESK_WORKER"] = worker
    project = get_project(project_uid)
    session = sessions.get_session(project, session_uid)
    lane_run.node_begin(project, session)
    try:
        if restore:
            session = sessions.start_restore(project, session)
        why, errors = run_session(project, session, stop_requested=lambda: lane_run.kill_requested(session))
    except BaseException as exc:
        lane_run.node_end(project, session, "failed", f"{type(exc).__name__}: {exc}")
        raise
    session = sessions.get_session(project, session_uid)
    if why == "interrupted":
        state, message = "killed", f"interrupted on the node; {session.uid} is still {session.status} and " \
                                   "the next restore continues"
    elif session.status == "completed" and not errors:
        state, message = "completed", f"restored on {socket.gethostname()}"
    else:
        state = "failed"
        message = "; ".join(errors) or session.error or f"stopped ({why}); it is {session.status}"
    lane_run.node_end(project, session, state, message)
    log(f"worker: {project.uid} {session.uid}: {state} ({message})")
    return state, message
