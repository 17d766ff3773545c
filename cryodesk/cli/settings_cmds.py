"""``cryodesk settings show|set|unset``: every setting, at every level, through one service.

Precedence, highest first: environment > job > project > worker > user >
default (the README's settings table lists every setting and where it may be
set).  ``show`` prints each setting's value and the level it came from;
``set`` / ``unset`` write one level, named by exactly one of ``--user``,
``--project P1``, ``--job P1 J5`` or ``--worker NAME``.
"""

from __future__ import annotations

import argparse
import sys

from ..base import settings
from ..base.dburl import redact
from ..base.errors import CryodeskError, UsageError
from ..core import settings_service
from . import output


def _shown(value) -> str:
    if value is None:
        return "unset"
    return str(value).lower() if isinstance(value, bool) else str(value)


def _show(args):
    if args.job and not args.project:
        raise UsageError("--job needs --project (cryodesk settings show --project P1 --job J5)")
    view = settings_service.settings_view(project=args.project, job=args.job, worker=args.worker)
    bad = [r for r in view["settings"] if "error" in r]
    if args.json:
        output.emit_json(view)
    else:
        rows = []
        for r in view["settings"]:
            level = "ERROR" if "error" in r else r["level"] + (f" ({r['env']})" if r["level"] == "environment" else "")
            rows.append([r["name"], "?" if "error" in r else _shown(r["value"]), level])
        output.table(rows, ["setting", "value", "from"])
        print(f"precedence: {view['precedence']}")
    errors = {r["error"] for r in bad}
    for problem in view["problems"]:
        if problem not in errors:  # said once, as the error below
            print(f"cryodesk: warning: {problem}", file=sys.stderr)
    for r in bad:
        print(f"cryodesk: error: {r['error']}", file=sys.stderr)
    return 1 if bad else 0


def _target(args) -> tuple[str, dict]:
    """The level and its target from ``--user | --project P | --job P J | --worker NAME``."""
    if args.user:
        return "user", {}
    if args.job:
        return "job", {"project": args.job[0], "job": args.job[1]}
    if args.project:
        return "project", {"project": args.project}
    return "worker", {"worker": args.worker}


def _set(args):
    level, target = _target(args)
    value = settings_service.set_setting(level, args.key, args.value, **target)
    _report(args, level, target, value)
    return 0


def _unset(args):
    level, target = _target(args)
    settings_service.unset_setting(level, args.key, **target)
    _report(args, level, target, None)
    return 0


def _report(args, level: str, target: dict, stored) -> None:
    """What was stored, and what the setting now is at that place (a higher level may still win)."""
    try:
        if level == "user":  # no database open: the levels the user file competes with here
            value, source = settings.lookup(args.key)
        else:
            value, source = settings_service.effective(args.key, **target)
    except CryodeskError:  # e.g. a bad value at a higher level: the write itself succeeded
        value, source = None, None
    if level == "user":
        place = f"user settings {settings.user_settings_path()}"
    elif level == "worker":
        place = f"worker {target['worker'] or settings.resolve('worker')}"
    else:
        place = " ".join(str(target[k]) for k in ("project", "job") if k in target)
    if args.key == "db_url":  # shown, never its password
        stored, value = (redact(str(v)) if v is not None else None for v in (stored, value))
    if args.json:
        output.emit_json({"name": args.key, "level": level, "stored": stored, "value": value, "from": source})
        return
    what = f"{args.key} = {_shown(stored)}" if stored is not None else f"{args.key} unset"
    now = f"; in effect: {_shown(value)} (from {source})" if source is not None else ""
    print(f"{place}: {what}{now}")


class _UserLevel(argparse.Action):
    """``--user``: the settings file only, so no database is opened (a bad ``db_url`` stays fixable)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=False, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        namespace.user = True
        namespace.needs_db = False


def _level_options(p) -> None:
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--user", action=_UserLevel, help="this user's settings file (no database needed)")
    g.add_argument("--project", metavar="P", help="a project (stored with it, in project.json too)")
    g.add_argument("--job", nargs=2, metavar=("P", "J"), help="one job of a project")
    g.add_argument("--worker", metavar="NAME", help="a connected worker (cryodesk worker connect)")
    p.add_argument("--json", action="store_true")


def add_parser(cli) -> None:
    sub = cli.group("settings", help="show and change settings (environment > job > project > worker > "
                    "user > default)")
    s = sub.add_parser("show", help="every setting with its value and the level it came from")
    s.add_argument("--project", metavar="P", help="as seen by this project")
    s.add_argument("--job", metavar="J", help="as seen by this job (with --project)")
    s.add_argument("--worker", metavar="NAME", help="as seen on this worker (default: this host's)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(func=_show)
    s = sub.add_parser("set", help="set a setting at one level")
    s.add_argument("key", metavar="KEY")
    s.add_argument("value", metavar="VALUE")
    _level_options(s)
    s.set_defaults(func=_set)
    s = sub.add_parser("unset", help="remove a setting from one level (the next level down decides)")
    s.add_argument("key", metavar="KEY")
    _level_options(s)
    s.set_defaults(func=_unset)
