"""Driving an :class:`~cryodesk.engine.Engine` without a GUI: event loop, signals, terminal progress.

The CLI runs the very same engine as the GUI: a ``QCoreApplication`` (or the
GUI's application, if one exists) and a local ``QEventLoop`` that returns when
the engine is idle.  Ctrl-C (SIGINT) and SIGTERM cancel what runs — jobs end
*killed*, with partial output handled as their type declares — and the loop
returns once the engine is idle again.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from typing import Callable, TextIO

from PySide6.QtCore import QCoreApplication, QEventLoop, QTimer


def ensure_app() -> QCoreApplication:
    """The running Qt application, or a new QCoreApplication (headless)."""
    return QCoreApplication.instance() or QCoreApplication(sys.argv[:1] or ["cryodesk"])


#: seconds a cancelled job gets to stop after SIGINT/SIGTERM before ``on_force`` gives up on it
FORCE_AFTER_S = 10.0


def run_until_idle(engine, *, stop_when_idle: bool = True, tick: Callable[[], None] | None = None,
                   tick_ms: int = 1000, on_interrupt: Callable[[int], None] | None = None,
                   on_force: Callable[[int], None] | None = None) -> int | None:
    """Run the Qt event loop until ``engine`` is idle; returns the signal number that interrupted it.

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
    ensure_app()
    loop = QEventLoop()
    interrupted: list[int] = []

    def check_done() -> None:
        if engine.is_idle and (stop_when_idle or interrupted):
            loop.quit()

    def force(signum: int) -> None:
        if on_force is not None and not engine.is_idle:
            on_force(signum)
            loop.quit()

    def cancel(first: bool, signum: int) -> None:
        engine.cancel_all()
        if first and on_interrupt is not None:
            on_interrupt(signum)
        if first and on_force is not None:
            QTimer.singleShot(int(FORCE_AFTER_S * 1000), lambda: force(signum))
        elif not first:
            force(signum)
        check_done()

    def on_signal(signum, _frame) -> None:
        # a handler may run between any two bytecodes (even inside a DB call of this
        # thread): only note the signal here and do the work from the event loop
        first = not interrupted
        interrupted.append(signum)
        QTimer.singleShot(0, lambda: cancel(first, signum))

    def on_tick() -> None:
        if tick is not None and not interrupted:
            tick()
        check_done()

    engine.idle.connect(check_done)
    # Python runs signal handlers only between bytecodes: the timer wakes it while Qt waits in C++
    timer = QTimer()
    timer.setInterval(min(tick_ms, 200) if tick is None else tick_ms)
    timer.timeout.connect(on_tick)
    timer.start()
    in_main = threading.current_thread() is threading.main_thread()
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    try:
        QTimer.singleShot(0, check_done)
        loop.exec()
    finally:
        timer.stop()
        for s, handler in old.items():
            signal.signal(s, handler)
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
