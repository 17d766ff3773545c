"""Running a live session on the engine: watch the movie glob, feed exposures to the cpu pool.

A :class:`SessionRunner` belongs to the engine's thread (the GUI's, or a
headless loop: :func:`run_session`).  Every ``runner.poll_s`` it

* (status *running*) globs the session's ``movies`` pattern and registers a
  file as an exposure only once it has **stopped growing**: the same size and
  mtime for at least ``runner.settle_s`` seconds;
* submits exposures that still have stages to run to the engine's cpu pool,
  at most ``runner.max_parallel`` at a time (the local lane's limit); each
  task runs the exposure's remaining stages (:func:`cryodesk.jobs.live.run_stage`),
  recording each when its files are complete;
* (status *restoring*) ends the restore once nothing is left: *completed*
  when every exposure is ready, *restoration_failed* if one failed.

It holds the session's runner lock (an flock: a killed process holds
nothing), so one process runs a session at a time and compaction never runs
under it.  State lives in the database, so a runner started later (after an
app restart, or a SIGKILL) resumes exactly where the last one stopped.
Pausing or completing the session (from any process) lets in-flight
exposures finish their current stage, then the runner stops.
"""

from __future__ import annotations

import contextlib
import glob
import logging
import os
import signal
import threading
import time
import traceback
from pathlib import Path

from PySide6.QtCore import QEventLoop, QObject, QTimer, Signal

from ..base import hooks
from ..base.errors import CryodeskError, DataError, JobCancelled
from ..core import sessions
from ..core.projects import get_project

log = logging.getLogger("cryodesk.engine.live")


def process_exposure(project_uid: str, session_id: int, exposure_id: int, cancel: threading.Event) -> str:
    """Run the remaining stages of one exposure (in a pool thread); returns its stage at the end."""
    from ..jobs import live

    # by its uid, not its row id: get_project(int) reads a number (P<n>), which is the row id only by chance
    # (not after a detach → attach on PostgreSQL, whose ids come from a sequence)
    project = get_project(project_uid)
    pdir = Path(project.directory)
    while True:
        s, e = sessions.current(session_id, exposure_id)
        if e is None or s is None:
            return "gone"
        if e.stage not in sessions.TODO_STAGES or s.status not in sessions.ACTIVE:
            return e.stage
        if cancel.is_set():
            raise JobCancelled(f"{s.uid} {e.uid} was cancelled at {e.stage}")
        stage = e.stage
        try:
            kw = live.run_stage(stage, pdir, s, e, sessions.merged(s.params))
        except DataError as exc:  # the movie or a file of the exposure: it fails, with the message
            sessions.fail_exposure(project, s, e, stage, str(exc))
            return "failed"
        except Exception as exc:  # a bug: the exposure fails with the error, the traceback goes to the log
            log.error("%s %s %s: %s failed:\n%s", project.uid, s.uid, e.uid, stage, traceback.format_exc())
            sessions.fail_exposure(project, s, e, stage, f"{type(exc).__name__}: {exc}")
            return "failed"
        hooks.point("live.stage_written", session=s.uid, exposure=e.uid, stage=stage)
        if sessions.record_stage(project, s, e, stage, **kw) is None:
            return "moved"


class SessionRunner(QObject):
    """Runs one session in ``engine`` until it is paused/completed or :meth:`stop` is called.

    Signals: ``changed()`` after any exposure progressed; ``stopped(reason)``
    once the runner let go of the session (its lock released).
    """

    changed = Signal()
    stopped = Signal(str)

    def __init__(self, engine, project, session, parent=None):
        super().__init__(parent)
        self.engine = engine
        self.project = get_project(project)
        self.session = sessions.get_session(self.project, session)
        self._lock = contextlib.ExitStack()
        self._seen: dict[str, tuple[int, int, float]] = {}
        self._refused: set[str] = set()  # matched files that resolve inside a project (never movies)
        self._inflight: dict[int, str] = {}  # exposure id -> task id
        self._stopping: str | None = None
        self._running = False
        self._last_size = 0.0
        self._dirty = False
        self.errors: list[str] = []
        self._timer = QTimer(self)
        self._timer.timeout.connect(self.poll)

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        """Take the session's runner lock and start polling (LockedError: another process runs it)."""
        self._lock.enter_context(sessions.runner_lock(self.project, self.session))
        try:  # a runner that was killed may have left unfinished writes: they go first
            sessions.discard_temp(self.project, self.session)
        except CryodeskError as exc:
            self.errors.append(str(exc))
        self._running = True
        params = sessions.merged(self.session.params)
        self._timer.setInterval(max(50, int(params["runner"]["poll_s"] * 1000)))
        self._timer.start()
        QTimer.singleShot(0, self.poll)

    def stop(self, reason: str = "stopped", cancel: bool = False) -> None:
        """Stop taking work; in-flight exposures finish their stage (or are cancelled), then ``stopped``."""
        if not self._running:
            return
        self._stopping = self._stopping or reason
        if cancel:
            for task_id in self._inflight.values():
                self.engine.cancel_task(task_id)
        self._maybe_finish()

    # -- the loop ------------------------------------------------------------------------------
    def poll(self) -> None:
        if not self._running:
            return
        try:
            self._poll()
        except CryodeskError as exc:  # the project's disk went away, the session was deleted, ...
            self.errors.append(str(exc))
            log.warning("%s %s: %s", self.project.uid, self.session.uid, exc)
            self.stop(str(exc))

    def _poll(self) -> None:
        s = sessions.get_session(self.project, self.session.uid)
        self.session = s
        params = sessions.merged(s.params)
        if self._stopping is None and s.status not in sessions.ACTIVE:
            self._stopping = s.status
        if self._stopping is None:
            if s.status == "running":
                self._discover(s, params)
            self._dispatch(s, params)
            if s.status == "restoring" and not self._inflight and not sessions.todo(s):
                self._end_restore(s)
        if self._dirty and time.monotonic() - self._last_size > 2.0:
            self._update_size()
        self._maybe_finish()

    def _discover(self, s, params: dict) -> None:
        pattern = params["movies"]
        known = sessions.known_movies(s)
        settle = float(params["runner"]["settle_s"])
        now = time.monotonic()
        ready = []
        dirs = None
        for path in sorted(glob.glob(pattern)):
            if path in known or path in self._refused:
                continue
            dirs = sessions.project_dirs() if dirs is None else dirs
            why = sessions.movie_problem(path, dirs)  # the matched file, not only the pattern's text
            if why:
                self._refused.add(path)  # reported once
                self.errors.append(why)
                log.warning("%s %s: %s", self.project.uid, s.uid, why)
                continue
            try:
                st = os.stat(path)
            except OSError:
                continue  # gone again, or unreadable for now
            if not os.path.isfile(path):
                continue
            key = (st.st_size, st.st_mtime_ns)
            seen = self._seen.get(path)
            if seen is None or seen[:2] != key:
                self._seen[path] = (*key, now)  # new or still growing: wait until it stops
                continue
            if now - seen[2] >= settle and st.st_size > 0:
                ready.append((os.path.abspath(path), st.st_size))
        if ready:
            added = sessions.add_exposures(self.project, s, ready)
            for path, _ in ready:
                self._seen.pop(path, None)
            if added:
                log.info("%s %s: %d new exposure(s)", self.project.uid, s.uid, len(added))
                self.changed.emit()

    def _dispatch(self, s, params: dict) -> None:
        limit = int(params["runner"]["max_parallel"])
        for e in sessions.todo(s):
            if len(self._inflight) >= limit:
                break
            if e.id in self._inflight:
                continue
            eid = e.id

            def fn(progress, cancel, eid=eid, sid=s.id, pid=self.project.uid):
                return process_exposure(pid, sid, eid, cancel)

            self._inflight[eid] = self.engine.submit_task(
                f"{self.project.uid} {s.uid} {e.uid}", fn, "cpu",
                on_finished=lambda status, payload, eid=eid: self._finished(eid, status, payload))

    def _finished(self, eid: int, status: str, payload) -> None:
        self._inflight.pop(eid, None)
        if status == "failed":
            # not the exposure (that fails on its own) but the session: the project became read-only,
            # its disk went away, ... — stop rather than retry the same exposure forever
            self.errors.append(str(payload))
            self.stop(str(payload))
        self._dirty = True
        self.changed.emit()
        if self._running:
            QTimer.singleShot(0, self.poll)

    def _end_restore(self, s) -> None:
        failed = sessions.count_failed(s)
        if failed:
            sessions.set_status(self.project, s, "restoration_failed",
                                error=f"{failed} exposure(s) failed to restore; reset them and restore again",
                                only_from=("restoring",))
        else:
            sessions.set_status(self.project, s, "completed", only_from=("restoring",))
        self._stopping = "restored" if not failed else "restoration_failed"
        self.changed.emit()

    def _update_size(self) -> None:
        self._last_size = time.monotonic()
        self._dirty = False
        try:
            sessions.update_size(self.project, self.session)
        except CryodeskError as exc:
            self.errors.append(str(exc))

    def _maybe_finish(self) -> None:
        if self._stopping is None or self._inflight or not self._running:
            return
        self._timer.stop()
        self._update_size()
        self._running = False
        self._lock.close()
        self.stopped.emit(self._stopping)


def run_session(project, session, *, engine=None, idle_exit_s: float | None = None,
                on_change=None, stop_requested=None) -> tuple[str, list[str]]:
    """Run ``session`` headless until it stops (paused, completed, restored, Ctrl-C).

    ``stop_requested``: called before the run starts, then about once a second; when it returns true the
    runner stops as on Ctrl-C ("interrupted": the status stays, a later run resumes).

    ``idle_exit_s``: also stop (the session stays *running*, a later start
    resumes it) once nothing was left to do and no new movie appeared for
    that long.  Returns ``(why it stopped, errors)``.
    """
    from .engine import Engine, ensure_app, ensure_job_types

    ensure_app()
    ensure_job_types()
    own = engine is None
    if own:
        # headless, no GUI thread to keep responsive: the cpu pool is the lane's limit (max_parallel)
        s = sessions.get_session(project, session)
        limit = int(sessions.merged(s.params)["runner"]["max_parallel"])
        engine = Engine(cpu_threads=max(1, min(limit, os.cpu_count() or 1)), poll_interval_ms=500)
    if own:
        engine.start()
    runner = SessionRunner(engine, project, session)
    loop = QEventLoop()
    why: list[str] = []
    runner.stopped.connect(lambda reason: (why.append(reason), loop.quit()))
    last_busy = [time.monotonic()]

    def on_changed():
        last_busy[0] = time.monotonic()
        if on_change is not None:
            on_change()

    runner.changed.connect(on_changed)

    last_ask = [0.0]  # asked before the start, then about once a second

    def idle_check():
        if stop_requested is not None and time.monotonic() - last_ask[0] >= 1.0:
            last_ask[0] = time.monotonic()
            if stop_requested():
                runner.stop("interrupted", cancel=True)
                return
        if runner._inflight or sessions.todo(runner.session) or runner._seen:
            last_busy[0] = time.monotonic()
        elif idle_exit_s is not None and time.monotonic() - last_busy[0] >= idle_exit_s:
            runner.stop("idle")

    timer = QTimer()
    timer.setInterval(250)
    timer.timeout.connect(idle_check)
    interrupted: list[int] = []

    def on_signal(signum, _frame):
        interrupted.append(signum)
        QTimer.singleShot(0, lambda: runner.stop("interrupted", cancel=True))

    in_main = threading.current_thread() is threading.main_thread()
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    try:
        if stop_requested is not None and stop_requested():
            # asked before anything ran (a kill right after a lane node took the restore): a run shorter
            # than the first tick would otherwise finish without ever seeing it
            why.append("interrupted")
        else:
            last_ask[0] = time.monotonic()
            runner.start()
            timer.start()
            if runner.running:
                loop.exec()
    finally:
        timer.stop()
        for s, handler in old.items():
            signal.signal(s, handler)
        if own:
            engine.shutdown()
    return (why[0] if why else "stopped"), runner.errors
