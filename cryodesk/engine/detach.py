"""Keep jobs running when the app quits: a detached ``cryodesk worker run --once`` takes the queue.

Why this shape: a job body runs as a thread of the engine that started it
(:mod:`cryodesk.engine.engine`), so a *running* job cannot move to another
process.  When the user quits and chooses "keep running", the app

1. hands the queued jobs that have not started to a worker: their owner is
   released (:func:`cryodesk.core.lifecycle.hand_off`) and a detached
   ``cryodesk worker run --once`` is spawned (its own session: no terminal, no
   display; it survives the app, a logout's SIGHUP and the X server going
   away), which claims them and runs them in dependency order, waiting for
   parents still running in the app;
2. hides its window and keeps its process (SIGHUP ignored) only until its
   running jobs have ended, then exits.

The next start of the app lists those jobs as running, owned by a live
process (:func:`cryodesk.core.lifecycle.active_jobs`); change events keep its
window current and ``Kill`` reaches them (``lifecycle.request_kill`` crosses
processes).  Nothing here touches Qt.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from .. import db as dbmod


def database_url() -> str:
    """The URL of the database this process has open, for a worker process to open the same one."""
    obj = dbmod.db.obj
    if obj is not None and "sqlite" in type(obj).__name__.lower():
        return str(Path(obj.database).resolve())
    return dbmod.resolve_url(None)  # PostgreSQL: $CRYODESK_DB (--db sets it) or the db_url setting


def worker_command(db_url: str, project_uid: str | None = None) -> list[str]:
    """The command line of a detached worker that runs the jobs queued now, then exits.

    A URL with a password is not on it (every user sees command lines in ``ps``):
    :func:`spawn_worker` passes it in the environment (``CRYODESK_DB``) instead.
    """
    base = [sys.executable] if getattr(sys, "frozen", False) else [sys.executable, "-m", "cryodesk.cli.main"]
    cmd = base + ([] if dbmod.has_password(db_url) else ["--db", db_url]) + ["worker", "run", "--once"]
    if project_uid:
        cmd += ["--project", project_uid]
    return cmd


def log_dir() -> Path:
    """Where detached workers write their output (the user's state directory)."""
    from platformdirs import user_state_dir

    return Path(user_state_dir("cryodesk", appauthor=False)) / "workers"


def spawn_worker(db_url: str | None = None, project_uid: str | None = None) -> tuple[int, Path]:
    """Start a detached worker; returns its pid and its log file.

    The worker runs in a session of its own (``setsid``): closing the terminal
    or the app does not signal it, and it needs no display.
    """
    url = db_url or database_url()
    where = log_dir()
    where.mkdir(parents=True, exist_ok=True)
    log = where / f"worker-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    env = dict(os.environ)
    env["CRYODESK_DB"] = url  # what the worker opens (the command line carries no password)
    env["QT_QPA_PLATFORM"] = "offscreen"  # a QCoreApplication needs none, but never a display
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    with open(log, "ab") as out:
        proc = subprocess.Popen(worker_command(url, project_uid), stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True, close_fds=True)
    return proc.pid, log
