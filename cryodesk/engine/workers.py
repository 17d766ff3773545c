"""The one worker mechanism of the app: a ``QRunnable`` running a Qt-free body, a signals object, a registry.

The engine's jobs and tasks and the window's short calls (loading a tree,
planning a deletion, polling the change log) all run as a :class:`Worker`.
The model is superqt's ``utils/_qthreading.py``:

* ``QRunnable`` is not a QObject, so each worker carries a :class:`WorkerSignals`,
  created in the thread that makes the worker (the GUI thread, or the main
  thread of a headless command).  Signals emitted in the pool thread reach the
  slots of QObjects living in that thread as queued calls.
* **Ownership.**  :func:`start` puts the worker (the Python object, with its signals
  and outcome) in a registry; when the body has returned, the pool thread emits
  ``finished`` and then ``released``.  The
  registry, a QObject of the application's main thread, drops its reference in
  its ``released`` slot.  Queued calls reach a thread in the order they were
  posted, so every slot connected to ``finished`` in that thread has run before
  the worker can be collected (the old ``ui.workers`` dropped it on the pool
  thread, before the GUI had seen ``finished``).
* The registry also knows every pool a worker ran on, so a test (or shutdown)
  can ask "is anything still running?" (:func:`live_workers`, :func:`busy_pools`,
  :func:`wait_all`).

A *body* is ``body(progress, cancel_event) -> (status, payload)``; it runs in a
pool thread inside ``db.connection_context()`` (one SQLite connection per
thread) and must not touch Qt.  :func:`submit` wraps a plain function for the
GUI, with ``on_done`` / ``on_error`` called in the main thread.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
import traceback
from typing import Any, Callable

import shiboken6
from PySide6.QtCore import QCoreApplication, QEventLoop, QObject, QRunnable, QThread, QThreadPool, Signal, Slot

from ..base.errors import CryodeskError
from .bodies import PROGRESS_INTERVAL, Body, ProgressThrottle, run_body  # noqa: F401  (PROGRESS_INTERVAL: API)

log = logging.getLogger("cryodesk.engine")
_call_ids = itertools.count(1)


class WorkerSignals(QObject):
    """Signals of one worker; ``key`` identifies the worker to whoever started it."""

    started = Signal(object)
    progress = Signal(object, float, str)
    finished = Signal(object, str, object)  # key, status, payload
    released = Signal(object)  # the worker, after finished: the registry lets go of it


class Worker(QRunnable):
    """Run ``body`` in a pool thread, reporting through :attr:`signals`.

    Parameters
    ----------
    key : object
        Passed back with every signal (the engine uses ``("job", id)`` / ``("task", id)``).
    body : callable
        ``body(progress, cancel_event) -> (status, payload)``, or with
        ``announces_start`` ``body(progress, cancel_event, started)``: the body
        emits ``started`` itself (a job: only once it will really run).
    name : str, optional
        Shown in leak reports and logs.
    """

    def __init__(self, key, body: Body, announces_start: bool = False, name: str | None = None):
        super().__init__()
        # autoDelete stays on: the pool deletes the C++ runnable when run() has returned, in its
        # own thread (with it off, PySide keeps a reference for the pool that is never dropped:
        # every worker would live forever).  This Python object, its signals and its outcome
        # live on, owned by the registry until ``released``.
        self._announces_start = announces_start
        self.key = key
        self.name = name or str(key)
        self.signals = WorkerSignals()
        self.cancel_event = threading.Event()
        self._body = body
        #: thread-safe progress report (throttled; the final 100 % always goes through)
        self.progress = ProgressThrottle(self._emit_progress)
        #: the outcome, set in the pool thread before ``finished``
        self.status: str | None = None
        self.payload: object = None
        #: where it was started (file:line), for leak reports
        self.origin = ""
        self._on_done: Callable | None = None
        self._on_error: Callable | None = None
        self._context: QObject | None = None

    def __repr__(self) -> str:
        return f"<Worker {self.name} started at {self.origin or '?'}>"

    def _emit_progress(self, fraction: float, message: str) -> None:
        self.signals.progress.emit(self.key, fraction, message)

    def cancel(self) -> None:
        """Ask the body to stop (it checks ``cancel_event``)."""
        self.cancel_event.set()

    def _started(self) -> None:
        self.signals.started.emit(self.key)

    def run(self) -> None:  # called by QThreadPool in a pool thread
        status, payload = "failed", "the worker stopped unexpectedly"
        try:
            status, payload = run_body(self._body, self.progress, self.cancel_event, self._started,
                                       self._announces_start, self.name)
        finally:
            self.status, self.payload = status, payload
            self.signals.finished.emit(self.key, status, payload)
            self.signals.released.emit(self)


class _Registry(QObject):
    """The live workers and the pools they run on (one per process, in the main thread)."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.live: dict[Worker, None] = {}  # insertion-ordered set
        # Strong references to the wrappers: a weak one to the global pool's wrapper dies with the
        # wrapper (Qt owns the pool).  A pool deleted by its owner (an engine) is dropped when its
        # wrapper turns invalid.
        self.pools: list[QThreadPool] = []

    def add_pool(self, pool: QThreadPool) -> None:
        with self.lock:
            if not any(p is pool for p in self.pools):
                self.pools.append(pool)

    @Slot(object)
    def release(self, worker: Worker) -> None:
        """The worker's ``finished`` has been handled in this thread: run its callbacks, let go."""
        try:
            callback = worker._on_done if worker.status == "completed" else worker._on_error
            context = worker._context
            if callback is not None and (context is None or shiboken6.isValid(context)):
                callback(worker.payload)
        finally:
            worker._on_done = worker._on_error = worker._context = None
            with self.lock:
                self.live.pop(worker, None)


_registry: _Registry | None = None
_registry_lock = threading.Lock()


def _get_registry() -> _Registry:
    global _registry
    with _registry_lock:
        if _registry is None:
            _registry = _Registry()
            app = QCoreApplication.instance()
            if app is not None and QThread.currentThread() is not app.thread():
                _registry.moveToThread(app.thread())  # its slots must run where the GUI runs
            _registry.add_pool(QThreadPool.globalInstance())
        return _registry


def _calling_place() -> str:
    for frame in reversed(traceback.extract_stack(limit=12)[:-1]):
        if not frame.filename.endswith(("engine/workers.py", "engine/engine.py", "engine/scheduler.py")):
            return f"{frame.filename}:{frame.lineno} ({frame.name})"
    return "?"


def default_pool() -> QThreadPool:
    """The pool of the window's short calls (Qt's global pool)."""
    return QThreadPool.globalInstance()


def register_pool(pool: QThreadPool) -> QThreadPool:
    """Let :func:`busy_pools` and :func:`wait_all` see ``pool`` (the engine registers its two)."""
    _get_registry().add_pool(pool)
    return pool


def start(worker: Worker, pool: QThreadPool | None = None) -> Worker:
    """Own ``worker`` until its ``finished`` has been handled, and start it on ``pool``."""
    reg = _get_registry()
    pool = pool if pool is not None else default_pool()
    reg.add_pool(pool)
    worker.origin = worker.origin or _calling_place()
    with reg.lock:
        reg.live[worker] = None
    worker.signals.released.connect(reg.release)  # a slot of a main-thread QObject: queued
    pool.start(worker)
    return worker


def call_body(fn: Callable[..., Any], args=(), kwargs=None) -> Body:
    """A body calling ``fn(*args, **kwargs)``: ``completed`` with its result, or ``failed`` with the exception."""
    kwargs = kwargs or {}

    def body(progress, cancel_event):
        try:
            return "completed", fn(*args, **kwargs)
        except CryodeskError as exc:  # refused or bad input: the message is for the user
            return "failed", exc
        except Exception as exc:  # a bug: the traceback goes to the log, the message to the user
            log.error("%s failed:\n%s", getattr(fn, "__qualname__", fn), traceback.format_exc())
            return "failed", exc

    return body


def submit(fn: Callable[..., Any], *args, on_done: Callable | None = None, on_error: Callable | None = None,
           pool: QThreadPool | None = None, context: QObject | None = None, **kwargs) -> Worker:
    """Run ``fn(*args, **kwargs)`` on a pool thread; ``on_done(result)`` / ``on_error(exc)`` run in the main thread.

    Parameters
    ----------
    fn : callable
        Qt-free; it runs inside ``db.connection_context()``.
    on_done, on_error : callable, optional
        Called with the return value or the exception, after the worker's ``finished``.
    pool : QThreadPool, optional
        Default :func:`default_pool`.
    context : QObject, optional
        The callbacks are skipped if this object was deleted meanwhile (a closed dialog).

    Returns
    -------
    Worker
        Already started; its ``cancel_event`` is unused by plain functions.
    """
    name = getattr(fn, "__qualname__", None) or repr(fn)
    worker = Worker(("call", next(_call_ids)), call_body(fn, args, kwargs), name=name)
    worker._on_done, worker._on_error, worker._context = on_done, on_error, context
    return start(worker, pool)


def pools() -> list[QThreadPool]:
    """Every pool a worker has run on (and the engine's), still alive."""
    reg = _get_registry()
    with reg.lock:
        reg.pools = [p for p in reg.pools if shiboken6.isValid(p)]
        return list(reg.pools)


def live_workers() -> list[Worker]:
    """Workers started and not yet released (running, queued in a pool, or finished but not yet handled)."""
    reg = _get_registry()
    with reg.lock:
        return list(reg.live)


def busy_pools() -> list[QThreadPool]:
    """Registered pools with a thread running something now."""
    return [p for p in pools() if p.activeThreadCount() > 0]


def cancel_all() -> None:
    """Set the cancel event of every live worker (their bodies decide how soon they stop)."""
    for worker in live_workers():
        worker.cancel()


def wait_all(msecs: int = 10000) -> bool:
    """Wait until no pool is busy and every worker has been released (its callbacks run).

    Called in the main thread it processes events meanwhile, so the
    ``finished`` slots and callbacks run (and may start further workers, which
    are waited for too).  Returns False if something still runs after ``msecs``.
    """
    deadline = time.monotonic() + msecs / 1000.0
    reg = _get_registry()
    app = QCoreApplication.instance()
    in_main = app is not None and QThread.currentThread() is reg.thread()
    while True:
        for pool in pools():
            pool.waitForDone(max(0, int((deadline - time.monotonic()) * 1000)))
        if in_main:
            QCoreApplication.sendPostedEvents()
            QCoreApplication.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 20)
        if not live_workers() and not busy_pools():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.002)
