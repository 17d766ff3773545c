"""Project settings of the cleanup tool and what happens when a job finishes.

``delete_intermediate`` (project setting, default on as in CryoSPARC 4.3;
a job may override it in ``Job.settings``): when a job *completes*, every
version but the last of each output group is removed, except versions
another job reads.  Killed and failed jobs keep theirs (after "mark as
complete" they are the job's usable outputs).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ...base.errors import CryodeskError, UsageError
from ...db.models import Job, Project, db
from .. import deletion, manifest
from ..deletion import DeletionPlan
from ..projects import get_project
from ..registry import _parse_bool
from ..sizes import intermediate_versions, record_job_size

log = logging.getLogger(__name__)

#: project settings this tool owns: name -> (type, default, help)
PROJECT_SETTINGS = {
    "delete_intermediate": ("bool", True, "delete intermediate results automatically when a job completes"),
}


def _coerce(key: str, value):
    kind = PROJECT_SETTINGS[key][0]
    if kind == "bool":
        try:
            return _parse_bool(value) if isinstance(value, str) else bool(value)
        except ValueError:
            raise UsageError(f"setting {key!r} takes true or false, got {value!r}") from None
    return value


def _check_key(key: str) -> None:
    if key not in PROJECT_SETTINGS:
        known = ", ".join(sorted(PROJECT_SETTINGS))
        raise UsageError(f"unknown project setting {key!r} (known: {known})")


def get_project_setting(project, key: str):
    """The project's value of ``key`` (its default when never set)."""
    _check_key(key)
    project = get_project(project)
    return (project.settings or {}).get(key, PROJECT_SETTINGS[key][1])


def project_settings(project) -> dict:
    """Every known setting with its current value (defaults filled in)."""
    project = get_project(project)
    return {k: (project.settings or {}).get(k, d[1]) for k, d in PROJECT_SETTINGS.items()}


def set_project_setting(project, key: str, value) -> object:
    """Set project setting ``key`` (a string like ``"true"`` is converted); kept in project.json too."""
    _check_key(key)
    project = get_project(project)
    new = _coerce(key, value)
    with db.atomic():
        # update the one column: a caller's Project object may hold stale counters
        current = Project.get_by_id(project.id)
        settings = dict(current.settings or {})
        settings[key] = new
        Project.update(settings=settings).where(Project.id == project.id).execute()
        current.settings = project.settings = settings
        manifest.write_project(current)
    return new


def set_job_setting(project, job, key: str, value) -> None:
    """Per-job override of a project setting; ``value=None`` removes the override."""
    from ..jobs import get_job

    _check_key(key)
    project = get_project(project)
    job = Job.get_by_id(get_job(project, job).id)
    settings = dict(job.settings or {})
    if value is None:
        settings.pop(key, None)
    else:
        settings[key] = _coerce(key, value)
    Job.update(settings=settings).where(Job.id == job.id).execute()


def effective_setting(project, job: Job, key: str):
    """The job's override of ``key`` if it has one, else the project's value."""
    if key in (job.settings or {}):
        return job.settings[key]
    return get_project_setting(project, key)


def on_job_finished(project, job) -> dict | None:
    """Called by the runner after a job ends: record its size; auto-delete intermediate results.

    Never raises (a finished job stays finished); returns what was removed,
    or None.
    """
    try:
        project = get_project(project)
        job = Job.get_by_id(job.id)
        record_job_size(project, job)
        manifest.write_job(job, Path(project.directory))
        if job.status != "completed" or not effective_setting(project, job, "delete_intermediate"):
            return None
        return delete_intermediate_now(project, job, "deleted automatically when the job completed")
    except CryodeskError as exc:  # e.g. the project lock is busy: the planner offers it later
        log.warning("%s: intermediate results kept: %s", job.uid, exc)
    except OSError as exc:
        log.warning("%s: intermediate results kept: %s", job.uid, exc.strerror or exc)
    except Exception:  # a bug here must not turn a finished job into a crash of the runner
        log.exception("%s: recording size / deleting intermediate results failed", job.uid)
    return None


def delete_intermediate_now(project, job: Job, reason: str = "deleted on request") -> dict | None:
    """Remove ``job``'s intermediate results at once (journaled); versions other jobs read are kept."""
    from ...db.models import Connection

    inter = intermediate_versions(project, [job.id]).get(job.id)
    if not inter:
        return None
    used = {(o, v) for o, v in Connection.select(Connection.output, Connection.version).where(
        (Connection.parent == job.id) & Connection.version.is_null(False)).tuples()}
    groups: dict[str, list[int]] = {}
    for group, v in sorted(inter):
        if (group, v) not in used:
            groups.setdefault(group, []).append(v)
    if not groups:
        return None
    item = deletion.versions_item(Path(project.directory), job, groups, reason, {"allow_ancestor": False})
    results = deletion.execute(project, DeletionPlan(project.uid, [item]))
    r = results[0] if results else None
    return {"uid": job.uid, "ok": bool(r and r.ok), "bytes": r.bytes if r and r.ok else 0,
            "message": r.message if r else "", "versions": groups}


def on_project_open(project) -> dict:
    """What to run (in a worker) when a project is created, attached or opened.

    Rolls forward any deletion a crashed process left half-done, then
    measures the project if it never was (a new project, or a database from
    before sizes existed).  Returns :func:`~cryodesk.core.sizes.size_summary`
    plus ``recovered`` (journal items replayed).
    """
    from ..sizes import ensure_project_size

    project = get_project(project)
    recovered = deletion.recover(project)
    out = ensure_project_size(project)
    out["recovered"] = len(recovered)
    return out
