"""``cryodesk gui``: start the desktop app."""

from __future__ import annotations


def _gui(args):
    from ..ui.app import run_app

    return run_app(args.db)


def add_parser(cli) -> None:
    g = cli.top.add_parser("gui", help="start the desktop app")
    g.set_defaults(func=_gui, needs_db=False)
