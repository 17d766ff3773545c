"""Where each level of the settings is stored, read and written (``cryodesk settings``).

:mod:`cryodesk.base.settings` knows the settings and which level wins; this
service knows where the stored levels live:

========  ====================================================================
job       ``Job.settings[name]``; for a ``job_param`` setting
          (``cache_particles``) the job's parameter of that name instead
project   ``Project.settings[name]`` (kept in ``project.json``).  Projects
          from before one settings module kept ``cache_particles`` in
          ``Project.settings["job_defaults"]``: read as a fallback; a write
          moves the value to the new place
worker    the ``Worker`` row: columns ``ssd_path``, ``ssd_quota_mb``,
          ``ssd_reserve_mb``, ``no_ssd``; every other setting in ``Worker.settings``
user      ``settings.json`` in the user's config directory
========  ====================================================================

Project and job writes read their row inside the write transaction they
write in, rewrite the manifest and record a change event there too, so a
window sees the change exactly when it commits.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..base import settings
from ..base.dburl import redact
from ..base.errors import NotFound, UsageError
from ..db import lock_rows, write_transaction
from ..db.models import Job, Project, Worker
from . import events, manifest, registry
from .guard import project_write
from .projects import get_project

__all__ = ["check_ssd_path", "effective", "job_values", "project_values", "set_job_values", "set_setting",
           "settings_view", "unset_setting", "worker_row", "worker_values"]

#: worker-level settings kept in columns of their own (v3); the rest live in ``Worker.settings``
WORKER_COLUMNS = ("ssd_path", "ssd_quota_mb", "ssd_reserve_mb", "no_ssd")
LEGACY_PROJECT_KEY = "job_defaults"


def project_values(project) -> dict:
    """The values set at the project level (legacy ``job_defaults`` under the new place)."""
    stored = get_project(project).settings or {}
    legacy = stored.get(LEGACY_PROJECT_KEY) or {}
    out = {k: v for k, v in legacy.items() if k in settings.SETTINGS} if isinstance(legacy, dict) else {}
    out.update((k, v) for k, v in stored.items() if k != LEGACY_PROJECT_KEY)
    return out


def job_values(job: Job) -> dict:
    """The values set at the job level: ``Job.settings``, and the params of ``job_param`` settings."""
    out = {k: v for k, v in (job.settings or {}).items()
           if k not in settings.SETTINGS or not settings.SETTINGS[k].job_param}
    for s in settings.SETTINGS.values():
        if s.job_param and (job.params or {}).get(s.name) is not None:
            out[s.name] = job.params[s.name]
    return out


def worker_values(row: Worker | None) -> dict:
    """The values set at the worker level by row ``row`` (``{}`` for None)."""
    if row is None:
        return {}
    out = dict(row.settings or {})
    out.update((c, getattr(row, c)) for c in WORKER_COLUMNS)
    return out


def worker_row(worker=None, required: bool = False) -> Worker | None:
    """Worker ``worker`` (a row or a name; None: this process's worker, setting ``worker``)."""
    if isinstance(worker, Worker):
        return Worker.get_by_id(worker.id)
    name = worker or settings.resolve("worker")
    row = Worker.get_or_none(Worker.name == name)
    if row is None and (required or worker):
        raise NotFound(f"no worker {name!r} (connect it with: cryodesk worker connect --worker {name} "
                       "--ssdpath PATH | --nossd)")
    return row


def _targets(project=None, job=None, worker=None):
    """``(project row, job row, worker row)`` from uids or rows; a job implies its project."""
    from .jobs import get_job

    if job is not None and project is None:
        if not isinstance(job, Job):
            raise UsageError(f"job {job!r} needs its project (P1 J5)")
        project = job.project
    # always the stored rows: a caller's objects may be older than the last write
    project = Project.get_by_id(get_project(project).id) if project is not None else None
    job = Job.get_by_id(get_job(project, job).id) if job is not None else None
    return project, job, worker_row(worker)


def _levels(project, job, worker, user):
    values = {"job": job_values(job) if job is not None else {},
              "project": project_values(project) if project is not None else {},
              "worker": worker_values(worker), "user": user}
    labels = {"user": str(settings.user_settings_path()), "worker": f"worker {worker.name}" if worker else "",
              "project": f"project {project.uid}" if project else "",
              "job": f"{project.uid} {job.uid}" if job is not None else ""}
    return values, labels


def effective(name: str, *, project=None, job=None, worker=None, environ=None) -> tuple:
    """``(value, level)`` of setting ``name`` for ``job`` of ``project`` on ``worker`` (None: this worker)."""
    project, job, worker = _targets(project, job, worker)
    values, labels = _levels(project, job, worker, settings.read_user_settings())
    return settings.lookup(name, environ=environ, labels=labels, **values)


def settings_view(project=None, job=None, worker=None, environ=None) -> dict:
    """Every setting with its value and the level it came from, for ``job`` of ``project`` on ``worker``.

    Returns
    -------
    dict
        ``settings``: one dict per setting (``name``, ``value``, ``level``,
        ``kind``, ``default``, ``env``, ``levels`` where it may be set,
        ``values`` set at each level, ``help``; ``error`` instead of a value
        when the winning value is unusable); ``problems``: every stored
        value that is unknown, at the wrong level or of the wrong type;
        ``precedence``.
    """
    environ = os.environ if environ is None else environ
    project, job, worker = _targets(project, job, worker)
    values, labels = _levels(project, job, worker, settings.read_user_settings())
    rows, problems = [], []
    for level in settings.STORED_LEVELS:
        # a job's params are not settings: only the ones a job_param setting names are in job_values
        problems += settings.problems(level, values[level], labels[level] or level)
    for s in settings.SETTINGS.values():
        set_at = {lv: values[lv][s.name] for lv in s.levels if values[lv].get(s.name) is not None}
        if s.env and (environ.get(s.env) or "").strip():
            set_at = {"environment": environ[s.env], **set_at}
        row = {"name": s.name, "kind": s.kind, "default": s.default_value(), "env": s.env,
               "levels": list(s.levels), "values": set_at, "help": s.help}
        try:
            row["value"], row["level"] = settings.lookup(s.name, environ=environ, labels=labels, **values)
        except UsageError as exc:
            row.update(value=None, level=None, error=str(exc))
        if s.name == "db_url":  # shown, never its password (issue 20)
            row["values"] = {lv: redact(str(v)) for lv, v in row["values"].items()}
            row["value"] = redact(str(row["value"])) if row.get("value") is not None else None
        rows.append(row)
    return {"settings": rows, "problems": problems, "precedence": settings.PRECEDENCE}


def check_ssd_path(path: str, label: str = "setting 'ssd_path'") -> str:
    """``path`` if it is an absolute, existing, writable directory (the SSD cache goes inside it)."""
    p = Path(path).expanduser()
    if not p.is_absolute():
        raise UsageError(f"{label} must be an absolute path, got {path!r}")
    if not p.is_dir():
        raise UsageError(f"SSD path {p} does not exist or is not a directory")
    if not os.access(p, os.W_OK | os.X_OK):
        raise UsageError(f"SSD path {p} is not writable by this user")
    return str(p)


def _uid(x) -> str:
    return str(getattr(x, "uid", None) or getattr(x, "name", None) or x)


def _checked(level: str, name: str) -> settings.Setting:
    if level not in settings.STORED_LEVELS:
        raise UsageError(f"unknown settings level {level!r} (levels: {', '.join(settings.STORED_LEVELS)})")
    s = settings.SETTINGS.get(name)
    if s is None:
        known = ", ".join(x.name for x in settings.settable_at(level)) or "none"
        raise UsageError(f"unknown {level} setting {name!r} (settings per {level}: {known})")
    if level not in s.levels:
        raise UsageError(f"setting {name!r} cannot be set per {level}: it may be set {settings.where_settable(s)}")
    return s


def set_setting(level: str, name: str, value, *, project=None, job=None, worker=None):
    """Set ``name`` at ``level`` (job, project, worker, user); returns the value stored.

    ``value`` may be a string (``"false"``, ``"500"``); it is converted to the
    setting's type.  A setting that may not be set at ``level``, or a bad
    value, is a :class:`~cryodesk.base.errors.UsageError` naming the setting.
    """
    s = _checked(level, name)
    where = {"job": f"job {_uid(job)} of {_uid(project)}", "project": f"project {_uid(project)}",
             "worker": f"worker {_uid(worker) if worker else settings.resolve('worker')}",
             "user": f"user settings {settings.user_settings_path()}"}[level]
    new = settings.coerce(name, value, where)
    if new is None:
        raise UsageError(f"setting {name!r} needs a value (unset it instead)")
    if name == "ssd_path":
        new = check_ssd_path(new)
    _write(level, s, new, project, job, worker)
    return new


def unset_setting(level: str, name: str, *, project=None, job=None, worker=None) -> None:
    """Remove ``name`` from ``level``: the next level down decides again."""
    _write(level, _checked(level, name), None, project, job, worker)


def _write(level, s, new, project, job, worker) -> None:
    if level == "user":
        data = settings.read_user_settings()
        if new is None:
            data.pop(s.name, None)
        else:
            data[s.name] = new
        settings.write_user_settings(data)
    elif level == "worker":
        _write_worker(worker, s.name, new)
    elif level == "project":
        if project is None:
            raise UsageError(f"setting {s.name!r} per project needs the project")
        _write_project(project, s, new)
    else:
        if project is None or job is None:
            raise UsageError(f"setting {s.name!r} per job needs the project and the job")
        _write_job(project, job, s, new)


def _write_worker(worker, name, new) -> None:
    with write_transaction():
        row = worker_row(worker, required=True)
        lock_rows(Worker, [row.id])
        row = Worker.get_by_id(row.id)
        if name in WORKER_COLUMNS:
            # the columns are NOT NULL where a default exists: unset stores the default
            setattr(row, name, new if new is not None or name in ("ssd_path", "ssd_quota_mb")
                    else settings.default(name))
            row.save(only=[getattr(Worker, name)])
        else:
            stored = dict(row.settings or {})
            if new is None:
                stored.pop(name, None)
            else:
                stored[name] = new
            Worker.update(settings=stored).where(Worker.id == row.id).execute()


def _write_project(project, s, new) -> None:
    project_in = project
    project = get_project(project)
    with project_write(project):
        current = Project.get_by_id(project.id)
        stored = dict(current.settings or {})
        legacy = dict(stored.get(LEGACY_PROJECT_KEY) or {})
        legacy.pop(s.name, None)  # the old place (before one settings module) is read, never written
        if new is None:
            stored.pop(s.name, None)
        else:
            stored[s.name] = new
        if legacy:
            stored[LEGACY_PROJECT_KEY] = legacy
        else:
            stored.pop(LEGACY_PROJECT_KEY, None)
        # only this column: a caller's Project object may hold stale counters
        Project.update(settings=stored).where(Project.id == project.id).execute()
        current.settings = stored
        manifest.write_project(current)
        events.record(current, "project")
    if isinstance(project_in, Project):
        project_in.settings = stored


def _write_job(project, job, s, new) -> None:
    from .jobs import get_job, set_params

    project = get_project(project)
    row = get_job(project, job)
    if s.job_param:  # the job's parameter: set_params applies the rules (frozen when final...)
        set_params(project, row, {s.name: new})
        return
    # the project row first, then the job's: the order every guarded writer takes (no deadlocks)
    with project_write(project, [row.id]):
        row = Job.get_by_id(row.id)
        stored = dict(row.settings or {})
        if new is None:
            stored.pop(s.name, None)
        else:
            stored[s.name] = new
        Job.update(settings=stored).where(Job.id == row.id).execute()
        row.settings = stored
        manifest.write_job(row, Path(project.directory))
        events.record(project, "updated", [row])


def set_job_values(project, job, values: dict):
    """``cryodesk job set-param``: parameters of ``job``, and job-level settings among ``values``.

    A name that is a setting with a job level of its own (``delete_intermediate``:
    :func:`cryodesk.core.jobs.split_job_settings`) becomes the job's setting, at
    any status (it says what happens when the job completes, not how it
    computes); the rest are parameters, under the parameters' rules.  Returns
    the job as stored now.
    """
    from .jobs import get_job, set_params, split_job_settings

    project = get_project(project)
    row = get_job(project, job)
    params, own = split_job_settings(registry.get(row.type), values)
    if params:
        row = set_params(project, row, params)
    for key, value in own.items():
        set_setting("job", key, value, project=project, job=row)
    return Job.get_by_id(row.id)
