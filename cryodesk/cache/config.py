"""Cache configuration: which SSD, how much of it, and the tunables.

A worker's SSD settings live in the database (:class:`cryodesk.db.Worker`,
written by ``cryodesk worker connect``); environment variables override them
for one process, which is how a cluster script points jobs at a node-local
scratch directory that only exists while the job runs:

=====================================  ==========================================
``CRYODESK_SSD_PATH``                  SSD cache directory (overrides the worker's)
``CRYODESK_SSD_QUOTA_MB``              most the cache may hold
``CRYODESK_SSD_RESERVE_MB``            free space always left on the SSD
``CRYODESK_CACHE_NUM_THREADS``         copy threads (default 2; 1 = sequential)
``CRYODESK_SSD_CACHE_LIFETIME_DAYS``   unused entries older than this are purged (30)
``CRYODESK_CACHE_SUBSET_THRESHOLD``    subset-aware caching when the particles used are
                                       at most this fraction of their stacks' bytes (0.5)
``CRYODESK_CACHE_FSYNC``              0 = skip the fsync before a copy is renamed into
                                       place (faster; a power cut may leave a bad file)
``CRYODESK_WORKER``                    worker name (default: this host's name)
=====================================  ==========================================
"""

from __future__ import annotations

import os
import socket
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from cryodesk.base.errors import UsageError

__all__ = ["CacheConfig", "MB", "resolve_config", "worker_name", "env_overrides"]

MB = 1_000_000  # the CLI's MB are decimal, as CryoSPARC's --ssdquota/--ssdreserve are
DEFAULT_RESERVE_MB = 10_000


@dataclass(frozen=True)
class CacheConfig:
    """Everything the cache needs to know about where it may write.

    Attributes
    ----------
    ssd_path : Path or None
        Directory on the SSD; the cache lives in ``ssd_path/cryodesk_cache``.
        ``None`` (or ``enabled`` false) means this worker has no cache.
    quota_bytes : int or None
        Most the cache may hold (None: limited by the disk and reserve only).
    reserve_bytes : int
        Free space always left on the SSD's file system.
    threads : int
        Copy threads.
    lifetime_days : float
        Entries not used for this long are purged.
    fsync : bool
        ``fsync`` each copy before renaming it into place.  Killed jobs never
        leave a partial file either way (the rename comes last); the fsync
        guards against a power cut or kernel crash, and costs the time to
        write the data to the disk (``cp -r`` does not wait for that).
    subset_threshold : float
        Cache only the particles used (packed stacks) when their bytes are at
        most this fraction of the bytes of the stacks they come from.
    worker : str
        Name of the worker whose settings these are.
    source : str
        Where the settings came from (``"database"``, ``"environment"``...), for messages.
    """

    ssd_path: Path | None
    quota_bytes: int | None = None
    reserve_bytes: int = DEFAULT_RESERVE_MB * MB
    threads: int = 2
    lifetime_days: float = 30.0
    subset_threshold: float = 0.5
    worker: str = ""
    enabled: bool = True
    fsync: bool = True
    source: str = "default"

    @property
    def root(self) -> Path:
        """The cache's own directory: nothing outside it is ever written or deleted."""
        if self.ssd_path is None:
            raise UsageError("no SSD cache is configured for this worker")
        return Path(self.ssd_path) / "cryodesk_cache"

    @property
    def usable(self) -> bool:
        return self.enabled and self.ssd_path is not None

    def to_dict(self) -> dict:
        d = asdict(self)
        d["ssd_path"] = str(self.ssd_path) if self.ssd_path else None
        return d


def worker_name() -> str:
    """This process's worker name: ``$CRYODESK_WORKER`` or the host name."""
    return os.environ.get("CRYODESK_WORKER") or socket.gethostname()


def _env_number(name: str, kind, default, minimum=None):
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise UsageError(f"environment variable {name}={raw!r} is not a {kind.__name__}") from None
    if minimum is not None and value < minimum:
        raise UsageError(f"environment variable {name}={raw!r} must be at least {minimum}")
    return value


def env_overrides(cfg: CacheConfig) -> CacheConfig:
    """``cfg`` with the ``CRYODESK_*`` environment variables applied."""
    changes: dict = {}
    path = os.environ.get("CRYODESK_SSD_PATH")
    if path:
        # A dynamic path (node-local scratch) also re-enables a --nossd worker:
        # the job script said explicitly where the SSD is.
        changes.update(ssd_path=Path(path), enabled=True, source="environment")
    quota = _env_number("CRYODESK_SSD_QUOTA_MB", int, None, 0)
    if quota is not None:
        changes["quota_bytes"] = quota * MB
    reserve = _env_number("CRYODESK_SSD_RESERVE_MB", int, None, 0)
    if reserve is not None:
        changes["reserve_bytes"] = reserve * MB
    changes["threads"] = _env_number("CRYODESK_CACHE_NUM_THREADS", int, cfg.threads, 1)
    changes["lifetime_days"] = _env_number("CRYODESK_SSD_CACHE_LIFETIME_DAYS", float, cfg.lifetime_days, 0)
    changes["subset_threshold"] = _env_number("CRYODESK_CACHE_SUBSET_THRESHOLD", float,
                                              cfg.subset_threshold, 0)
    changes["fsync"] = bool(_env_number("CRYODESK_CACHE_FSYNC", int, int(cfg.fsync), 0))
    return replace(cfg, **changes)


def _from_worker(row) -> CacheConfig:
    settings = row.settings or {}
    return CacheConfig(
        ssd_path=Path(row.ssd_path) if row.ssd_path else None,
        quota_bytes=row.ssd_quota_mb * MB if row.ssd_quota_mb is not None else None,
        reserve_bytes=(row.ssd_reserve_mb if row.ssd_reserve_mb is not None else DEFAULT_RESERVE_MB) * MB,
        threads=int(settings.get("cache_num_threads", 2)),
        lifetime_days=float(settings.get("cache_lifetime_days", 30.0)),
        subset_threshold=float(settings.get("cache_subset_threshold", 0.5)),
        fsync=bool(settings.get("cache_fsync", True)),
        worker=row.name, enabled=not row.no_ssd, source="database")


def resolve_config(worker: str | None = None, *, use_db: bool = True) -> CacheConfig:
    """The cache configuration of ``worker`` (default: this one), environment applied.

    Reads the worker's row when a database is open; a job body running
    without one (tests, a cluster node) still gets the environment's settings.
    """
    name = worker or worker_name()
    cfg = CacheConfig(ssd_path=None, worker=name)
    if use_db:
        try:
            from cryodesk.db.models import Worker, db

            if db.obj is not None:
                if db.is_closed():  # connection_context() would close a caller's open connection
                    with db.connection_context():
                        row = Worker.get_or_none(Worker.name == name)
                else:
                    row = Worker.get_or_none(Worker.name == name)
                if row is not None:
                    cfg = _from_worker(row)
        except Exception:  # noqa: BLE001 - no usable database: environment settings only
            pass
    return env_overrides(cfg)
