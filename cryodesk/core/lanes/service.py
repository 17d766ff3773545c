"""Lanes: where jobs run.  Add, list, show and remove them (Qt-free; the CLI and GUI call these).

Kinds
-----
``local``
    The app's own engine (or ``cryodesk job run``): the default for a job with no lane.
``worker``
    Another workstation that shares the database and the project directory: its jobs wait,
    queued, until ``cryodesk worker run --lane NAME`` on that host claims them.
``slurm``
    A cluster: each job is submitted with a script rendered from the lane's template
    (:mod:`.templates`) and followed through the scheduler's commands (:mod:`.tracker`).
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass

from ...base.errors import NotFound, UsageError
from ...db.models import ACTIVE_STATUSES, Job, Lane, Session, db
from . import templates

KINDS = ("local", "worker", "slurm")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: SLURM-lane settings and their defaults (None: unset)
SLURM_DEFAULTS = {"script": templates.DEFAULT_SCRIPT, "submit": templates.DEFAULT_SUBMIT,
                  "status": templates.DEFAULT_STATUS, "cancel": templates.DEFAULT_CANCEL,
                  "prefix": None, "num_cpu": 1, "ram_gb": 1, "vars": {}, "cryodesk_cmd": None,
                  "db_url": None, "worker": None}


@dataclass
class LaneInfo:
    name: str
    type: str
    config: dict
    active_jobs: int

    def as_dict(self) -> dict:
        return {"name": self.name, "type": self.type, "config": self.config, "active_jobs": self.active_jobs}


def default_cryodesk_cmd() -> str:
    """How a node starts cryodesk by default: this very interpreter (a shared installation)."""
    if getattr(sys, "frozen", False):
        return sys.executable
    return f"{sys.executable} -m cryodesk.cli.main"


def _check_slurm(name: str, config: dict) -> None:
    templates.check_custom_vars(config.get("vars"), f"lane {name!r}")
    known = set(templates.SCRIPT_VARIABLES) | set(config.get("vars") or {})
    templates.check(config["script"], known, f"lane {name!r}: the submission script")
    templates.check_placement(config["script"], f"lane {name!r}: the submission script")
    for key in ("submit", "status", "cancel"):
        templates.check(config[key], templates.COMMAND_VARIABLES, f"lane {name!r}: the {key} command")
        templates.split_words(config[key], f"lane {name!r}: the {key} command")
    if config.get("prefix"):
        templates.split_words(config["prefix"], f"lane {name!r}: the prefix")
    for key in ("num_cpu", "ram_gb"):
        try:
            if int(config[key]) < 1:
                raise ValueError
        except (TypeError, ValueError):
            raise UsageError(f"lane {name!r}: {key} must be a whole number >= 1, not {config[key]!r}") from None
        config[key] = int(config[key])
    if "run_cmd" not in templates.placeholders(config["script"]):
        raise UsageError(f"lane {name!r}: the submission script must contain {{{{ run_cmd }}}}, "
                         "the command that runs the job")


def add_lane(name: str, kind: str, *, replace: bool = False, **options) -> LaneInfo:
    """Create (or with ``replace``, redefine) lane ``name`` of ``kind``; ``options`` are its settings.

    For ``slurm``: ``script`` (template text), ``submit``/``status``/``cancel`` (command
    templates), ``prefix`` (e.g. ``"ssh login-node"``), ``num_cpu``, ``ram_gb``, ``vars``
    (custom variables), ``cryodesk_cmd`` (how the node starts cryodesk), ``db_url`` (the
    database URL as the node must open it), ``worker`` (the node's worker name).
    For ``worker``: ``host`` (informative).
    """
    if not _NAME.match(name or ""):
        raise UsageError(f"lane name {name!r}: use letters, digits, '.', '_' or '-' (at most 64)")
    if kind not in KINDS:
        raise UsageError(f"lane type {kind!r}: choose one of {', '.join(KINDS)}")
    given = {k: v for k, v in options.items() if v is not None}
    if kind == "slurm":
        config = {**SLURM_DEFAULTS, **given}
        config["vars"] = dict(config.get("vars") or {})
        _check_slurm(name, config)
    else:
        allowed = {"host"} if kind == "worker" else set()
        extra = sorted(set(given) - allowed)
        if extra:
            raise UsageError(f"lane {name!r}: a {kind} lane takes no {', '.join(extra)} setting")
        config = given
    with db.atomic():
        existing = Lane.get_or_none(Lane.name == name)
        if existing is not None and not replace:
            raise UsageError(f"lane {name!r} exists already (--replace redefines it)")
        if existing is not None:
            existing.type, existing.config = kind, config
            existing.save()
        else:
            Lane.create(name=name, type=kind, config=config)
    return show_lane(name)


def get_lane(name: str) -> Lane:
    lane = Lane.get_or_none(Lane.name == name)
    if lane is None:
        known = [n for (n,) in Lane.select(Lane.name).order_by(Lane.name).tuples()]
        raise NotFound(f"no lane {name!r}" + (f" (lanes: {', '.join(known)})" if known else
                                              " (no lanes yet: cryodesk lane add)"))
    return lane


def _active(name: str) -> int:
    return Job.select().where((Job.lane == name) & Job.status.in_(ACTIVE_STATUSES)).count()


def show_lane(name: str) -> LaneInfo:
    lane = get_lane(name)
    return LaneInfo(lane.name, lane.type, dict(lane.config or {}), _active(lane.name))


def list_lanes() -> list[LaneInfo]:
    return [LaneInfo(la.name, la.type, dict(la.config or {}), _active(la.name))
            for la in Lane.select().order_by(Lane.name)]


def remove_lane(name: str) -> None:
    """Remove lane ``name``; refused while jobs are queued or running on it."""
    lane = get_lane(name)
    n = _active(name)
    if n:
        raise UsageError(f"lane {name!r} has {n} queued or running job(s); kill them or let them end first")
    users = list(Session.select().where(Session.lane == name).limit(3))
    if users:
        which = ", ".join(f"{s.project.uid} {s.uid}" for s in users)
        raise UsageError(f"lane {name!r} is the restore lane of session(s) {which}; give them another lane first "
                         f"(cryodesk session set-lane P S local)")
    lane.delete_instance()


def session_lane(name: str | None) -> Lane | None:
    """The SLURM lane called ``name`` (None for ``local``); a clear error for another kind or no such lane."""
    if not name or name == "local":
        return None
    lane = get_lane(name)
    if lane.type == "local":
        return None
    if lane.type != "slurm":
        raise UsageError(f"lane {name!r} is a {lane.type} lane: a live session runs on the local lane or restores "
                         "on a SLURM lane")
    return lane
