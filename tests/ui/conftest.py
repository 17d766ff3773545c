"""Fixtures for the GUI tests: a fresh database, a small runnable project, the main window.

Test job types: the ``ui`` family of tests/jobtypes.py (its own names, so it never replaces
another suite's types) plus a slow and a failing type.
"""

from __future__ import annotations

import itertools

import jobtypes
import pytest

from cryodesk.base.errors import DataError
from cryodesk.core import registry
from cryodesk.core.registry import JobType, OutputGroup, Param


def _run_slow(ctx):
    import time

    for k in range(int(ctx.params["steps"])):
        ctx.check_cancel()
        time.sleep(0.05)
        ctx.progress((k + 1) / int(ctx.params["steps"]), f"step {k + 1}")
    out = ctx.job_dir / "slow.bin"
    out.write_bytes(b"s" * 4096)
    ctx.add_output("particles", out, kind="blob")


def _run_fail(ctx):
    (ctx.job_dir / "partial.bin").write_bytes(b"p" * 1500)
    raise DataError("the test type always fails")


# the ui family: steps repeat their input's first byte, iterations write 3000 bytes each
UI_TYPES = jobtypes.family("ui", step_fill="repeat", iter_bytes=(3000, 0), register=False) + [
    JobType("ui_slow", "UI slow", "utilities", params=(Param("steps", 20, "int"),),
            outputs=(OutputGroup("particles", "particle"),), run=_run_slow),
    JobType("ui_fail", "UI failing", "utilities", outputs=(OutputGroup("particles", "particle"),), run=_run_fail),
]
for _t in UI_TYPES:
    registry.register(_t)

_counter = itertools.count()

#: the demo DAG: job i reads from the listed earlier jobs (J1 is index 0)
DEMO_EDGES = [[], [0], [1], [1], [2, 3], [4], [0], [6], [7], []]
DEMO_TYPES = ["ui_source", "ui_motion", "ui_step", "ui_step", "ui_step", "ui_step", "ui_motion", "ui_step", "ui_step",
              "ui_source"]


@pytest.fixture
def ui_db(tmp_path):
    """A fresh SQLite database; the GUI thread keeps one connection, workers open their own."""
    from cryodesk import db as dbmod

    database = dbmod.open_database(str(tmp_path / f"ui{next(_counter)}.sqlite"))
    dbmod.db.connect(reuse_if_open=True)
    yield database
    dbmod.close_database()


def build_demo(tmp_path, run: bool = True, extra: bool = False):
    """Project P1 with workspaces W1 (J1-J9) and W2 (J10, also linked J1); jobs run to completion.

    With ``extra``: workspace W3 with J11 (iterative, 3 versions kept), J12 (failed), J13 (killed).
    """
    from cryodesk.core import actions, cleanup, jobs, projects, runner

    p = projects.create_project("Demo", tmp_path / "proj")
    projects.create_workspace(p, "main line")
    projects.create_workspace(p, "side")
    made = []
    for i, (parents, jtype) in enumerate(zip(DEMO_EDGES, DEMO_TYPES)):
        specs = [jobs.InputSpec("particles", made[k].uid) for k in parents]
        made.append(jobs.create_job(p, jtype, "W1", specs, params={"nbytes": 1000 * (i + 1)}))
    if run:
        for j in made:
            runner.run_job(p, j)
    actions.move(p, [made[9]], "W2")
    actions.link(p, [made[0]], "W2")
    if extra:
        projects.create_workspace(p, "classes")
        cleanup.set_project_setting(p, "delete_intermediate", False)
        it = jobs.create_job(p, "ui_iter", "W3", [jobs.InputSpec("particles", made[1].uid)])
        runner.run_job(p, it)
        runner.run_job(p, jobs.create_job(p, "ui_fail", "W3"))
        killed = jobs.create_job(p, "ui_source", "W3", params={"nbytes": 2500})
        runner.run_job(p, killed)
        jobs.set_status(jobs.get_job(p, killed.uid), "killed", error="killed in a test")
    return p


@pytest.fixture
def demo(ui_db, tmp_path):
    return build_demo(tmp_path)


@pytest.fixture
def big_demo(ui_db, tmp_path):
    return build_demo(tmp_path, extra=True)


@pytest.fixture
def settings(tmp_path):
    from PySide6.QtCore import QSettings

    return QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def make_window(qtbot, settings):
    """Factory: the real main window, shown, with its first tree loaded; closed and deleted afterwards.

    Closing a window stops its change watcher and engine and waits for its workers, as
    quitting the app does; the root conftest's leak check then finds nothing left running.
    """
    from PySide6.QtCore import QCoreApplication, QEvent

    from cryodesk.ui.main_window import QtMainWindow

    made = []

    def make(scope=("P1", "W1"), size=(1400, 900)):
        win = QtMainWindow(settings)
        made.append(win)
        win.resize(*size)
        win.show()
        qtbot.waitExposed(win)
        if scope is not None:
            with qtbot.waitSignal(win.graph_loaded, timeout=10000):
                win.browser.select_scope(*scope)
            win.view.fit()
            qtbot.wait(20)
        return win

    yield make
    for win in made:
        win.close()
        win.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.Type.DeferredDelete)
    QCoreApplication.processEvents()


@pytest.fixture
def window(demo, make_window):
    return make_window()


def scene_point(win, i, dx=0.5, dy=0.5):
    """Viewport position of a point inside job ``i``'s card (fractions of the card)."""
    from cryodesk.core.layout import CARD_H, CARD_W

    scene = win.view.scene()
    x = float(scene.snap.x[i]) + CARD_W * dx
    y = float(scene.snap.y[i]) + CARD_H * dy
    from PySide6.QtCore import QPointF

    return win.view.mapFromScene(QPointF(x, y))
