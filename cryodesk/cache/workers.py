"""Services behind ``cryodesk worker connect`` and ``cryodesk project set-default`` (database writes).

Worker-level settings go through :mod:`cryodesk.core.settings_service` like every other level.

The GUI's worker dialog and the CLI call these, never SQL of their own.
"""

from __future__ import annotations

from cryodesk.base import settings as base_settings
from cryodesk.base.errors import NotFound, UsageError, require_utf8
from cryodesk.core.projects import get_project
from cryodesk.core.settings_service import WORKER_COLUMNS, check_ssd_path, project_values, set_setting, unset_setting
from cryodesk.db import write_transaction
from cryodesk.db.models import Worker

from .config import DEFAULT_RESERVE_MB

__all__ = ["connect_worker", "list_workers", "get_worker", "worker_dict", "set_project_default"]


def connect_worker(name: str | None = None, *, ssd_path: str | None = None, quota_mb: int | None = None,
                   reserve_mb: int | None = None, no_ssd: bool = False, update: bool = False,
                   hostname: str | None = None, settings: dict | None = None) -> Worker:
    """Register worker ``name`` (default: this host) or, with ``update``, change its SSD settings.

    Only the settings given change on update.  ``no_ssd`` disables the cache
    (the path is kept, so re-enabling needs only ``--ssdpath``).  ``settings``
    may set any other worker-level setting (``cache_num_threads``,
    ``cache_lifetime_days``, ``cache_subset_threshold``, ``cache_fsync``,
    ``cache_particles``), checked as ``cryodesk settings set`` checks them; the
    environment still wins over all of them.
    """
    given = {k: v for k, v in (settings or {}).items() if v is not None}
    checked = {}
    for k, v in given.items():
        s = base_settings.SETTINGS.get(k)
        if s is None or "worker" not in s.levels or k in WORKER_COLUMNS:
            known = ", ".join(x.name for x in base_settings.settable_at("worker") if x.name not in WORKER_COLUMNS)
            raise UsageError(f"unknown worker setting {k!r} (known: {known})")
        checked[k] = base_settings.coerce(k, v, "worker setting")
    name = require_utf8(name or base_settings.resolve("worker"), "the worker name")
    if ssd_path:
        require_utf8(str(ssd_path), "the SSD path")
    if no_ssd and (ssd_path or quota_mb is not None or reserve_mb is not None):
        raise UsageError("--nossd cannot be combined with --ssdpath, --ssdquota or --ssdreserve")
    for label, key, v in (("--ssdquota", "ssd_quota_mb", quota_mb), ("--ssdreserve", "ssd_reserve_mb", reserve_mb)):
        if v is not None:
            try:  # the setting's own checks: a whole number, at least 0, at most what a column holds
                base_settings.coerce(key, v, label)
            except UsageError:
                raise UsageError(f"{label} must be a whole number of MB from 0 to "
                                 f"{base_settings.MAX_NUMBER:,}, got {v}") from None
    with write_transaction():
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
            row.ssd_path = check_ssd_path(ssd_path, "--ssdpath")
            row.no_ssd = False
        if quota_mb is not None:
            row.ssd_quota_mb = quota_mb or None  # 0 = no quota beyond the disk
        if reserve_mb is not None:
            row.ssd_reserve_mb = reserve_mb
        if no_ssd:
            row.no_ssd = True
        if checked:
            row.settings = {**(row.settings or {}), **checked}
        row.save()
    return row


def list_workers() -> list[Worker]:
    return list(Worker.select().order_by(Worker.name))


def get_worker(name: str | None = None) -> Worker:
    name = name or base_settings.resolve("worker")
    row = Worker.get_or_none(Worker.name == name)
    if row is None:
        raise NotFound(f"no worker {name!r} (connect it with: cryodesk worker connect --ssdpath PATH)")
    return row


def worker_dict(w: Worker) -> dict:
    return {"name": w.name, "hostname": w.hostname, "ssd_path": w.ssd_path, "ssd_quota_mb": w.ssd_quota_mb,
            "ssd_reserve_mb": w.ssd_reserve_mb, "no_ssd": w.no_ssd, "settings": w.settings or {}}


def set_project_default(project, key: str, value=None, unset: bool = False) -> dict:
    """``cryodesk project set-default``: setting ``key`` per project (``cryodesk settings set --project``).

    Kept as an alias: the values are the project-level settings
    (:func:`cryodesk.core.settings_service.set_setting`).  Returns the project's
    values of the settings that are job parameters.
    """
    if unset:
        if key in base_settings.SETTINGS and project_values(project).get(key) is None:
            raise UsageError(f"{get_project(project).uid} has no value for {key!r}")
        unset_setting("project", key, project=project)
    else:
        set_setting("project", key, value, project=project)
    values = project_values(project)
    return {s.name: values[s.name] for s in base_settings.SETTINGS.values()
            if s.job_param and values.get(s.name) is not None}
