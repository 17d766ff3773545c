"""Send jobs to a lane and follow them there (Qt-free; the engine's timer, the CLI and tests call it).

Why the scheduler's own commands and not a library: the lane must run
commands the user can edit (a site's ``sbatch`` wrapper, ``squeue`` options)
and through a prefix (``ssh login-node``) from a workstation that is not a
submit host; psij-python submits through its own executors on this host only.
Three short commands per lane and a parse of ``id|STATE`` lines are all that
is needed, and they work the same on any Slurm (and on other schedulers with
other templates).

States: cryodesk *queued* (waiting for its parents; not submitted) ->
*launched* (submitted: the scheduler has it, pending) -> *started* (the
scheduler runs it, cryodesk's body has not begun) -> *running* (``cryodesk
worker run-job`` on the node runs the body and records the end itself) ->
completed / failed / killed.  When the scheduler no longer runs a job that the
database still has active, :func:`sync` ends it: *killed* if it was cancelled,
else *failed* with the exit status from the script's exit-code file, or
"vanished from the scheduler with no exit record".  Everything is read from
the database and the scheduler, so an app that restarts re-attaches by simply
calling :func:`sync` again.
"""

from __future__ import annotations

import logging
import re
import shlex
import socket
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from cryodesk._runtime import foreign_env

from ... import db as dbmod
from ...base.errors import CryodeskError, UsageError
from ...base.fsio import atomic_write, current_umask
from ...db.models import ACTIVE_STATUSES, Job, Lane, db, utcnow
from .. import lifecycle
from ..fsutil import check_job_dir, require_project_dir
from ..jobs import get_jobs, refresh, set_status
from ..projects import get_project
from . import templates
from .service import default_cryodesk_cmd, get_lane

log = logging.getLogger("cryodesk.lanes")
LANE_DIR = "lane"  # J<n>/lane/: the submission script, the scheduler's output, the exit-code file
SCRIPT_NAME, OUT_NAME, EXIT_NAME = "submit.sh", "slurm.out", "exit_code"
COMMAND_TIMEOUT = 60.0
#: scheduler states of a job that has not ended (anything else, or absence, means it ended)
PENDING_STATES = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD",
                  "SUSPENDED", "STOPPED", "SIGNALING", "STAGE_OUT", "RESIZING"}
RUNNING_STATES = {"RUNNING", "COMPLETING"}
_SUBMITTING = "submitting:"


@dataclass
class SendResult:
    """What :func:`send` did: jobs queued on the lane, submitted now, and refused ones with reasons."""

    lane: str
    queued: list = field(default_factory=list)
    submitted: list = field(default_factory=list)
    refused: list = field(default_factory=list)  # (uid, message)


@dataclass
class SyncReport:
    submitted: list = field(default_factory=list)  # (project uid, job uid, cluster id)
    changed: list = field(default_factory=list)  # (project uid, job uid, new status)
    errors: list = field(default_factory=list)  # messages (a lane's command failed)


# -- commands ------------------------------------------------------------------------

def _run(lane: Lane, key: str, values: dict, cwd: str | None = None) -> str:
    """Run the lane's ``key`` command; its stdout, or a CryodeskError naming the lane and the command."""
    cfg = lane.config
    command = templates.render(cfg[key], values, quote=True)
    try:
        argv = templates.command_argv(cfg.get("prefix"), command)
    except ValueError as exc:  # a lane config edited by hand: unbalanced quotes in the prefix or command
        raise CryodeskError(f"lane {lane.name!r}: the {key} command {command!r}"
                            + (f" with the prefix {cfg.get('prefix')!r}" if cfg.get("prefix") else "")
                            + f" cannot be split into words: {exc}; fix it with 'cryodesk lane add "
                            f"{lane.name} --replace ...'") from None
    shown = " ".join(shlex.quote(a) for a in argv)
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=COMMAND_TIMEOUT, cwd=cwd,
                              stdin=subprocess.DEVNULL, env=foreign_env())  # (sbatch passes it on to the job)
    except FileNotFoundError:
        raise CryodeskError(f"lane {lane.name!r}: {argv[0]!r} not found (the {key} command: {shown})") from None
    except subprocess.TimeoutExpired:
        raise CryodeskError(f"lane {lane.name!r}: the {key} command did not answer in "
                            f"{COMMAND_TIMEOUT:.0f} s: {shown}") from None
    if proc.returncode != 0:
        err = (proc.stderr or proc.stdout).strip().splitlines()
        raise CryodeskError(f"lane {lane.name!r}: the {key} command failed (exit {proc.returncode}): {shown}"
                            + (f": {err[-1]}" if err else ""))
    return proc.stdout


def scheduler_states(lane: Lane) -> dict[str, str]:
    """``{cluster job id: STATE}`` for the jobs the lane's status command lists."""
    out = {}
    for line in _run(lane, "status", {}).splitlines():
        parts = [p.strip() for p in line.strip().split("|")]
        if len(parts) >= 2 and parts[0]:
            out[parts[0]] = parts[1].split()[0].upper() if parts[1] else ""
    return out


# -- sending ---------------------------------------------------------------------------

def _node_db_url(lane: Lane) -> str:
    """The URL a node opens: the lane's ``db_url``, else the database this process has open."""
    if lane.config.get("db_url"):
        return lane.config["db_url"]
    obj = dbmod.db.obj
    if obj is not None and "sqlite" in type(obj).__name__.lower():
        return str(Path(obj.database).resolve())
    if obj is not None and "postgres" in type(obj).__name__.lower():
        from urllib.parse import quote

        params = dict(obj.connect_params)
        auth = quote(str(params.get("user") or ""), safe="")
        if params.get("password"):
            auth += ":" + quote(str(params["password"]), safe="")
        host = params.get("host") or "localhost"
        port = f":{params['port']}" if params.get("port") else ""
        return f"postgresql://{auth + '@' if auth else ''}{host}{port}/{obj.database}"
    return dbmod.resolve_url(None)


def node_command(lane: Lane, args: str) -> str:
    """The command line that runs ``cryodesk <args>`` on the lane's node, against the shared database."""
    cfg = lane.config
    cmd = cfg.get("cryodesk_cmd") or default_cryodesk_cmd()
    worker = cfg.get("worker") or ""
    return (f"{cmd} --db {shlex.quote(_node_db_url(lane))} {args}"
            + (f" --worker {shlex.quote(worker)}" if worker else ""))


def script_values(lane: Lane, project, job: Job, job_vars: dict | None = None) -> dict:
    """The submission script's variables for ``job`` on ``lane`` (custom ones included)."""
    cfg = lane.config
    pdir = Path(project.directory).resolve()
    jdir = pdir / job.directory
    worker = cfg.get("worker") or ""
    run_cmd = node_command(lane, f"worker run-job {project.uid} {job.uid}")
    values = {"num_cpu": cfg.get("num_cpu", 1), "ram_gb": cfg.get("ram_gb", 1), "num_gpu": 0,
              "job_dir_abs": str(jdir), "project_dir_abs": str(pdir), "run_cmd": run_cmd,
              "project_uid": project.uid, "job_uid": job.uid, "job_type": job.type,
              "job_title": templates.one_line(job.title or ""),
              "job_log_path_abs": str(jdir / LANE_DIR / OUT_NAME),
              "exit_code_file": str(jdir / LANE_DIR / EXIT_NAME), "lane_name": lane.name, "worker": worker}
    templates.check_custom_vars(cfg.get("vars"), f"lane {lane.name!r}")  # also a config edited by hand
    templates.check_custom_vars(job_vars, f"job {project.uid} {job.uid} on lane {lane.name!r}")
    values.update(cfg.get("vars") or {})
    values.update(job_vars or {})
    return values


def script_path(project, job: Job) -> Path:
    return Path(project.directory) / job.directory / LANE_DIR / SCRIPT_NAME


def send(project, jobs, lane_name: str, job_vars: dict | None = None) -> SendResult:
    """Queue ``jobs`` on lane ``lane_name`` (checked as :func:`lifecycle.plan_queue` does).

    A SLURM lane's jobs whose parents are complete are submitted at once; the
    others when :func:`sync` finds them ready.  ``job_vars`` (custom script
    variables) are kept with each job (its settings) for its submission.
    """
    project = get_project(project)
    lane = get_lane(lane_name)
    if lane.type == "local":
        raise UsageError(f"lane {lane.name!r} is local: run the jobs with the app or 'cryodesk job run'")
    if job_vars:
        templates.check_custom_vars(job_vars, f"lane {lane.name!r}: --var")
    if lane.type == "slurm":
        known = set(templates.SCRIPT_VARIABLES) | set(lane.config.get("vars") or {}) | set(job_vars or {})
        templates.check(lane.config["script"], known, f"lane {lane.name!r}: the submission script")
    plan = lifecycle.plan_queue(project, get_jobs(project, jobs))
    result = SendResult(lane.name, refused=list(plan.refused))
    queued = lifecycle.mark_queued(plan.jobs, lane=lane.name)
    if job_vars:
        for job in queued:
            job.settings = {**(job.settings or {}), "lane_vars": dict(job_vars)}
            job.save(only=[Job.settings])
    result.queued = queued
    if lane.type == "slurm":
        report = sync(lane.name)
        result.submitted = [(p, j, c) for p, j, c in report.submitted if p == project.uid]
    return result


def _submit(lane: Lane, job: Job) -> str:
    """Submit one queued job (claimed for submission by the caller); returns the cluster id."""
    project = job.project
    pdir = require_project_dir(project.directory)
    jdir = check_job_dir(pdir, job.directory)
    jdir.mkdir(exist_ok=True)
    values = script_values(lane, project, job, (job.settings or {}).get("lane_vars"))
    return submit_script(lane, jdir, values, project.uid, job.uid)


def submit_script(lane: Lane, item_dir: Path, values: dict, project_uid: str, item_uid: str) -> str:
    """Render the lane's script into ``item_dir/lane/submit.sh`` and submit it; returns the cluster id.

    ``item_dir`` is a job's (or a live session's) own directory, already checked to be inside its project.
    """
    ldir = item_dir / LANE_DIR
    if ldir.is_symlink():
        raise CryodeskError(f"{ldir} is a symbolic link; cryodesk does not write through it")
    ldir.mkdir(exist_ok=True)
    script = templates.render_script(lane.config["script"], values, f"lane {lane.name!r}: the submission script")
    path = ldir / SCRIPT_NAME
    # executable as the umask allows; owner-only when it carries the database password (in run_cmd)
    secret = dbmod.has_password(_node_db_url(lane))
    atomic_write(path, script, mode=0o700 & ~current_umask() if secret else 0o777 & ~current_umask())
    out = _run(lane, "submit", {"script_path_abs": str(path), "job_dir_abs": str(item_dir),
                                "project_uid": project_uid, "job_uid": item_uid, "cluster_job_id": ""},
               cwd=str(item_dir))
    first = out.strip().splitlines()[0] if out.strip() else ""
    match = re.search(r"(\d+)", first.split(";")[0])
    if not match:
        raise CryodeskError(f"lane {lane.name!r}: no job id in the submit command's output {out.strip()!r}")
    return match.group(1)


def cancel(lane: Lane, cid: str, project_uid: str = "", item_uid: str = "") -> None:
    """Run the lane's cancel command for cluster job ``cid`` (a CryodeskError if it fails)."""
    _run(lane, "cancel", {"cluster_job_id": cid, "script_path_abs": "", "job_dir_abs": "",
                          "project_uid": project_uid, "job_uid": item_uid})


def _submit_ready(lane: Lane, report: SyncReport) -> None:
    _fail_interrupted_submissions(lane, report)
    waiting = list(Job.select().where((Job.lane == lane.name) & (Job.status == "queued")
                                      & Job.cluster_job_id.is_null()))
    if not waiting:
        return
    judged = lifecycle.readiness_many([j.id for j in waiting])
    for job in waiting:
        verdict, why = judged[job.id]
        if verdict in ("failed", "killed"):
            lifecycle.end_unrun(job, verdict, why)
            report.changed.append((job.project.uid, job.uid, verdict))
            continue
        if verdict != "ready" or not lifecycle.may_write(job.project_id):
            continue
        token = f"{_SUBMITTING}{int(time.time())}:{uuid.uuid4().hex[:8]}"
        # compare-and-swap: two processes following the lane never submit one job twice
        n = (Job.update(cluster_job_id=token).where((Job.id == job.id) & (Job.status == "queued")
                                                     & Job.cluster_job_id.is_null()).execute())
        if n != 1:
            continue
        try:
            cid = _submit(lane, job)
        except CryodeskError as exc:
            Job.update(cluster_job_id=None).where(Job.id == job.id).execute()
            lifecycle.end_unrun(job, "failed", f"not submitted to lane {lane.name!r}: {exc}")
            report.changed.append((job.project.uid, job.uid, "failed"))
            continue
        with db.atomic():
            n = Job.update(cluster_job_id=cid).where((Job.id == job.id) & (Job.cluster_job_id == token)).execute()
            # compare-and-swap: the node may already have started it (then it is running, not launched)
            moved = n == 1 and Job.update(status="launched").where((Job.id == job.id)
                                                                    & (Job.status == "queued")).execute() == 1
            fresh = Job.get_by_id(job.id)
            if moved:
                set_status(fresh, "launched", write=False)  # its history and change event
        if fresh.status in ("killed", "failed"):  # killed while it was being submitted: take it back
            _cancel_quietly(lane, cid)
        report.submitted.append((job.project.uid, job.uid, cid))
        report.changed.append((job.project.uid, job.uid, fresh.status))


def _fail_interrupted_submissions(lane: Lane, report: SyncReport) -> None:
    """A process that died between claiming a job for submission and recording its cluster id leaves
    ``submitting:<time>:…``: after twice the command timeout the job fails, saying what to check."""
    q = Job.select().where((Job.lane == lane.name) & (Job.status == "queued")
                           & Job.cluster_job_id.startswith(_SUBMITTING))
    for job in q:
        try:
            since = int(job.cluster_job_id.split(":")[1])
        except (IndexError, ValueError):
            since = 0
        if time.time() - since < 2 * COMMAND_TIMEOUT:
            continue
        n = Job.update(cluster_job_id=None).where((Job.id == job.id)
                                                  & (Job.cluster_job_id == job.cluster_job_id)).execute()
        if n == 1:
            lifecycle.end_unrun(job, "failed", f"its submission to lane {lane.name!r} was interrupted; the "
                                               f"cluster may have it: look for cryodesk_{job.project.uid}_{job.uid} "
                                               "in its queue")
            report.changed.append((job.project.uid, job.uid, "failed"))


def _cancel_quietly(lane: Lane, cid: str) -> None:
    try:
        _run(lane, "cancel", {"cluster_job_id": cid, "script_path_abs": "", "job_dir_abs": "",
                              "project_uid": "", "job_uid": ""})
    except CryodeskError as exc:
        log.warning("%s", exc)


# -- following -------------------------------------------------------------------------

def _exit_record(job: Job) -> int | None:
    path = Path(job.project.directory) / job.directory / LANE_DIR / EXIT_NAME
    try:
        if path.is_symlink():
            return None
        return int(path.read_text().strip().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _end_vanished(lane: Lane, job: Job, state: str | None) -> str:
    cid = job.cluster_job_id
    where = f"{job.directory}/{LANE_DIR}/{OUT_NAME}"
    if job.kill_requested_at is not None or state == "CANCELLED":
        status, error = "killed", f"cancelled on the cluster (lane {lane.name!r}, job {cid})"
        if job.kill_requested_at is not None:
            status, error = "killed", f"killed by the user (lane {lane.name!r}, job {cid} cancelled)"
    else:
        code = _exit_record(job)
        said = f" ({state})" if state else ""
        if code is not None:
            status, error = "failed", (f"the cluster job {cid}{said} ended with exit status {code} before cryodesk "
                                       f"recorded how the job ended; see {where}")
        else:
            status, error = "failed", (f"the cluster job {cid} vanished from the scheduler{said} with no exit "
                                       f"record; see {where}")
    lifecycle.mark_interrupted(job, status, error)
    return status


def _follow(lane: Lane, report: SyncReport) -> None:
    jobs = list(Job.select().where((Job.lane == lane.name) & Job.status.in_(ACTIVE_STATUSES)
                                   & Job.cluster_job_id.is_null(False)))
    jobs = [j for j in jobs if not j.cluster_job_id.startswith(_SUBMITTING)]
    if not jobs:
        return
    try:
        states = scheduler_states(lane)
    except CryodeskError as exc:  # the cluster is unreachable: nothing is judged on no evidence
        report.errors.append(str(exc))
        return
    for job in jobs:
        state = states.get(job.cluster_job_id)
        fresh = Job.get_by_id(job.id)
        if fresh.status not in ACTIVE_STATUSES or fresh.cluster_job_id != job.cluster_job_id:
            continue
        if not lifecycle.may_write(fresh.project_id):
            continue
        if state in PENDING_STATES:
            continue
        owner = lifecycle.owner_of(fresh)
        if state in RUNNING_STATES:
            if fresh.status == "launched":
                n = Job.update(status="started").where((Job.id == fresh.id) & (Job.status == "launched")).execute()
                if n == 1:
                    fresh.status = "launched"
                    set_status(fresh, "started", write=False)
                    report.changed.append((fresh.project.uid, fresh.uid, "started"))
            elif owner and lifecycle.owner_alive(owner) is False:  # the node's process died (or its heartbeats)
                if fresh.kill_requested_at is not None:
                    error = f"killed by the user (lane {lane.name!r}, job {fresh.cluster_job_id} cancelled)"
                elif owner.get("host") == socket.gethostname():
                    error = lifecycle.INTERRUPTED
                else:
                    error = lifecycle.INTERRUPTED_REMOTE
                lifecycle.mark_interrupted(fresh, "killed", error)
                report.changed.append((fresh.project.uid, fresh.uid, "killed"))
            continue
        if owner and lifecycle.owner_alive(owner):
            continue  # the node's process is still recording its end
        status = _end_vanished(lane, fresh, state)
        report.changed.append((fresh.project.uid, fresh.uid, status))


def sync(lane_name: str | None = None) -> SyncReport:
    """One pass over the SLURM lanes (or ``lane_name``): submit what is ready, follow what was submitted."""
    report = SyncReport()
    q = Lane.select().where(Lane.type == "slurm")
    if lane_name:
        q = q.where(Lane.name == lane_name)
    for lane in q.order_by(Lane.name):
        try:
            _submit_ready(lane, report)
        except CryodeskError as exc:
            report.errors.append(str(exc))
        _follow(lane, report)
    return report


def lane_jobs_active(lane_name: str | None = None) -> int:
    """How many jobs on SLURM lanes (or ``lane_name``) are still active (the trackers poll while > 0)."""
    names = [n for (n,) in Lane.select(Lane.name).where(Lane.type == "slurm").tuples()]
    if lane_name:
        names = [n for n in names if n == lane_name]
    if not names:
        return 0
    return Job.select().where(Job.lane.in_(names) & Job.status.in_(ACTIVE_STATUSES)).count()


def on_slurm_lane(project, job) -> bool:
    """Is ``job`` active on a SLURM lane with a cluster job (so killing it runs the lane's cancel command)?"""
    job = get_jobs(get_project(project), [job])[0]
    if not job.lane or not job.cluster_job_id or job.status not in ACTIVE_STATUSES:
        return False
    return Lane.select().where((Lane.name == job.lane) & (Lane.type == "slurm")).exists()


def kill(project, job) -> str:
    """Kill ``job`` wherever it runs: on a SLURM lane the scheduler's cancel command is called too.

    Returns ``"killed"`` (it had not started its body: it is killed now) or ``"requested"``.
    """
    project = get_project(project)
    job = get_jobs(project, [job])[0]
    lane = Lane.get_or_none(Lane.name == job.lane) if job.lane else None
    cid = job.cluster_job_id
    if lane is None or lane.type != "slurm" or not cid or job.status not in ACTIVE_STATUSES:
        return lifecycle.request_kill(project, job)
    if cid.startswith(_SUBMITTING):
        return lifecycle.request_kill(project, job)  # the submitter cancels it when it sees the kill
    if job.status in ("launched", "started"):
        n = Job.update(status="killed").where((Job.id == job.id) & Job.status.in_(("launched", "started"))
                                              ).execute()
        _run(lane, "cancel", {"cluster_job_id": cid, "script_path_abs": "", "job_dir_abs": "",
                              "project_uid": project.uid, "job_uid": job.uid})
        if n == 1:
            lifecycle.end_unrun(job, "killed", f"killed by the user before it ran (lane {lane.name!r}, "
                                               f"job {cid} cancelled)")
            return "killed"
        job = refresh([job])[0]  # the node took it meanwhile: it is running; ask it to stop too
    outcome = lifecycle.request_kill(project, job)
    _run(lane, "cancel", {"cluster_job_id": cid, "script_path_abs": "", "job_dir_abs": "",
                          "project_uid": project.uid, "job_uid": job.uid})
    return outcome


def job_lane_info(project, job) -> dict | None:
    """What the inspector shows of a job sent to a lane: lane, kind, cluster id, script (None: no lane)."""
    project = get_project(project)
    job = get_jobs(project, [job])[0]
    if not job.lane:
        return None
    lane = Lane.get_or_none(Lane.name == job.lane)
    path = script_path(project, job)
    try:
        script = path.read_text(errors="replace") if path.is_file() and not path.is_symlink() else ""
    except OSError:
        script = ""
    cid = job.cluster_job_id if job.cluster_job_id and not job.cluster_job_id.startswith(_SUBMITTING) else None
    return {"lane": job.lane, "type": lane.type if lane else "(removed)", "cluster_job_id": cid,
            "script_path": str(path) if script else None, "script": script,
            "script_rel": f"{job.directory}/{LANE_DIR}/{SCRIPT_NAME}" if script else None}


def lane_status(lane_name: str) -> dict:
    """A lane's health for the UI: reachable?, its active jobs by status, the last error."""
    lane = get_lane(lane_name)
    counts: dict[str, int] = {}
    for (status,) in Job.select(Job.status).where((Job.lane == lane.name)
                                                  & Job.status.in_(ACTIVE_STATUSES)).tuples():
        counts[status] = counts.get(status, 0) + 1
    out = {"name": lane.name, "type": lane.type, "jobs": counts, "ok": True, "message": "",
           "checked_at": utcnow().isoformat(timespec="seconds")}
    if lane.type == "slurm":
        try:
            n = len(scheduler_states(lane))
            out["message"] = f"scheduler answered ({n} job(s) listed)"
        except CryodeskError as exc:
            out["ok"], out["message"] = False, str(exc)
    elif lane.type == "worker":
        out["message"] = "jobs wait for 'cryodesk worker run --lane " + lane.name + "' on " + \
            (lane.config.get("host") or "the worker host")
    return out


__all__ = ["EXIT_NAME", "LANE_DIR", "OUT_NAME", "PENDING_STATES", "RUNNING_STATES", "SCRIPT_NAME", "SendResult",
           "SyncReport", "cancel", "job_lane_info", "kill", "lane_jobs_active", "lane_status", "node_command",
           "on_slurm_lane", "scheduler_states", "script_path", "script_values", "send", "submit_script", "sync"]
