"""Run slow calls off the GUI thread: a worker = QRunnable + a signals object, kept alive until done.

Every worker body runs inside ``db.connection_context()`` (one SQLite
connection per thread).  Results come back through queued signals, so slots run
on the GUI thread.
"""

from __future__ import annotations

import traceback
from typing import Any, Callable

from PySide6.QtCore import QObject, QRunnable, QThreadPool, Signal

from ..db import db


class WorkerSignals(QObject):
    finished = Signal(object)  # the function's return value
    failed = Signal(object)  # the exception
    progress = Signal(float, str)


class FunctionWorker(QRunnable):
    """Call ``fn(*args, **kwargs)`` on a pool thread; emit ``finished`` or ``failed``."""

    _alive: set["FunctionWorker"] = set()  # strong refs: a collected runnable never reports

    def __init__(self, fn: Callable[..., Any], *args, **kwargs) -> None:
        super().__init__()
        self.setAutoDelete(False)
        self.fn, self.args, self.kwargs = fn, args, kwargs
        self.signals = WorkerSignals()

    def run(self) -> None:  # pool thread
        try:
            with db.connection_context():
                result = self.fn(*self.args, **self.kwargs)
        except Exception as exc:  # reported to the GUI, never swallowed
            exc.traceback_text = traceback.format_exc()
            self.signals.failed.emit(exc)
        else:
            self.signals.finished.emit(result)
        finally:
            FunctionWorker._alive.discard(self)


def pool() -> QThreadPool:
    return QThreadPool.globalInstance()


def submit(fn: Callable[..., Any], *args, on_done=None, on_error=None, **kwargs) -> FunctionWorker:
    """Start ``fn`` on the thread pool; ``on_done(result)`` / ``on_error(exc)`` run on the GUI thread."""
    worker = FunctionWorker(fn, *args, **kwargs)
    if on_done is not None:
        worker.signals.finished.connect(on_done)
    if on_error is not None:
        worker.signals.failed.connect(on_error)
    FunctionWorker._alive.add(worker)
    pool().start(worker)
    return worker


def wait_all(msecs: int = 10000) -> bool:
    """Block until every worker has finished (used on shutdown and in tests)."""
    return pool().waitForDone(msecs)
