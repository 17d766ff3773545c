"""GUI speed: open + paint the job tree for 10k / 50k synthetic jobs, pan frames, engine stall.

For each size: a project is bulk-inserted into a fresh SQLite database (the
same DAG shape as ``benchmarks/graph.py``), then timed:

* ``load``   — :func:`cryodesk.core.layout.load_graph` (3 queries + layout; cold layout cache;
  ``load_first`` also pays the one-time import of the job-type modules)
* ``layout`` — :func:`place` alone, cold and cached
* ``scene``  — building the scene (batched overview item, selection overlay)
* ``paint``  — the first full paint of the fitted view (every job and edge)
* ``pan``    — mean / max frame time while panning at card zoom (per-job cards in view)
  and zoomed out (overview only)

Baseline, measured in the same run: painting the same jobs as one
Python-subclassed QGraphicsItem per job (the approach DESIGN.md warns about),
on the 10k tree only (at 50k it takes too long to be worth waiting for).

With the job engine installed, the max event-loop stall (gap between 5 ms
timer ticks) is measured while a numpy-heavy job runs.

``launch`` — launch to tree with the demo present: a fresh process (as ``cryodesk gui``
starts) opens the database holding the demo project, shows the main window and paints the
demo's main workspace; timed from the moment the process is spawned to that first paint of
the tree's cards.  The first launch pays the cold imports; the median of the others is the
figure (target < 1.5 s).

Targets: open 10k jobs < 1 s, 50k < 3 s, engine stall < 50 ms, launch to tree < 1.5 s.

Usage: python benchmarks/gui.py [--sizes 10000,50000] [--launches 4] [--demo-dir DIR]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from PySide6.QtCore import QElapsedTimer, QRectF, QTimer  # noqa: E402
from PySide6.QtGui import QColor  # noqa: E402
from PySide6.QtWidgets import QGraphicsItem, QGraphicsScene, QGraphicsView  # noqa: E402

from cryodesk import db as dbmod  # noqa: E402
from cryodesk.core import layout  # noqa: E402
from cryodesk.ui.app import get_app  # noqa: E402
from cryodesk.ui.graph_view import QtJobGraphView  # noqa: E402


def _graph_builder():
    spec = importlib.util.spec_from_file_location("bench_graph", ROOT / "benchmarks" / "graph.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod.build


def _ms(t0: float) -> float:
    return (time.perf_counter() - t0) * 1000


class _PerJobItem(QGraphicsItem):
    """Baseline: one Python paint() per job."""

    def __init__(self, x, y):
        super().__init__()
        self.setPos(x, y)

    def boundingRect(self):  # noqa: N802
        return QRectF(0, 0, layout.CARD_W, layout.CARD_H)

    def paint(self, painter, option, widget=None):
        painter.setBrush(QColor("#34a853"))
        painter.drawRect(self.boundingRect())


def _paint(view) -> float:
    t0 = time.perf_counter()
    view.viewport().repaint()
    return _ms(t0)


def _pan(view, steps: int = 30) -> tuple[float, float]:
    times = []
    bar = view.horizontalScrollBar()
    for _ in range(steps):
        t0 = time.perf_counter()
        bar.setValue(bar.value() + 40)
        view.refresh_details()  # what the debounce timer does after a scroll burst
        view.viewport().repaint()
        times.append(_ms(t0))
    return sum(times) / len(times), max(times)


def _wide_snapshot(n: int) -> layout.GraphSnapshot:
    import numpy as np

    rng = np.random.default_rng(0)
    child = np.arange(1, n)
    parent = np.maximum(0, child - rng.integers(1, 200, n - 1))
    snap = layout.GraphSnapshot(
        project_uid="P9", workspace_uid=None, ids=np.arange(1, n + 1), numbers=np.arange(1, n + 1),
        types=["t"] * n, titles=[""] * n, status=rng.integers(0, 9, n).astype(np.int8),
        category=rng.integers(0, 10, n).astype(np.int8), size=rng.integers(0, 10**9, n),
        is_final=np.zeros(n, bool), is_ancestor=np.zeros(n, bool), shared=np.zeros(n, bool),
        edge_parent=parent, edge_child=child)
    snap.apply_placement(layout.place(n, parent, child))
    return snap


def bench_size(app, n: int, build) -> dict:
    tmp = tempfile.mkdtemp(prefix="cryodesk-gui-")
    dbmod.open_database(str(Path(tmp) / "db.sqlite"))
    dbmod.db.connect(reuse_if_open=True)
    build(n, 1)
    layout._CACHE.clear()
    t0 = time.perf_counter()
    snap = layout.load_graph("P1", "W1")
    out = {"jobs": n, "edges": len(snap.edge_parent), "load_first_ms": _ms(t0)}
    layout._CACHE.clear()
    t0 = time.perf_counter()
    snap = layout.load_graph("P1", "W1")  # the first call also imports the job-type modules
    out["load_ms"] = _ms(t0)
    layout._CACHE.clear()
    t0 = time.perf_counter()
    layout.place(n, snap.edge_parent, snap.edge_child)
    out["layout_cold_ms"] = _ms(t0)
    t0 = time.perf_counter()
    layout.place(n, snap.edge_parent, snap.edge_child)
    out["layout_cached_ms"] = _ms(t0)
    view = QtJobGraphView()
    view.resize(1400, 900)
    view.show()
    app.processEvents()
    t0 = time.perf_counter()
    view.scene().set_snapshot(snap)
    out["scene_ms"] = _ms(t0)
    view.fit()
    t0 = time.perf_counter()
    view.viewport().repaint()
    out["first_paint_ms"] = _ms(t0)
    out["open_total_ms"] = out["load_ms"] + out["scene_ms"] + out["first_paint_ms"]
    view.set_zoom(0.02)
    out["pan_overview_mean_ms"], out["pan_overview_max_ms"] = _pan(view)
    view.set_zoom(0.8)
    view.centerOn(float(snap.x.mean()), float(snap.y.mean()))
    out["pan_cards_mean_ms"], out["pan_cards_max_ms"] = _pan(view)
    out["cards_in_view"] = len(view.scene().cards)
    # the graph.py DAG is deep (fits as a thin strip); also paint a wide one (~50 columns)
    wide = _wide_snapshot(n)
    t0 = time.perf_counter()
    view.scene().set_snapshot(wide)
    out["wide_scene_ms"] = _ms(t0)
    view.fit()
    out["wide_first_paint_ms"] = _paint(view)
    out["wide_pan_overview_mean_ms"], out["wide_pan_overview_max_ms"] = _pan(view)
    if n <= 10000:
        scene = QGraphicsScene()
        for x, y in zip(snap.x.tolist(), snap.y.tolist()):
            scene.addItem(_PerJobItem(x, y))
        base = QGraphicsView(scene)
        base.resize(1400, 900)
        base.show()
        base.fitInView(scene.itemsBoundingRect())
        app.processEvents()
        out["baseline_per_item_paint_ms"] = _paint(base)
        out["paint_speedup_vs_baseline"] = out["baseline_per_item_paint_ms"] / max(out["first_paint_ms"], 1e-3)
        base.close()
        base.deleteLater()
    view.close()
    view.deleteLater()
    app.processEvents()
    dbmod.close_database()
    return out


def bench_engine_stall(app, n_stacks: int = 12, per_stack: int = 400, box: int = 128) -> dict:
    """Max gap between 5 ms timer ticks while a real restack job runs in the engine.

    Synthetic stacks (12 x 400 particles of 128², float32: ~300 MB) are
    imported, and a scattered half of them restacked by ``restack_particles``
    on the engine's pool while the GUI thread's timer measures its stalls.
    """
    import numpy as np

    from cryodesk.core import jobs, projects, runner
    from cryodesk.engine import Engine, ensure_job_types
    from cryodesk.io.cs import from_columns, write_cs
    from cryodesk.io.mrc import write_stack

    ensure_job_types()

    tmp = tempfile.mkdtemp(prefix="cryodesk-stall-")
    raw = Path(tmp) / "raw"
    raw.mkdir()
    rng = np.random.default_rng(0)
    paths, idx = [], []
    for k in range(n_stacks):
        write_stack(raw / f"stack_{k:02d}.mrc", rng.standard_normal((per_stack, box, box), dtype=np.float32), 1.0)
        paths += [f"stack_{k:02d}.mrc"] * per_stack
        idx += list(range(per_stack))
    pick = np.sort(rng.permutation(len(paths))[: len(paths) // 2])
    write_cs(raw / "subset.cs", from_columns({"blob/path": [paths[i] for i in pick], "blob/idx": np.array(idx)[pick],
                                              "blob/shape": np.tile([box, box], (len(pick), 1)),
                                              "blob/psize_A": 1.0}, n=len(pick)))
    dbmod.open_database(str(Path(tmp) / "db.sqlite"))
    dbmod.db.connect(reuse_if_open=True)
    p = projects.create_project("stall", Path(tmp) / "proj")
    projects.create_workspace(p, "main")
    imp = jobs.create_job(p, "import_particles", "W1", params={"particle_meta_path": str(raw / "subset.cs")})
    runner.run_job(p, imp)
    job = jobs.create_job(p, "restack_particles", "W1", [jobs.InputSpec("particles", imp.uid)])
    engine = Engine()
    gaps, clock = [], QElapsedTimer()
    clock.start()
    last = [clock.elapsed()]

    def tick():
        now = clock.elapsed()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(5)
    timer.timeout.connect(tick)
    timer.start()
    done = []
    engine.job_finished.connect(lambda *a: done.append(a))
    t0 = time.perf_counter()
    engine.queue(p, [job.uid])
    while not done and time.perf_counter() - t0 < 60:
        app.processEvents()
        time.sleep(0.001)
    timer.stop()
    engine.shutdown(10000)
    dbmod.close_database()
    out = {"job_ms": _ms(t0), "status": done[0][2] if done else "timeout", "particles": int(len(pick)),
           "ticks": len(gaps), "max_stall_ms": max(gaps) if gaps else None}
    shutil.rmtree(tmp, ignore_errors=True)
    return out


def _launch_child(db: str, t0: float) -> int:
    """In a fresh process: what ``cryodesk gui`` does up to the tree's first paint; prints the time."""
    from PySide6.QtCore import QSettings

    from cryodesk.ui.main_window import QtMainWindow

    app = get_app()
    dbmod.open_database(db)
    dbmod.db.connect(reuse_if_open=True)
    settings = QSettings(str(Path(db).with_suffix(".ini")), QSettings.Format.IniFormat)
    win = QtMainWindow(settings)
    win.resize(1600, 1000)
    win.show()
    done = []

    def loaded():
        win.view.refresh_details()  # what the detail timer does right after
        win.view.viewport().repaint()
        done.append((time.time() - t0) * 1000)

    win.graph_loaded.connect(loaded)
    win.restore_last_project()
    win.load_job_types()  # as run_app does
    win.bridge.engine.start()
    while not done and time.time() - t0 < 60:
        app.processEvents()
        time.sleep(0.002)
    print(f"LAUNCH {done[0] if done else -1:.1f} {len(win.view.scene().cards)}", flush=True)
    from cryodesk.engine import workers

    workers.wait_all(20000)  # the job types finish loading: the window closes cleanly
    win.close()
    dbmod.close_database()
    return 0


def bench_launch(launches: int, demo_dir: str | None) -> dict:
    """Launch-to-tree with the demo present (each launch a new process; see the module docstring)."""
    import statistics
    import subprocess

    tmp = Path(tempfile.mkdtemp(prefix="cryodesk-launch-"))
    db = str(tmp / "app.sqlite")
    t_build = time.perf_counter()
    dbmod.open_database(db)
    dbmod.db.connect(reuse_if_open=True)
    import cryodesk.jobs  # noqa: F401  (the demo runs the built-in job types)
    from cryodesk.demo.project import create_demo_project

    create_demo_project(Path(demo_dir) if demo_dir else tmp / "demo")
    dbmod.close_database()
    build_s = time.perf_counter() - t_build
    times, cards = [], 0
    # as installed, the modules are compiled once (the .deb's bundle holds .pyc files): a launch
    # must not pay for compiling every module when the environment says PYTHONDONTWRITEBYTECODE
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", PYTHONPYCACHEPREFIX=str(tmp / "pycache"))
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for _ in range(launches):
        t0 = time.time()
        out = subprocess.run([sys.executable, __file__, "--launch-child", db, repr(t0)], capture_output=True,
                             text=True, env=env, timeout=120)
        line = next((x for x in out.stdout.splitlines() if x.startswith("LAUNCH")), None)
        if line is None:
            raise RuntimeError(f"launch failed: {out.stderr[-2000:]}")
        ms, cards = line.split()[1:]
        times.append(float(ms))
    shutil.rmtree(tmp, ignore_errors=True)
    return {"demo_build_s": build_s, "first_launch_ms (compiles .pyc)": times[0],
            "launch_to_tree_ms": statistics.median(times[1:] or times), "cards_drawn": int(cards),
            "launches": launches}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,50000")
    ap.add_argument("--launches", type=int, default=4)
    ap.add_argument("--demo-dir", help="where to build the demo for the launch test (default: a temp dir)")
    ap.add_argument("--launch-child", nargs=2, metavar=("DB", "T0"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.launch_child:
        return _launch_child(args.launch_child[0], float(args.launch_child[1]))
    app = get_app()
    build = _graph_builder()
    for n in (int(s) for s in args.sizes.split(",") if s.strip().isdigit()):
        r = bench_size(app, n, build)
        print(f"{n:>6} jobs: " + ", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                                         for k, v in r.items() if k != "jobs"))
    stall = bench_engine_stall(app)
    print("engine stall during a running restack: " + ", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                                                         for k, v in stall.items()))
    if args.launches > 0:
        launch = bench_launch(args.launches, args.demo_dir)
        print("launch to tree (demo present): " + ", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                                                          for k, v in launch.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
