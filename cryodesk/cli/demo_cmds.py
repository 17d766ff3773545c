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
    if args.live:
        return _live(p, directory)
    return 0


def _live(p, directory: Path) -> int:
    """The demo's live session: movies arrive over a few seconds while it runs (issue 14)."""
    from ..core import sessions
    from ..demo.live import add_live_session, feeder
    from ..engine.live import run_session

    s = add_live_session(p, directory / "raw", directory / "incoming")
    sessions.transition(p, s, "start")
    thread, _ = feeder(directory / "raw", directory / "incoming", interval_s=1.0)
    print(f"{p.uid} {s.uid}: watching {directory / 'incoming'}; movies arrive one a second", file=sys.stderr)
    why, errors = run_session(p, s, idle_exit_s=3.0)
    thread.join()
    sessions.transition(p, s, "pause")
    d = sessions.describe(p, s, with_exposures=False)
    print(f"{p.uid} {s.uid}: {d['stage_counts']['ready']} of {d['exposures_total']} exposures ready, "
          f"{d['particles_accepted']} particles accepted (paused; start it again or open it in the app)")
    return 1 if errors else 0


def add_parser(cli) -> None:
    d = cli.top.add_parser("demo", help="simulate a dataset and build a demo project from it")
    d.add_argument("--dir", help="where to put the simulated data and the project "
                                 "(default: beside the database: DIR/NAME-demo for DIR/NAME.sqlite)")
    d.add_argument("--size", choices=("small", "medium"), default="small")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--live", action="store_true", help="also a live session S1 whose movies arrive over a few "
                   "seconds while it runs")
    d.set_defaults(func=_demo)
