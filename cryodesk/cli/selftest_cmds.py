"""``cryodesk self-test [--screenshot FILE]``: check that an installation works, step by step.

Meant for facility staff after ``apt install ./cryodesk_<version>_amd64.deb``
and for the packaging smoke test: each step is reported on its own line with
its time, and the exit status is non-zero if any step failed.

Steps: runtime setup (numba cache directory) → database (a temporary one with
a small project, unless ``--db`` is given: then it is opened — and migrated,
as the app would — but not written) → every module of :mod:`cryodesk.kernels`
(compiled, or loaded from the numba cache, and compared with its numpy
reference) → the Qt platform and its fonts → the main window, rendered to a PNG.
"""

from __future__ import annotations

import os
import pkgutil
import sys
import tempfile
import time
import traceback
from importlib import import_module
from pathlib import Path

#: Extra positional arguments tried, in order, after the sample images (a crop needs a box).
_PROBE_ARGS = ((), ((16, 16),))


class _Report:
    """Runs steps, prints ``ok``/``FAIL``/``skip`` lines with timings, remembers failures."""

    def __init__(self, verbose: bool = False, out=None):
        self.verbose, self.out, self.failed = verbose, out or sys.stdout, []

    def line(self, status: str, name: str, seconds: float, detail: str) -> None:
        print(f"  {status:5s} {name:24s} {seconds:7.2f}s  {detail}", file=self.out, flush=True)

    def step(self, name: str, fn, *args):
        """Run ``fn(*args)`` -> (detail, value); report; return value or None on failure."""
        t0 = time.perf_counter()
        try:
            detail, value = fn(*args)
        except Exception as exc:  # noqa: BLE001 - a self-test reports every failure and goes on
            self.failed.append(name)
            self.line("FAIL", name, time.perf_counter() - t0, f"{type(exc).__name__}: {exc}")
            if self.verbose:
                traceback.print_exc(file=self.out)
            return None
        self.line("ok", name, time.perf_counter() - t0, detail)
        return value

    def skip(self, name: str, why: str) -> None:
        self.failed.append(name)
        self.line("skip", name, 0.0, why)


def _runtime():
    from .. import __version__
    from .._runtime import configure, is_frozen

    env = configure()
    where = "installed bundle" if is_frozen() else "Python environment"
    return (f"cryodesk {__version__} ({where}), Python {sys.version.split()[0]}; "
            f"NUMBA_CACHE_DIR={env['NUMBA_CACHE_DIR']}"), env


def _database(url: str | None, workdir: Path):
    from .. import db as dbmod
    from ..db.migrations import SCHEMA_VERSION

    temporary = url is None
    url = url or str(workdir / "selftest.sqlite")
    dbmod.open_database(url)
    dbmod.db.connect(reuse_if_open=True)
    detail = f"{'temporary ' if temporary else ''}{dbmod.shown_url(url)} (schema v{SCHEMA_VERSION})"
    if temporary:
        detail += "; " + _demo_project(workdir)
    return detail, url


def _demo_project(workdir: Path) -> str:
    """A project with a few jobs, so the screenshot shows a job tree with text."""
    from ..base.errors import CryodeskError
    from ..core import jobs, projects, registry

    project = projects.create_project("Self-test project", workdir / "project")
    projects.create_workspace(project, "main line")
    made = []
    for t in registry.all_types():  # a chain: each job reads the previous one where it can
        if len(made) == 4:
            break
        needs = [s for s in t.inputs if s.required]
        if needs and not made:
            continue
        params = {p.name: _placeholder(p, workdir) for p in t.params if p.default is None}
        for parent in reversed(made or [None]):
            specs = [jobs.InputSpec(s.name, parent.uid) for s in needs] if parent else []
            try:
                made.append(jobs.create_job(project, t.name, "W1", specs, params=params))
                break
            except CryodeskError:
                continue  # inputs or parameters this probe cannot invent: not a failure
    return f"project {project.uid} with {len(made)} job(s)"


def _placeholder(param, workdir: Path):
    """A value for a parameter without default (jobs are created, never run)."""
    return {"int": 64, "float": 1.0, "bool": False}.get(param.type, str(workdir / param.name))


def _kernel_module(name: str, rng):
    import numpy as np

    from ..kernels import _numba

    mod = import_module(f"cryodesk.kernels.{name}")
    if name == "f16c":  # the C extension: no numba
        if not mod.AVAILABLE:
            return ("not available (built without a C compiler, or no F16C in this CPU): float16 output "
                    "is converted by numba or numpy, slower"), None
        sample = rng.standard_normal((3, 32, 32)).astype(np.float32) * 1000
        if mod.to_float16_f16c(sample).tobytes() != sample.astype(np.float16).tobytes():
            raise AssertionError("the F16C float16 conversion disagrees with numpy")
        return "F16C float16 conversion in use; agrees with numpy bit for bit", None
    checked = []
    for attr in sorted(vars(mod)):
        base = attr[: -len("_numba")] if attr.endswith("_numba") else None
        ref = getattr(mod, f"{base}_numpy", None) if base else None
        if ref is None or not callable(getattr(mod, attr)):
            continue
        sample = rng.standard_normal((3, 32, 32)).astype(np.float32)
        for extra in _PROBE_ARGS:
            try:
                want = ref(sample, *extra)
            except TypeError:
                continue  # not this signature: try the next argument set
            got = getattr(mod, attr)(sample, *extra)
            if not np.allclose(np.asarray(got, np.float64), np.asarray(want, np.float64),
                               rtol=1e-3, atol=1e-5, equal_nan=True):
                raise AssertionError(f"{attr} disagrees with {base}_numpy")
            checked.append(base)
            break
    if not _numba.HAVE_NUMBA:
        return f"numpy only ({len(checked)} checked; numba disabled or missing)", None
    from numba.core.dispatcher import Dispatcher

    kernels = [o for o in vars(mod).values() if isinstance(o, Dispatcher)]
    hits = sum(sum(k.stats.cache_hits.values()) for k in kernels)
    misses = sum(sum(k.stats.cache_misses.values()) for k in kernels)
    if not kernels:
        return f"imported (no kernels of its own); agree with numpy: {', '.join(checked) or '-'}", None
    how = ("loaded from cache" if hits and not misses else "compiled" if misses and not hits
           else f"{hits} cached, {misses} compiled" if hits else "not called")
    return (f"{len(kernels)} kernel(s) {how}; agree with numpy: {', '.join(checked) or '-'}"), None


def _qt_platform():
    if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
            or os.environ.get("QT_QPA_PLATFORM")):
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # no display: Qt would abort, not raise
    from PySide6 import __version__ as pyside_version
    from PySide6.QtGui import QFontDatabase, QFontInfo, QGuiApplication

    try:
        from ..ui.app import get_app
    except ImportError:
        from PySide6.QtWidgets import QApplication

        app = QApplication.instance() or QApplication([sys.argv[0]])
    else:
        app = get_app()
    families = QFontDatabase.families()
    if not families:
        raise RuntimeError("no fonts found: install fonts-dejavu-core (fontconfig sees none)")
    font = QFontInfo(app.font()).family()
    return (f"PySide6 {pyside_version}, platform '{QGuiApplication.platformName()}', "
            f"{len(families)} font families, UI font '{font}'"), app


def _main_window(app, screenshot: Path, workdir: Path, show_project: bool):
    from PySide6.QtCore import QEventLoop, QSettings, QTimer

    from ..ui import main_window as mw

    factory = getattr(mw, "QtMainWindow", None)
    if factory is None:
        raise RuntimeError("cryodesk.ui.main_window has no QtMainWindow")
    # Private settings: a self-test must not change the user's window layout or last project.
    settings = QSettings(str(workdir / "settings.ini"), QSettings.Format.IniFormat)
    win = factory(settings)
    try:
        win.resize(1280, 800)
        win.show()
        if show_project and getattr(win, "browser", None) is not None:
            loop = QEventLoop()
            win.graph_loaded.connect(loop.quit)
            QTimer.singleShot(15000, loop.quit)
            win.restore_last_project()
            loop.exec()
        for _ in range(5):
            app.processEvents()
        image = win.grab().toImage()
        _check_not_blank(image)
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(screenshot), "PNG"):
            raise RuntimeError(f"cannot write {screenshot}")
        return f"{image.width()}x{image.height()} -> {screenshot}", None
    finally:
        if hasattr(win, "close_threads"):
            win.close_threads()
        win.close()
        win.deleteLater()
        from PySide6.QtCore import QCoreApplication, QEvent

        # processEvents() alone never runs deferred deletes: the window and its timers would live on
        QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
        app.processEvents()


def _check_not_blank(image) -> None:
    """A rendering with one colour everywhere means nothing was drawn."""
    step = max(1, min(image.width(), image.height()) // 64)
    colours = {image.pixel(x, y) for x in range(0, image.width(), step)
               for y in range(0, image.height(), step)}
    if len(colours) < 2:
        raise RuntimeError("the rendered window is blank")


def run_selftest(db_url: str | None = None, screenshot: str | None = None,
                 verbose: bool = False, out=None) -> int:
    """Run every step; return 0 if all passed, 1 otherwise (see the module docstring)."""
    import numpy as np

    report = _Report(verbose, out)
    print("cryodesk self-test", file=report.out)
    with tempfile.TemporaryDirectory(prefix="cryodesk-selftest-") as tmp:
        workdir = Path(tmp)
        report.step("runtime", _runtime)
        url = report.step("database", _database, db_url, workdir)
        import cryodesk.kernels as kpkg

        rng = np.random.default_rng(0)
        for info in sorted(pkgutil.iter_modules(kpkg.__path__), key=lambda m: m.name):
            if not info.name.startswith("_"):
                report.step(f"kernels.{info.name}", _kernel_module, info.name, rng)
        app = report.step("qt platform", _qt_platform)
        shot = Path(screenshot) if screenshot else workdir / "main-window.png"
        if app is None:
            report.skip("main window", "no Qt application")
        else:
            report.step("main window", _main_window, app, shot, workdir,
                        url is not None and db_url is None)
        try:
            from .. import db as dbmod
            from ..ui import workers

            workers.wait_all()
            dbmod.close_database()
        except Exception:  # noqa: BLE001 - cleanup must not hide the report
            pass
    bad = report.failed
    print(f"self-test {'FAILED: ' + ', '.join(bad) if bad else 'passed'}", file=report.out)
    return 1 if bad else 0


def _selftest(args) -> int:
    return run_selftest(args.db, args.screenshot, args.verbose)


def add_parser(cli) -> None:
    p = cli.top.add_parser("self-test", help="check this installation: database, kernels, Qt, main window")
    p.add_argument("--screenshot", metavar="FILE", help="save the rendered main window as PNG")
    p.add_argument("-v", "--verbose", action="store_true", help="print tracebacks of failed steps")
    p.set_defaults(func=_selftest, needs_db=False)
