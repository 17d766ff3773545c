"""The demo's live session: the simulated movies arrive in a watched directory over a few seconds.

:func:`add_live_session` makes ``S1`` of the demo project watching
``DIR/incoming/*.mrc`` with stage parameters that suit the simulated data;
:func:`feed_movies` copies the simulated movies there one by one (each
written under a temp name and renamed, or slowly in pieces with ``slow``,
as a detector's file transfer would), so the session has something to
stream.  ``cryodesk demo --live`` does both and runs the session.
"""

from __future__ import annotations

import shutil
import threading
import time
from pathlib import Path

from ..core import sessions
from .simulate import load_truth


def add_live_session(project, raw: Path, incoming: Path, title: str = "Live: grid 1"):
    """Create the demo's live session (paused) watching ``incoming``; returns it."""
    spec = load_truth(raw)["spec"]
    incoming.mkdir(parents=True, exist_ok=True)
    params = {"psize_A": str(spec["psize_A"]), "pick.diameter_A": str(spec["particle_diameter_A"]),
              "extract.box_size_px": str(spec["box"]), "ctf.amp_contrast": str(spec["amp_contrast"]),
              "runner.settle_s": "0.5", "runner.poll_s": "0.25",
              "total_dose_e_per_A2": str(spec["total_dose_e_per_A2"])}
    return sessions.create(project, str(incoming / "*.mrc"), title, params)


def feed_movies(raw: Path, incoming: Path, interval_s: float = 1.0, stop: threading.Event | None = None) -> list[Path]:
    """Copy ``raw/movies/*.mrc`` into ``incoming``, one every ``interval_s`` seconds (in this thread)."""
    out = []
    for src in sorted((Path(raw) / "movies").glob("*.mrc")):
        if stop is not None and stop.is_set():
            break
        dest = Path(incoming) / f"live_{src.name}"
        if not dest.exists():
            tmp = Path(incoming) / f".{dest.name}.part"
            shutil.copyfile(src, tmp)
            tmp.rename(dest)
        out.append(dest)
        time.sleep(interval_s)
    return out


def feeder(raw: Path, incoming: Path, interval_s: float = 1.0) -> tuple[threading.Thread, threading.Event]:
    """:func:`feed_movies` in a daemon thread; set the event to stop it early."""
    stop = threading.Event()
    t = threading.Thread(target=feed_movies, args=(raw, incoming, interval_s, stop), daemon=True,
                         name="cryodesk-demo-feeder")
    t.start()
    return t, stop
