"""``cryodesk gui``: start the desktop app."""

from __future__ import annotations

import re

from ..base.errors import UsageError


def _size(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    m = re.fullmatch(r"\s*(\d{3,5})\s*[xX]\s*(\d{3,5})\s*", text)
    if not m:
        raise UsageError(f"--size takes WIDTHxHEIGHT in pixels, e.g. 1600x1000; got {text!r}")
    return int(m.group(1)), int(m.group(2))


def _gui(args):
    from ..ui.app import run_app

    return run_app(args.db, size=_size(args.size), theme=args.theme)


def add_parser(cli) -> None:
    g = cli.top.add_parser("gui", help="start the desktop app")
    g.add_argument("--size", metavar="WxH", help="window size in pixels (default: as last time, or 1400x860)")
    g.add_argument("--theme", choices=("system", "light", "dark"), default="system",
                   help="colours: the desktop's (default), or light or dark whatever the desktop says")
    g.set_defaults(func=_gui, needs_db=False)
