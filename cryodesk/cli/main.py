"""The ``cryodesk`` command: every action the GUI offers, scriptable.

Exit codes: 0 success, 1 refused or failed (message on stderr), 2 usage error.
Each command group lives in its own module with an ``add_parser(sub)``
function; this module only builds the parser and dispatches.
"""

from __future__ import annotations

import argparse
import os
import sys
from importlib import import_module

from .. import __version__

#: command-group modules, each contributing sub-commands
GROUPS = ("project_cmds", "job_cmds", "app_cmds")


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # exit 2 with a one-line message, as argparse does, but clearer
        self.print_usage(sys.stderr)
        print(f"cryodesk: error: {message}", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="cryodesk", description="Cryo-EM processing-project data management.")
    parser.add_argument("--version", action="version", version=f"cryodesk {__version__}")
    parser.add_argument("--db", metavar="URL", help="database: SQLite path or postgresql://... "
                        "(default: $CRYODESK_DB or an SQLite file in the user data directory)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in GROUPS:
        import_module(f"{__package__}.{name}").add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from ..core.errors import CryodeskError, UsageError

    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    if args.db:
        os.environ["CRYODESK_DB"] = args.db
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


def entry() -> None:  # pragma: no cover - console script shim
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
