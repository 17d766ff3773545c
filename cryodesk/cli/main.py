"""The ``cryodesk`` command: every action the GUI offers, scriptable.

Exit codes: 0 success, 1 refused or failed (message on stderr), 2 usage error.
Every module here named ``*_cmds.py`` contributes commands through an
``add_parser(cli)`` function, where ``cli`` is a :class:`Commands`: a module
may add top-level commands (``cli.top``) or actions to a shared group
(``cli.group("job")`` — the group is made by whichever module asks first).
This module only builds the parser and dispatches.
"""

from __future__ import annotations

import argparse
import os
import pkgutil
import sys
from importlib import import_module
from pathlib import Path
from typing import NoReturn

from .. import __version__


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # exit 2 with a one-line message, as argparse does, but clearer
        self.print_usage(sys.stderr)
        print(f"cryodesk: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``only``, just that top-level command's (``cryodesk job ...``: the job group).

    Building the ~90 sub-commands' parsers is a good part of a short command's start-up: a
    command line that names its command gets only that one (the others go to a :class:`_Sink`);
    if no module defines ``only``, the whole parser is built (argparse then lists the choices).
    """
    parser = _Parser(prog="cryodesk", description="Cryo-EM processing-project data management.")
    parser.add_argument("--version", action="version", version=f"cryodesk {__version__}")
    parser.add_argument("--db", metavar="URL", help="database: SQLite path or postgresql://... "
                        "(default: $CRYODESK_DB or an SQLite file in the user data directory)")
    cli = Commands(parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser), only)
    names = sorted(m.name for m in pkgutil.iter_modules([str(Path(__file__).parent)]) if m.name.endswith("_cmds"))
    for name in names:
        import_module(f"{__package__}.{name}").add_parser(cli)
    if only is not None and only not in cli.made:
        return build_parser()
    return parser


def command_named(argv: list[str]) -> str | None:
    """The top-level command of a command line (its first word that is not an option), if any.

    None (the whole parser) when a help option or ``--`` comes first: that help, or the error
    message, lists every command.
    """
    args = iter(argv)
    for arg in args:
        if arg == "--db":
            next(args, None)
        elif arg in ("-h", "--help", "--") or arg.startswith("--h"):  # (argparse takes --he, --hel)
            return None
        elif not arg.startswith("-"):
            return arg
    return None


class _Sink:
    """Takes the parser calls of the commands not asked for (and returns itself for more)."""

    def __getattr__(self, name):
        return lambda *args, **kwargs: self


class _Top:
    """``cli.top``: adds a top-level command, or gives a :class:`_Sink` if only another one is built."""

    def __init__(self, commands: "Commands", subparsers):
        self._commands, self._subparsers = commands, subparsers

    def add_parser(self, name: str, **kwargs):
        if not self._commands.wanted(name):
            return _Sink()
        self._commands.made.add(name)
        return self._subparsers.add_parser(name, **kwargs)


class Commands:
    """What a command module may extend: top-level commands (``top.add_parser``) and named groups."""

    HELP = {
        "project": "create, list, show, attach, detach, archive, move and delete projects",
        "workspace": "create and list workspaces",
        "job": "create, inspect, select, run and act on jobs",
        "worker": "run queued jobs; connect workers and configure their SSD cache",
    }

    def __init__(self, subparsers, only: str | None = None):
        self.only = only
        self.made: set[str] = set()  # the top-level commands and groups built
        self.top = _Top(self, subparsers)
        self._groups: dict = {}

    def wanted(self, name: str) -> bool:
        return self.only is None or name == self.only

    def group(self, name: str, help: str | None = None):
        """The sub-command set of group ``name`` (``cryodesk NAME ACTION ...``)."""
        if not self.wanted(name):
            return _Sink()
        if name not in self._groups:
            p = self.top.add_parser(name, help=help or self.HELP.get(name, name))
            self._groups[name] = p.add_subparsers(dest="action", metavar="ACTION", required=True)
        return self._groups[name]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["_empty-trash"]:  # internal: a trash emptier process of the frozen app
        from ..base.trashworker import main as empty_trash

        return empty_trash(argv[1:])
    if argv[:1] == ["_scan-worker"]:  # internal: a size-scan worker process of the frozen app
        from ..base.scanworker import main as scan_worker

        return scan_worker()
    from .._runtime import configure

    configure()  # first: NUMBA_CACHE_DIR must be set before any command module imports numba
    from .. import jobs as _job_types  # noqa: F401  (registers the built-in job types)
    from ..base.errors import CryodeskError, UsageError, require_utf8

    parser = build_parser(command_named(argv))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if args.db:
        os.environ["CRYODESK_DB"] = args.db
    global _quick_exit
    _quick_exit = bool(getattr(args, "quick_exit", False))
    try:
        if getattr(args, "needs_db", True):
            from ..db import db, open_database

            open_database(args.db)
            with db.connection_context():
                return int(args.func(args) or 0)
        return int(args.func(args) or 0)
    except UsageError as exc:
        print(f"cryodesk: error: {exc}", file=sys.stderr)
        return 2
    except CryodeskError as exc:
        print(f"cryodesk: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cryodesk: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except UnicodeEncodeError as exc:
        # an argument that is not UTF-8 (its bytes as lone surrogates) met the database or a file
        # format that keeps UTF-8 text: say which one, never a traceback
        if "surrogates" not in str(exc):
            raise
        for arg in argv:
            try:
                require_utf8(arg, "argument")
            except UsageError as bad:
                print(f"cryodesk: error: {bad}", file=sys.stderr)
                break
        else:
            raise
        return 2
    except Exception as exc:  # a database lock held past the busy timeout: a sentence, not a traceback
        from ..db import lock_message

        why = lock_message(exc)
        if why is None:
            raise
        print(f"cryodesk: {why}", file=sys.stderr)
        return 1


_quick_exit = False  # main() ran a command that asks for quick_exit (job run)


def leave(rc: int) -> NoReturn:
    """End the process with ``rc`` after a command that asked for it, skipping the interpreter's teardown.

    After a ``job run`` everything that matters is on disk and in the database; what is left is the
    teardown of a process that may hold numba, LLVM and gigabytes of freed arrays: 0.2-0.5 s after a
    1M-particle import here, seconds a user waits for the prompt.  The log handlers and the standard
    streams are flushed first.  Any other non-daemon thread still running means the normal exit
    (which waits for it).
    """
    import logging
    import threading

    main_thread = threading.main_thread()
    if any(t is not main_thread and t.is_alive() and not t.daemon for t in threading.enumerate()):
        sys.exit(rc)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more to say
            pass
    os._exit(rc)


def entry() -> None:  # pragma: no cover - console script shim, and python -m cryodesk.cli.main
    rc = main()
    if _quick_exit:
        leave(rc)
    sys.exit(rc)


if __name__ == "__main__":  # pragma: no cover
    entry()
