"""Cache configuration: which SSD, how much of it, and the tunables.

Every field is a setting of :mod:`cryodesk.base.settings` (the README's
settings table lists them with their environment variables), resolved with
the one precedence: the environment (a cluster script pointing jobs at a
node-local scratch directory that only exists while the job runs), then the
worker's row (``cryodesk worker connect``, ``cryodesk settings set ...
--worker``), then the user's settings file, then the default.
:class:`CacheConfig` is the resolved view.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from cryodesk.base import settings
from cryodesk.base.errors import UsageError

__all__ = ["CacheConfig", "MB", "reserve_advice", "resolve_config", "worker_name"]

MB = 1_000_000  # the CLI's MB are decimal, as CryoSPARC's --ssdquota/--ssdreserve are
DEFAULT_RESERVE_MB = settings.default("ssd_reserve_mb")


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
    space_wait_s : float
        When the SSD is full but other running jobs hold cached files that
        would make room once they finish, wait this long for them (the guide:
        the job "will try to free up space as soon as it can"), then read from
        the project directory.  0: never wait.
    worker : str
        Name of the worker whose settings these are.
    source : str
        The levels the settings came from, highest first (``"environment,
        worker"``; ``"default"`` when nothing was set), for messages.
    sources : dict
        The level of each setting (``{"ssd_path": "environment", ...}``).
    """

    ssd_path: Path | None
    quota_bytes: int | None = None
    reserve_bytes: int = DEFAULT_RESERVE_MB * MB
    threads: int = 2
    lifetime_days: float = 30.0
    subset_threshold: float = 0.5
    space_wait_s: float = 600.0
    worker: str = ""
    enabled: bool = True
    fsync: bool = True
    source: str = "default"
    sources: dict = field(default_factory=dict, compare=False)

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


#: the reserve suggested when there is none: this share of the SSD, at most SUGGEST_MAX_MB
SUGGEST_FRACTION = 0.05
SUGGEST_MAX_MB = 10_000


def reserve_advice(ssd_path, reserve_bytes: int, worker: str | None = None) -> str:
    """A suggestion when the SSD has no reserve (the guide's default), else ``""``.

    The cache may then fill the SSD up to its last byte: fine on a disk of
    its own, not when other programs write there too.
    """
    if reserve_bytes or not ssd_path:
        return ""
    import os

    try:
        vfs = os.statvfs(ssd_path)
        mb = max(1, min(SUGGEST_MAX_MB, int(vfs.f_blocks * vfs.f_frsize * SUGGEST_FRACTION // MB)))
    except OSError:
        mb = SUGGEST_MAX_MB
    who = f" --worker {worker}" if worker else ""
    return (f"no reserve: the cache may fill the SSD completely. If other programs use this SSD too, "
            f"we suggest keeping some space free, e.g. {mb:,} MB ({mb * MB / 1e9:.1f} GB, "
            f"{SUGGEST_FRACTION:.0%} of it at most {SUGGEST_MAX_MB:,} MB): "
            f"cryodesk worker connect{who} --update --ssdreserve {mb}")


def worker_name() -> str:
    """This process's worker name: setting ``worker`` (``$CRYODESK_WORKER``, else the host name)."""
    return settings.resolve("worker")


#: CacheConfig field <- setting
_FIELDS = {"ssd_path": "ssd_path", "quota_bytes": "ssd_quota_mb", "reserve_bytes": "ssd_reserve_mb",
           "threads": "cache_num_threads", "lifetime_days": "cache_lifetime_days",
           "subset_threshold": "cache_subset_threshold", "fsync": "cache_fsync", "enabled": "no_ssd",
           "space_wait_s": "cache_space_wait_s"}


def worker_level(name: str) -> dict:
    """The worker row's values, or ``{}`` without a usable database (a job body on a cluster node)."""
    try:
        from cryodesk.core.settings_service import worker_values
        from cryodesk.db.models import Worker, db

        if db.obj is None:
            return {}
        if db.is_closed():  # connection_context() would close a caller's open connection
            with db.connection_context():
                return worker_values(Worker.get_or_none(Worker.name == name))
        return worker_values(Worker.get_or_none(Worker.name == name))
    except Exception:  # noqa: BLE001 - no usable database: the other levels only
        return {}


def resolve_config(worker: str | None = None, *, use_db: bool = True, environ=None,
                   user=None) -> CacheConfig:
    """The cache configuration of ``worker`` (default: this one), every field through the settings.

    Parameters
    ----------
    worker : str, optional
        Worker name; default :func:`worker_name`.
    use_db : bool
        Read the worker's row when a database is open; a job body running
        without one (tests, a cluster node) still gets the other levels.
    environ, user : mapping, optional
        The environment and user levels (default: ``os.environ`` and the
        user's settings file), for tests.
    """
    name = worker or worker_name()
    row = worker_level(name) if use_db else {}
    if user is None:
        user = settings.read_user_settings()
    found = {s: settings.lookup(s, worker=row, user=user, environ=environ,
                                labels={"worker": f"worker {name}"}) for s in _FIELDS.values()}
    (path, path_level), (no_ssd, _) = found["ssd_path"], found["no_ssd"]
    quota, reserve = found["ssd_quota_mb"][0], found["ssd_reserve_mb"][0]
    levels = [lv for lv in settings.LEVELS if lv != "default" and any(v[1] == lv for v in found.values())]
    return CacheConfig(
        ssd_path=Path(path) if path else None,
        quota_bytes=quota * MB if quota is not None else None, reserve_bytes=reserve * MB,
        threads=found["cache_num_threads"][0], lifetime_days=found["cache_lifetime_days"][0],
        subset_threshold=found["cache_subset_threshold"][0], fsync=found["cache_fsync"][0],
        space_wait_s=found["cache_space_wait_s"][0], worker=name,
        # a path from the environment (node-local scratch) also re-enables a --nossd worker:
        # the job script said explicitly where the SSD is
        enabled=path_level == "environment" or not no_ssd,
        source=", ".join(levels) or "default",
        sources={f: found[s][1] for f, s in _FIELDS.items()})
