"""Every setting cryodesk has, typed, with one rule for which value wins.

Precedence, highest first (a level a setting does not have is skipped)::

    environment  >  job  >  project  >  worker  >  user  >  built-in default

* **environment**: ``CRYODESK_*`` variables, for one process (a cluster script
  pointing jobs at node-local scratch, a test);
* **job**: ``Job.settings`` (the user's per-job overrides; never runtime
  records), or the job's parameter of the same name for a setting marked
  ``job_param`` (``cache_particles``: a parameter of ``None`` is "not set");
* **project**: ``Project.settings`` (also kept in ``project.json``);
* **worker**: the worker's row (``cryodesk worker connect``);
* **user**: ``settings.json`` in the user's config directory;
* the **default** below.

This module is the bottom layer: it knows no database.  Callers hand it the
mappings of the levels they have (``resolve("delete_intermediate",
job=job.settings, project=project.settings)``); reading and writing the
stored levels is :mod:`cryodesk.core.settings_service`.  The README's table
of settings is :func:`markdown_table` (a test keeps them equal).

Not settings: the GUI's ``QSettings`` keep only window geometry and the last
scope shown (state of the interface, not choices about data or jobs), and
``NUMBA_CACHE_DIR`` belongs to numba (set by :mod:`cryodesk._runtime`).
"""

from __future__ import annotations

import json
import math
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from .errors import UsageError

#: the largest number a setting may hold (well inside a 64-bit database integer)
MAX_NUMBER = 10**15
LEVELS = ("environment", "job", "project", "worker", "user", "default")
#: the levels that are stored somewhere and may be written (environment and default are not)
STORED_LEVELS = ("job", "project", "worker", "user")
PRECEDENCE = "environment > job > project > worker > user > default"
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


@dataclass(frozen=True)
class Setting:
    """One setting: its type, default, where it may be set, and what it does."""

    name: str
    kind: str  # "bool" | "int" | "float" | "str" | "path"
    default: Any
    help: str
    env: str | None = None
    #: stored levels (of :data:`STORED_LEVELS`) where it may be set
    levels: tuple[str, ...] = ()
    minimum: float | None = None
    nullable: bool = False
    #: at the job level the value is the job's parameter of the same name
    job_param: bool = False

    def default_value(self):
        return self.default() if callable(self.default) else self.default


def _user_data(name: str) -> Callable[[], str]:
    def default() -> str:
        from platformdirs import user_data_dir

        return str(Path(user_data_dir("cryodesk", appauthor=False)) / name)

    return default


SETTINGS: dict[str, Setting] = {s.name: s for s in (
    Setting("db_url", "str", _user_data("cryodesk.sqlite"),
            "database: an SQLite path or postgresql://user@host/db (`--db` sets the environment variable)",
            env="CRYODESK_DB", levels=("user",)),
    Setting("delete_intermediate", "bool", True,
            "delete intermediate results (all but the last version) automatically when a job completes",
            levels=("job", "project", "user")),
    Setting("cache_particles", "bool", True, "jobs that read particles copy them to the SSD cache first",
            env="CRYODESK_CACHE_PARTICLES", levels=("job", "project", "worker", "user"), job_param=True),
    Setting("worker", "str", socket.gethostname, "this process's worker name", env="CRYODESK_WORKER"),
    Setting("ssd_path", "path", None, "SSD cache directory (the cache lives in `<path>/cryodesk_cache`); "
            "from the environment it also re-enables a `--nossd` worker",
            env="CRYODESK_SSD_PATH", levels=("worker",), nullable=True),
    Setting("no_ssd", "bool", False, "this worker has no SSD cache (`worker connect --nossd`)",
            levels=("worker",)),
    Setting("ssd_quota_mb", "int", None, "most the SSD cache may hold, MB (unset: the disk and reserve only)",
            env="CRYODESK_SSD_QUOTA_MB", levels=("worker",), minimum=0, nullable=True),
    Setting("ssd_reserve_mb", "int", 0, "free space always left on the SSD, MB (0: none, as the guide says for "
            "a path given alone; `worker connect` and `cache status` suggest one)",
            env="CRYODESK_SSD_RESERVE_MB", levels=("worker",), minimum=0),
    Setting("cache_num_threads", "int", 2, "SSD cache copy threads (1 = sequential)",
            env="CRYODESK_CACHE_NUM_THREADS", levels=("worker", "user"), minimum=1),
    Setting("cache_lifetime_days", "float", 30.0, "SSD cache entries unused this long are purged",
            env="CRYODESK_SSD_CACHE_LIFETIME_DAYS", levels=("worker", "user"), minimum=0),
    Setting("cache_subset_threshold", "float", 0.5,
            "cache only the particles used (packed stacks) when they are at most this fraction of their stacks",
            env="CRYODESK_CACHE_SUBSET_THRESHOLD", levels=("worker", "user"), minimum=0),
    Setting("cache_fsync", "bool", True,
            "fsync each cache copy before it is renamed into place (off: faster; a power cut may leave a bad file)",
            env="CRYODESK_CACHE_FSYNC", levels=("worker", "user")),
    Setting("cache_space_wait_s", "float", 600.0,
            "seconds a job waits for SSD space other running jobs hold before it reads from the project "
            "directory (0: never wait)", env="CRYODESK_CACHE_SPACE_WAIT_S", levels=("worker", "user"), minimum=0),
    Setting("disable_numba", "bool", False, "use the numpy reference of every numeric kernel",
            env="CRYODESK_DISABLE_NUMBA"),
    Setting("disable_f16c", "bool", False, "convert float16 output with numba or numpy instead of the CPU's "
            "F16C instruction (the same bits, slower)", env="CRYODESK_DISABLE_F16C"),
)}


def get(name: str) -> Setting:
    """The :class:`Setting` called ``name``; an unknown name is a :class:`UsageError` listing the known ones."""
    try:
        return SETTINGS[name]
    except KeyError:
        raise UsageError(f"unknown setting {name!r} (known: {', '.join(sorted(SETTINGS))})") from None


def settable_at(level: str) -> list[Setting]:
    """The settings that may be set at ``level`` (job, project, worker, user)."""
    return [s for s in SETTINGS.values() if level in s.levels]


def where_settable(s: Setting) -> str:
    """Where ``s`` may be set, for messages: ``"per job, project or user"``, ``"only by $CRYODESK_X"``."""
    if not s.levels:
        return f"only by the environment variable {s.env}" if s.env else "nowhere (built in)"
    levels = list(s.levels)
    text = "per " + (levels[0] if len(levels) == 1 else f"{', '.join(levels[:-1])} or {levels[-1]}")
    return text + (f", or by the environment variable {s.env}" if s.env else "")


def coerce(name: str, value, where: str = ""):
    """``value`` converted to the setting's type; a clear error names the setting (and ``where``)."""
    s = get(name)
    origin = f" ({where})" if where else ""
    if value is None or (isinstance(value, str) and value.strip() == "" and s.nullable):
        if s.nullable:
            return None
        raise UsageError(f"setting {name!r}{origin} needs a value")
    try:
        if s.kind == "bool":
            if isinstance(value, bool):
                out = value
            elif isinstance(value, (int, float)) and value in (0, 1):
                out = bool(value)
            elif isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
                out = value.strip().lower() in _TRUE
            else:
                raise ValueError
        elif s.kind == "int":
            if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
                raise ValueError
            out = int(value.strip() if isinstance(value, str) else value)
        elif s.kind == "float":
            if isinstance(value, bool):
                raise ValueError
            out = float(value)
            if not math.isfinite(out):  # nan would make "older than N days" never true, silently
                raise ValueError
        elif s.kind == "path":
            if not isinstance(value, (str, Path)):
                raise ValueError
            out = str(Path(str(value).strip()).expanduser())
        else:
            if not isinstance(value, str):  # db_url: 5 in a JSON file is a mistake, not a file named "5"
                raise ValueError
            out = value
    except (TypeError, ValueError):
        kinds = {"bool": "true or false", "int": "a whole number", "float": "a number", "str": "text",
                 "path": "a path"}
        raise UsageError(f"setting {name!r}{origin} takes {kinds.get(s.kind, s.kind)}, got {value!r}") from None
    if s.minimum is not None and out < s.minimum:
        raise UsageError(f"setting {name!r}{origin} must be at least {s.minimum:g}, got {value!r}")
    if s.kind in ("int", "float") and abs(out) > MAX_NUMBER:  # what every database column can hold
        raise UsageError(f"setting {name!r}{origin} must be at most {MAX_NUMBER:,}, got {value!r}")
    return out


def user_settings_path() -> Path:
    """``settings.json`` in the user's config directory (``~/.config/cryodesk`` on Linux)."""
    from platformdirs import user_config_dir

    return Path(user_config_dir("cryodesk", appauthor=False)) / "settings.json"


def read_user_settings(path: Path | None = None) -> dict:
    """The user's settings file (``{}`` when there is none); a broken file is a clear error."""
    path = path or user_settings_path()
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except RecursionError:
        raise UsageError(f"user settings {path} are unreadable: nested too deeply; fix or remove the file") from None
    except (OSError, ValueError) as exc:
        raise UsageError(f"user settings {path} are unreadable: {exc}; fix or remove the file") from None
    if not isinstance(data, dict):
        raise UsageError(f"user settings {path} are not a JSON object; fix or remove the file")
    return data


def write_user_settings(data: Mapping, path: Path | None = None) -> None:
    """Replace the user's settings file with ``data`` (atomically; the directory is made if needed)."""
    from .fsio import atomic_write_json

    path = path or user_settings_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_json(path, dict(data))


def lookup(name: str, *, job: Mapping | None = None, project: Mapping | None = None,
           worker: Mapping | None = None, user: Mapping | None = None,
           environ: Mapping | None = None, labels: Mapping[str, str] | None = None) -> tuple[Any, str]:
    """``(value, level)``: the winning value of setting ``name`` and the level it came from.

    Parameters
    ----------
    name : str
        A name of :data:`SETTINGS`.
    job, project, worker, user : mapping, optional
        The values stored at each level (a value of None is "not set").
        ``user`` defaults to the user's settings file (pass ``{}`` to skip it).
    environ : mapping, optional
        Defaults to :data:`os.environ`.
    labels : mapping, optional
        Where each level's values come from (``{"project": "project P1"}``),
        named in the error when a stored value is of the wrong type.
    """
    s = get(name)
    environ = os.environ if environ is None else environ
    labels = labels or {}
    if s.env:
        raw = environ.get(s.env)
        if raw is not None and raw.strip() != "":
            return coerce(name, raw, f"environment variable {s.env}"), "environment"
    if user is None and "user" in s.levels:
        user = read_user_settings()
        labels = {"user": str(user_settings_path()), **labels}
    for level, values in (("job", job), ("project", project), ("worker", worker), ("user", user)):
        if level in s.levels and values and values.get(name) is not None:
            return coerce(name, values[name], labels.get(level, f"{level} setting")), level
    return s.default_value(), "default"


def resolve(name: str, **levels) -> Any:
    """The value of setting ``name`` (see :func:`lookup` for the levels)."""
    return lookup(name, **levels)[0]


def default(name: str) -> Any:
    """The built-in default of ``name``."""
    return get(name).default_value()


def problems(level: str, values: Mapping, label: str) -> list[str]:
    """What is wrong with the values stored at ``level`` (unknown names, wrong level, bad values).

    ``label`` names the place (a file, ``project P1``).  :func:`lookup` only
    meets a bad value when it would win; ``cryodesk settings show`` reports
    them all.
    """
    out = []
    for name, value in values.items():
        s = SETTINGS.get(name)
        if s is None:
            out.append(f"{label}: unknown setting {name!r}")
        elif level not in s.levels:
            out.append(f"{label}: setting {name!r} cannot be set per {level} (it may be set {where_settable(s)})")
        elif value is not None:
            try:
                coerce(name, value, label)
            except UsageError as exc:
                out.append(str(exc))
    return out


def _shown(value) -> str:
    if value is None:
        return "unset"
    return str(value).lower() if isinstance(value, bool) else str(value)


def markdown_table() -> str:
    """The README's settings table (a test keeps the README in step with this module)."""
    rows = ["| setting | type | default | environment | also set per | what it does |",
            "| --- | --- | --- | --- | --- | --- |"]
    for s in SETTINGS.values():
        d = s.default
        shown = ("(user data dir)" if s.name == "db_url" else "(host name)") if callable(d) else _shown(d)
        levels = ", ".join(f"{lv} (its parameter)" if lv == "job" and s.job_param else lv for lv in s.levels)
        rows.append(f"| `{s.name}` | {s.kind} | {shown} | {f'`{s.env}`' if s.env else '—'} | "
                    f"{levels or '—'} | {s.help} |")
    return "\n".join(rows)
