"""Shared test fixtures.  Qt runs headless: the platform is set before Qt loads.

Every test runs under :func:`_no_leaks` (napari-style): it fails a test that
leaves something of its own running — a worker, a busy thread of a registered
thread pool, a non-daemon Python thread, an active QTimer, a visible top-level
widget.  A test that needs such a thing for longer must stop it itself.
"""

from __future__ import annotations

import itertools
import os
import sys
import threading
import time
import weakref
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
# the user's state directory (worker logs, the temp-walk stamps of core/recovery): the session's own
if "XDG_STATE_HOME" not in os.environ:
    import tempfile

    os.environ["XDG_STATE_HOME"] = tempfile.mkdtemp(prefix="cryodesk-test-state-")


def _worker_pg_database() -> None:
    """Under pytest-xdist each worker uses a PostgreSQL database of its own: the configured
    one's name + ``_gw<n>`` (created if missing), so that tests emptying it don't meet."""
    url, worker = os.environ.get("CRYODESK_TEST_PG_URL"), os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker or url.rstrip("/").endswith(f"_{worker}"):
        return
    import psycopg2

    base, name = url.rsplit("/", 1)
    mine = f"{name}_{worker}"
    conn = psycopg2.connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [mine])
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{mine}"')
                cur.execute("SELECT current_setting('synchronous_commit')")
                if cur.fetchone()[0] == "off":  # as CI sets the main test database
                    cur.execute(f'ALTER DATABASE "{mine}" SET synchronous_commit = off')
    finally:
        conn.close()
    os.environ["CRYODESK_TEST_PG_URL"] = f"{base}/{mine}"


_worker_pg_database()

import pytest  # noqa: E402

import cryodesk.jobs  # noqa: E402
from cryodesk.base import trashworker as _trashworker  # noqa: E402
from cryodesk.core.deletion import trash as _trash  # noqa: E402

# every built-in job type registered up front, as the app does (a CLI process loads only those it uses:
# tests/jobs/test_type_index.py, tests/engine/test_job_run_imports.py)
cryodesk.jobs.load_all()

# Tests remove their temporary directories at once: empty the trash in-process, not in a
# background emptier (tests/core/test_deletion_journal.py exercises the background one).
_trash.SYNC = True
# and each test project keeps a small reserve (16 MiB each would add up over hundreds of projects)
_trashworker.RESERVE_MAX = 256 << 10

REPO = Path(__file__).resolve().parents[1]
# importlib mode puts no test directory on sys.path; the shared job-type module lives here
if str(REPO / "tests") not in sys.path:
    sys.path.insert(0, str(REPO / "tests"))
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="session")
def realdata_dir() -> Path:
    """Real cryo-EM files written by other software (``../shared/realdata``)."""
    path = Path(os.environ.get("CRYODESK_REALDATA", REPO.parent / "shared" / "realdata"))
    if not (path / "empiar_10076_7.mrc").exists():
        pytest.skip(f"real test data not found at {path}")
    return path


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests save screenshots and other things a person should look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


_counter = itertools.count()


@pytest.fixture
def database(tmp_path):
    """A fresh SQLite database bound to the models for this test."""
    from cryodesk import db as dbmod

    database = dbmod.open_database(str(tmp_path / f"db{next(_counter)}.sqlite"))
    with dbmod.db.connection_context():
        yield database
    dbmod.close_database()


@pytest.fixture
def project(database, tmp_path):
    """Project P1 ("Test project") with workspace W1, in a fresh database."""
    from cryodesk.core import projects

    p = projects.create_project("Test project", tmp_path / "proj")
    projects.create_workspace(p, "main")
    return p


# -- leak checks ------------------------------------------------------------------------------

pytest_plugins = ("pytester",)  # tests/test_leak_checks.py runs a leaking test in a sub-session


class LeakWatch:
    """What a test started that may outlive it; :meth:`report` lists what still runs.

    Qt parts are checked only once Qt is loaded (most test modules never load it).
    """

    #: a pool thread returning from a worker that just reported gets this long (ms)
    POOL_GRACE_MS = 20
    #: a thread that was told to stop just before the test ended gets this long (s)
    THREAD_GRACE_S = 0.2

    def __init__(self) -> None:
        self.threads_before = set(threading.enumerate())
        self.timers: list[weakref.ref] = []
        self.widgets_before: set[int] = set()
        self._restore = None
        if "PySide6.QtCore" in sys.modules:
            self._watch_timers()
        app = self._app()
        if app is not None:
            self.widgets_before = {id(w) for w in app.topLevelWidgets() if w.isVisible()}

    @staticmethod
    def _app():
        if "PySide6.QtWidgets" not in sys.modules:
            return None
        from PySide6.QtWidgets import QApplication

        app = QApplication.instance()
        return app if isinstance(app, QApplication) else None

    def _watch_timers(self) -> None:
        from PySide6.QtCore import QTimer

        original = QTimer.start
        timers = self.timers

        def start(timer, *args):
            timers.append(weakref.ref(timer))
            return original(timer, *args)

        QTimer.start = start
        self._restore = lambda: setattr(QTimer, "start", original)

    def stop_watching(self) -> None:
        if self._restore is not None:
            self._restore()
            self._restore = None

    # -- what still runs ---------------------------------------------------------------
    @staticmethod
    def _workers():
        return sys.modules.get("cryodesk.engine.workers")

    def _settle(self) -> None:
        """Deliver what has already happened: a finished worker's queued ``released``."""
        workers = self._workers()
        if workers is None:
            return
        from PySide6.QtCore import QCoreApplication

        for pool in workers.pools():
            pool.waitForDone(self.POOL_GRACE_MS)
        if QCoreApplication.instance() is not None:
            QCoreApplication.sendPostedEvents()
            QCoreApplication.processEvents()

    def report(self) -> list[str]:
        """One line per thing the test left running (empty: clean)."""
        self._settle()
        out = []
        workers = self._workers()
        if workers is not None:
            out += [f"worker still running: {w!r}" for w in workers.live_workers()]
            out += [f"thread pool {p!r} has {p.activeThreadCount()} busy thread(s)" for p in workers.busy_pools()]
        deadline = time.monotonic() + self.THREAD_GRACE_S
        for t in threading.enumerate():
            if t in self.threads_before or t.daemon:
                continue
            t.join(max(0.0, deadline - time.monotonic()))
            if t.is_alive():
                out.append(f"non-daemon thread still alive: {t!r} (target {getattr(t, '_target', None)!r})")
        out += [f"QTimer still active: {t!r} (parent {t.parent()!r}, interval {t.interval()} ms)"
                for t in self._active_timers()]
        out += [f"top-level widget still visible: {w.metaObject().className()} {w.objectName()!r} "
                f"titled {w.windowTitle()!r}" for w in self._new_widgets()]
        return out

    def _active_timers(self) -> list:
        if not self.timers:
            return []
        import shiboken6

        seen, out = set(), []
        for ref in self.timers:
            t = ref()
            if t is not None and id(t) not in seen and shiboken6.isValid(t) and t.isActive():
                seen.add(id(t))
                out.append(t)
        return out

    def _new_widgets(self) -> list:
        app = self._app()
        if app is None:
            return []
        return [w for w in app.topLevelWidgets() if w.isVisible() and id(w) not in self.widgets_before]

    def clean_up(self) -> None:
        """Stop what leaked, so the next test starts clean (after :meth:`report` found it)."""
        workers = self._workers()
        if workers is not None:
            workers.cancel_all()
            workers.wait_all(10000)
        for t in self._active_timers():
            t.stop()
        for w in self._new_widgets():
            w.close()


@pytest.fixture
def leak_watch():
    """A fresh :class:`LeakWatch` (tests of the leak checks themselves)."""
    watch = LeakWatch()
    yield watch
    watch.stop_watching()


@pytest.fixture(autouse=True)
def _no_leaks(request):
    """Fail the test if it leaves a worker, a busy pool thread, a thread, a timer or a window running."""
    watch = LeakWatch()
    yield
    try:
        leaks = watch.report()
    finally:
        watch.stop_watching()
    if leaks:
        watch.clean_up()
        pytest.fail(f"{request.node.nodeid} left things running:\n  " + "\n  ".join(leaks), pytrace=False)
