"""``cryodesk demo``: simulate a dataset and build the demo project from it."""

from __future__ import annotations

import sys
from pathlib import Path

from ..base.errors import UsageError


def _demo(args):
    import time

    from ..demo.project import create_demo_project, default_demo_dir

    directory = Path(args.dir).expanduser() if args.dir else default_demo_dir()
    if (directory / "project").exists() and any((directory / "project").iterdir()):
        raise UsageError(f"{directory / 'project'} already holds a project; "
                         f"use 'cryodesk project attach {directory / 'project'}' or another --dir")
    t0 = time.perf_counter()

    def progress(fraction, message):
        print(f"[{fraction * 100:3.0f}%] {message}", file=sys.stderr, flush=True)

    p = create_demo_project(directory, size=args.size, seed=args.seed, progress=progress)
    print(f"created demo project {p.uid} in {p.directory} ({time.perf_counter() - t0:.1f} s)")
    return 0


def add_parser(cli) -> None:
    d = cli.top.add_parser("demo", help="simulate a dataset and build a demo project from it")
    d.add_argument("--dir", help="where to put the simulated data and the project "
                                 "(default: beside the database: DIR/NAME-demo for DIR/NAME.sqlite)")
    d.add_argument("--size", choices=("small", "medium"), default="small")
    d.add_argument("--seed", type=int, default=0)
    d.set_defaults(func=_demo)
