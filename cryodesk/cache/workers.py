"""Services behind ``cryodesk worker connect`` and ``cryodesk project set-default`` (database writes).

The GUI's worker dialog and the CLI call these, never SQL of their own.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path

from cryodesk.base.errors import NotFound, UsageError
from cryodesk.core import manifest, registry
from cryodesk.core.projects import get_project
from cryodesk.db.models import Worker, db

from .config import DEFAULT_RESERVE_MB

__all__ = ["connect_worker", "list_workers", "get_worker", "worker_dict", "set_project_default"]


def _check_ssd_path(path: str) -> str:
    p = Path(path).expanduser()
    if not p.is_absolute():
        raise UsageError(f"--ssdpath must be an absolute path, got {path!r}")
    if not p.is_dir():
        raise UsageError(f"SSD path {p} does not exist or is not a directory")
    if not os.access(p, os.W_OK | os.X_OK):
        raise UsageError(f"SSD path {p} is not writable by this user")
    return str(p)


def connect_worker(name: str | None = None, *, ssd_path: str | None = None, quota_mb: int | None = None,
                   reserve_mb: int | None = None, no_ssd: bool = False, update: bool = False,
                   hostname: str | None = None, settings: dict | None = None) -> Worker:
    """Register worker ``name`` (default: this host) or, with ``update``, change its SSD settings.

    Only the settings given change on update.  ``no_ssd`` disables the cache
    (the path is kept, so re-enabling needs only ``--ssdpath``).  ``settings``
    may set ``cache_num_threads``, ``cache_lifetime_days``,
    ``cache_subset_threshold`` and ``cache_fsync`` (environment variables win).
    """
    known = {"cache_num_threads": int, "cache_lifetime_days": float, "cache_subset_threshold": float,
             "cache_fsync": bool}
    settings = {k: v for k, v in (settings or {}).items() if v is not None}
    for k, v in settings.items():
        if k not in known:
            raise UsageError(f"unknown worker setting {k!r} (known: {', '.join(known)})")
        if known[k] is not bool and v < (1 if k == "cache_num_threads" else 0):
            raise UsageError(f"worker setting {k} must be {'at least 1' if k == 'cache_num_threads' else '>= 0'}")
    name = name or socket.gethostname()
    if no_ssd and (ssd_path or quota_mb is not None or reserve_mb is not None):
        raise UsageError("--nossd cannot be combined with --ssdpath, --ssdquota or --ssdreserve")
    for label, v in (("--ssdquota", quota_mb), ("--ssdreserve", reserve_mb)):
        if v is not None and v < 0:
            raise UsageError(f"{label} must be zero or more (MB), got {v}")
    with db.atomic():
        row = Worker.get_or_none(Worker.name == name)
        if row is not None and not update:
            raise UsageError(f"worker {name!r} is already connected; add --update to change its settings")
        if row is None and update:
            raise NotFound(f"no worker {name!r} to update (connect it first, without --update)")
        if row is None:
            if not ssd_path and not no_ssd:
                raise UsageError("give --ssdpath PATH (with optional --ssdquota/--ssdreserve) or --nossd")
            row = Worker(name=name, hostname=hostname or name, ssd_reserve_mb=DEFAULT_RESERVE_MB)
        if ssd_path:
            row.ssd_path = _check_ssd_path(ssd_path)
            row.no_ssd = False
        if quota_mb is not None:
            row.ssd_quota_mb = quota_mb or None  # 0 = no quota beyond the disk
        if reserve_mb is not None:
            row.ssd_reserve_mb = reserve_mb
        if no_ssd:
            row.no_ssd = True
        if settings:
            row.settings = {**(row.settings or {}), **settings}
        row.save()
    return row


def list_workers() -> list[Worker]:
    return list(Worker.select().order_by(Worker.name))


def get_worker(name: str | None = None) -> Worker:
    name = name or socket.gethostname()
    row = Worker.get_or_none(Worker.name == name)
    if row is None:
        raise NotFound(f"no worker {name!r} (connect it with: cryodesk worker connect --ssdpath PATH)")
    return row


def worker_dict(w: Worker) -> dict:
    return {"name": w.name, "hostname": w.hostname, "ssd_path": w.ssd_path, "ssd_quota_mb": w.ssd_quota_mb,
            "ssd_reserve_mb": w.ssd_reserve_mb, "no_ssd": w.no_ssd, "settings": w.settings or {}}


def _param_for(key: str) -> registry.Param:
    from .staging import CACHE_PARAM

    if key == CACHE_PARAM.name:  # known even before any job type declares it
        return CACHE_PARAM
    for jt in registry.all_types():
        for p in jt.params:
            if p.name == key:
                return p
    raise UsageError(f"no job type has a parameter {key!r}")


def set_project_default(project, key: str, value=None, unset: bool = False) -> dict:
    """Set (or unset) the project-wide default of job parameter ``key``; returns all defaults.

    Stored in ``project.settings["job_defaults"]`` (and so in project.json);
    a job whose own value of ``key`` is unset (None) uses it.
    """
    project = get_project(project)
    settings = dict(project.settings or {})
    defaults = dict(settings.get("job_defaults") or {})
    if unset:
        if key not in defaults:
            raise UsageError(f"{project.uid} has no default for {key!r}")
        defaults.pop(key)
    else:
        param = _param_for(key)
        coerced = param.coerce(value)
        if coerced is None:
            raise UsageError(f"a default for {key!r} needs a value (use --unset to remove it)")
        defaults[key] = coerced
    settings["job_defaults"] = defaults
    with db.atomic():
        project.settings = settings
        project.save()
        manifest.write_project(project)
    return defaults
