"""The headless engine of ``cryodesk job run`` and ``worker run``: the shared scheduler, no Qt.

:class:`HeadlessEngine` is the same :class:`~cryodesk.engine.scheduler.Scheduler`
as the GUI's :class:`~cryodesk.engine.Engine` — the same job bodies, status
transitions, owners, heartbeats and kill requests — on plain thread pools
(``cpu``: cores - 1 threads, ``io``: 2), with outcomes handed to the thread
that drives it through one queue.  :func:`run_until_idle` is that thread's
loop: it returns when the engine is idle.  Ctrl-C (SIGINT) and SIGTERM cancel
what runs — jobs end *killed*, with partial output handled as their type
declares — and the loop returns once the engine is idle again; a second
signal, or :data:`FORCE_AFTER_S` after the first, calls ``on_force`` for jobs
that did not stop.  Importing this module loads no Qt (a trivial ``job run``
starts in a fraction of the time); only the types of the jobs run are loaded.
"""

from __future__ import annotations

import logging
import queue
import signal
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from typing import Callable, TextIO

from ..base.errors import CryodeskError
from .bodies import ProgressThrottle, run_body
from .scheduler import Scheduler, default_cpu_threads, ensure_job_types

log = logging.getLogger("cryodesk.engine")

#: seconds a cancelled job gets to stop after SIGINT/SIGTERM before ``on_force`` gives up on it
FORCE_AFTER_S = 10.0
#: the longest the loop sleeps: Python runs a signal handler only once the main thread wakes
_WAKE_S = 0.2

_SIGNALS = ("job_started", "job_progress", "job_waiting", "job_finished", "job_handed_off",
            "task_started", "task_progress", "task_finished", "idle")


class Hook:
    """A signal without Qt: slots connected here are called by ``emit``, in the engine's thread."""

    def __init__(self) -> None:
        self._slots: list[Callable] = []

    def connect(self, slot: Callable) -> None:
        self._slots.append(slot)

    def disconnect(self, slot: Callable) -> None:
        self._slots.remove(slot)

    def emit(self, *args) -> None:
        for slot in list(self._slots):
            slot(*args)


class _Handle:
    """What the scheduler keeps of a started body: its cancel event (and its future)."""

    def __init__(self) -> None:
        self.cancel_event = threading.Event()
        self.future = None


class HeadlessEngine(Scheduler):
    """The scheduler on two thread pools, driven by :func:`run_until_idle` (or :meth:`process_events`).

    Same signals as :class:`cryodesk.engine.Engine` (as :class:`Hook` objects),
    emitted in the thread that calls :meth:`process_events`.  Only the types of
    the jobs queued are loaded (:func:`~cryodesk.engine.scheduler.ensure_job_types`).
    """

    def __init__(self, *, cpu_threads: int | None = None, io_threads: int = 2, poll_interval_ms: int = 1000):
        for name in _SIGNALS:
            setattr(self, name, Hook())
        self._init_scheduler()
        # (as a QThreadPool: a size below one is one thread)
        self._threads = {"cpu": max(1, cpu_threads or default_cpu_threads()), "io": max(1, io_threads)}
        self.pools = self._new_pools()
        self._events: queue.SimpleQueue = queue.SimpleQueue()  # (put is reentrant: signal handlers post too)
        self._futures: set = set()
        self._poll_s = poll_interval_ms / 1000.0
        self._next_poll: float | None = None

    def _new_pools(self) -> dict[str, ThreadPoolExecutor]:
        return {name: ThreadPoolExecutor(n, f"cryodesk-{name}") for name, n in self._threads.items()}

    def shutdown(self, wait_ms: int = -1) -> bool:
        """As :meth:`Scheduler.shutdown`; then the pools' threads end (the next job gets new ones)."""
        done = super().shutdown(wait_ms)
        for pool in self.pools.values():
            pool.shutdown(wait=done)  # (a thread still blocked in a job is left to the process's end)
        self.pools = self._new_pools()  # (threads start only when a job is submitted)
        return done

    # -- the scheduler's mechanics ---------------------------------------------------------
    def _launch(self, key, body, pool: str, name: str, announces_start: bool) -> _Handle:
        handle = _Handle()
        post = self._events.put

        def run() -> None:  # in a pool thread
            status, payload = "failed", "the worker stopped unexpectedly"
            try:
                progress = ProgressThrottle(lambda f, m: post(("progress", key, f, m)))
                status, payload = run_body(body, progress, handle.cancel_event, lambda: post(("started", key)),
                                           announces_start, name)
            finally:
                post(("finished", key, status, payload))

        self._futures = {f for f in self._futures if not f.done()}  # (only this thread touches the set)
        handle.future = self.pools[pool].submit(run)
        self._futures.add(handle.future)
        return handle

    def _later(self, fn) -> None:
        self._events.put(("call", fn))

    def _start_timer(self) -> None:
        self._next_poll = time.monotonic() + self._poll_s

    def _stop_timer(self) -> None:
        self._next_poll = None

    def _wait_pools(self, wait_ms: int) -> bool:
        _, running = wait_futures(list(self._futures), None if wait_ms < 0 else wait_ms / 1000.0)
        return not running

    def _job_types(self, jobs) -> None:
        ensure_job_types({j.type for j in jobs})  # only these (their parents' load when asked for)

    # -- the loop --------------------------------------------------------------------------
    def post_signal(self, signum: int) -> None:
        """Hand a signal to the loop (safe from a signal handler)."""
        self._events.put(("signal", signum))

    def process_events(self, timeout: float) -> list[int]:
        """Handle what the pool threads reported (waiting up to ``timeout`` s for the first) and the
        poll timer; returns the signals posted meanwhile."""
        signals: list[int] = []
        if self._next_poll is not None:
            timeout = max(0.0, min(timeout, self._next_poll - time.monotonic()))
        try:
            event = self._events.get(timeout=timeout)
        except queue.Empty:
            event = None
        while event is not None:
            kind, *args = event
            if kind == "signal":
                signals.append(args[0])
            else:
                self._dispatch(kind, args)
            try:
                event = self._events.get_nowait()
            except queue.Empty:
                event = None
        if self._next_poll is not None and time.monotonic() >= self._next_poll:
            self._next_poll = time.monotonic() + self._poll_s
            self._dispatch("poll", ())
        return signals

    def _dispatch(self, kind: str, args) -> None:
        # as a Qt slot's exception does not end the GUI engine's loop, one here (a database busy
        # past its timeout in a heartbeat) is logged and the loop goes on: the next poll retries
        try:
            if kind == "call":
                args[0]()
            elif kind == "started":
                self._on_started(*args)
            elif kind == "progress":
                self._on_progress(*args)
            elif kind == "finished":
                self._on_finished(*args)
            else:
                self.poll()
        except Exception:
            log.exception("engine: %s failed", kind)


def run_until_idle(engine: HeadlessEngine, *, stop_when_idle: bool = True, tick: Callable[[], None] | None = None,
                   tick_ms: int = 1000, on_interrupt: Callable[[int], None] | None = None,
                   on_force: Callable[[int], None] | None = None) -> int | None:
    """Run ``engine``'s loop until it is idle; returns the signal number that interrupted it.

    Parameters
    ----------
    stop_when_idle : bool
        False for a long-lived worker: loop until interrupted (then until idle).
    tick : callable, optional
        Called every ``tick_ms`` in the loop's thread (a worker adopts queued jobs here).
    on_interrupt : callable, optional
        Called with the signal number on the first SIGINT/SIGTERM (after cancelling).
    on_force : callable, optional
        Called with the signal number when a second signal comes, or :data:`FORCE_AFTER_S`
        after the first, and jobs still run: a job blocked where its cancel cannot reach it
        (a read from a hung file system) must not keep the process from ending.  It should
        record the jobs as killed and end the process (``os._exit``); if it returns, the loop ends.
    """
    interrupted: list[int] = []
    state = {"quit": False, "force_at": None}

    def check_done() -> None:
        if engine.is_idle and (stop_when_idle or interrupted):
            state["quit"] = True

    def force(signum: int) -> None:
        if on_force is not None and not engine.is_idle:
            on_force(signum)
            state["quit"] = True

    def on_signal(signum: int) -> None:
        first = not interrupted
        interrupted.append(signum)
        engine.cancel_all()
        if first and on_interrupt is not None:
            on_interrupt(signum)
        if first and on_force is not None:
            state["force_at"] = (time.monotonic() + FORCE_AFTER_S, signum)
        elif not first:
            force(signum)
        check_done()

    def handler(signum, _frame) -> None:
        # a handler may run between any two bytecodes (even inside a DB call of this
        # thread): only hand the signal to the loop, which does the work
        engine.post_signal(signum)

    engine.idle.connect(check_done)
    in_main = threading.current_thread() is threading.main_thread()
    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    tick_s = tick_ms / 1000.0
    next_tick = time.monotonic() + tick_s
    try:
        check_done()
        while not state["quit"]:
            now = time.monotonic()
            wait = min(_WAKE_S, max(0.0, next_tick - now))
            if state["force_at"] is not None:
                wait = min(wait, max(0.0, state["force_at"][0] - now))
            for signum in engine.process_events(wait):
                on_signal(signum)
                if state["quit"]:
                    break
            if state["quit"]:
                break
            now = time.monotonic()
            if state["force_at"] is not None and now >= state["force_at"][0]:
                signum = state["force_at"][1]
                state["force_at"] = None
                force(signum)
            if now >= next_tick:
                next_tick = now + tick_s
                if tick is not None and not interrupted:
                    try:  # (as a Qt timer's slot: an error is logged, the loop goes on)
                        tick()
                    except Exception as exc:  # a queued job a worker cannot take (its type unknown here)
                        log.error("engine: tick failed: %s", exc, exc_info=not isinstance(exc, CryodeskError))
            check_done()
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        engine.idle.disconnect(check_done)
    return interrupted[0] if interrupted else None


class TerminalProgress:
    """Show an engine's jobs on a terminal: one redrawn bar line on a TTY, plain lines otherwise."""

    WIDTH = 24

    def __init__(self, engine, stream: TextIO | None = None, min_interval: float = 0.1):
        self.stream = stream or sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.min_interval = min_interval
        self.state: dict[str, tuple[float | None, str]] = {}  # "P1 J5" -> (fraction or None, message)
        self._last_draw = 0.0
        self._last_decile: dict[str, int] = {}
        engine.job_started.connect(self.started)
        engine.job_progress.connect(self.progress)
        engine.job_waiting.connect(self.waiting)
        engine.job_finished.connect(self.finished)

    # slots ---------------------------------------------------------------------------
    def started(self, project_uid: str, job_uid: str) -> None:
        key = f"{project_uid} {job_uid}"
        self.state[key] = (0.0, "started")
        self._line(f"{key}: started")

    def waiting(self, project_uid: str, job_uid: str, reason: str) -> None:
        key = f"{project_uid} {job_uid}"
        self.state[key] = (None, reason)
        self._line(f"{key}: {reason}")

    def progress(self, project_uid: str, job_uid: str, fraction: float, message: str) -> None:
        key = f"{project_uid} {job_uid}"
        self.state[key] = (fraction, message)
        if self.tty:
            self._draw()
        else:  # logs get a line per 10 % step, not per call
            decile = int(fraction * 10 + 1e-9)
            if decile > self._last_decile.get(key, 0):
                self._last_decile[key] = decile
                self._line(f"{key}: {fraction:4.0%} {message}".rstrip())

    def finished(self, project_uid: str, job_uid: str, status: str) -> None:
        key = f"{project_uid} {job_uid}"
        self.state.pop(key, None)
        self._line(f"{key}: {status}")

    # drawing -------------------------------------------------------------------------
    def bar(self, fraction: float) -> str:
        filled = int(round(fraction * self.WIDTH))
        return "[" + "#" * filled + "." * (self.WIDTH - filled) + f"] {fraction:4.0%}"

    def _line(self, text: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        if self.tty:
            self._draw(force=True)
        self.stream.flush()

    def _draw(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_draw < self.min_interval:
            return
        self._last_draw = now
        parts = [f"{key} {msg}" if frac is None else f"{key} {self.bar(frac)} {msg}".rstrip()
                 for key, (frac, msg) in sorted(self.state.items())]
        self.stream.write("\r\x1b[K" + " | ".join(parts)[:200])
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
