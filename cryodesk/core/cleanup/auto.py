"""Project settings of the cleanup tool and what happens when a job finishes.

``delete_intermediate`` (a setting of :mod:`cryodesk.base.settings`, per
job, project or user; default on as in CryoSPARC 4.3): when a job *completes*, every
version but the last of each output group is removed, except versions
another job reads.  Killed and failed jobs keep theirs (after "mark as
complete" they are the job's usable outputs).
"""

from __future__ import annotations

import logging
from pathlib import Path

from ...base import settings
from ...base.errors import CryodeskError
from ...db.models import Job
from .. import deletion, manifest, settings_service
from ..deletion import DeletionPlan
from ..projects import get_project
from ..sizes import intermediate_versions, record_job_size

log = logging.getLogger(__name__)

#: the settings this tool owns: name -> (type, default, help), from :mod:`cryodesk.base.settings`
PROJECT_SETTINGS = {name: (settings.get(name).kind, settings.default(name), settings.get(name).help)
                    for name in ("delete_intermediate",)}


def get_project_setting(project, key: str):
    """The value of setting ``key`` for ``project`` (the project's, else the user's, else the default)."""
    return settings_service.effective(key, project=project)[0]


def project_settings(project) -> dict:
    """The value of each of :data:`PROJECT_SETTINGS` for ``project``."""
    return {k: get_project_setting(project, k) for k in PROJECT_SETTINGS}


def set_project_setting(project, key: str, value) -> object:
    """Set ``key`` for ``project`` (``"true"`` is converted); kept in project.json too."""
    return settings_service.set_setting("project", key, value, project=project)


def set_job_setting(project, job, key: str, value) -> None:
    """Set ``key`` for ``job`` (overriding the project's); ``value=None`` removes the override."""
    if value is None:
        settings_service.unset_setting("job", key, project=project, job=job)
    else:
        settings_service.set_setting("job", key, value, project=project, job=job)


def effective_setting(project, job: Job, key: str):
    """The value of setting ``key`` for ``job`` (environment > job > project > user > default)."""
    return settings_service.effective(key, project=project, job=job)[0]


def on_job_finished(project, job, manifest_written: bool = False) -> dict | None:
    """Called by the runner after a job ends: record its size; auto-delete intermediate results.

    ``manifest_written``: the runner has just written ``job.json`` with the
    size it recorded; it is not written again when the measured size is that
    one (the same bytes: an import's manifest lists thousands of outputs).
    Never raises (a finished job stays finished); returns what was removed,
    or None.
    """
    try:
        project = get_project(project)
        job = Job.get_by_id(job.id)
        recorded = job.size_bytes
        if record_job_size(project, job) != recorded or not manifest_written:
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
    item = deletion.versions_item(Path(project.directory), job, groups, reason, {"allow_ancestor": True})
    results = deletion.execute(project, DeletionPlan(project.uid, [item]))
    r = results[0] if results else None
    return {"uid": job.uid, "ok": bool(r and r.ok), "bytes": r.bytes if r and r.ok else 0,
            "message": r.message if r else "", "versions": groups}


def on_project_open(project) -> dict:
    """What to run (in a worker) when a project is created, attached or opened.

    Finishes what a process that died left (:func:`cryodesk.core.recovery.recover_project`:
    a deletion half-done, jobs still "running", unfinished temp files), then
    measures the project if it never was (a new project, or a database from
    before sizes existed).  Returns :func:`~cryodesk.core.sizes.size_summary`
    plus ``recovered`` (journal items replayed), ``killed`` and ``temp_files``.
    """
    from ..recovery import recover_project
    from ..sizes import ensure_project_size

    project = get_project(project)
    recovered = recover_project(project)
    out = ensure_project_size(project)
    out["recovered"] = len(recovered.deletions)
    out["killed"] = [j.uid for j in recovered.killed]
    out["temp_files"] = recovered.temp_files
    return out
