"""Change events in the GUI: what another process (the real ``cryodesk`` CLI) changes shows without a refresh.

Status, flag and size changes patch the open snapshot in place (no reload);
added, removed and relinked jobs reload the scope; the change log is never
read on the GUI thread.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from PySide6.QtCore import QPointF

from cryodesk.core import events, jobs, projects
from cryodesk.core.layout import CARD_H
from cryodesk.core.units import human_bytes
from cryodesk.ui import palette

from .test_actions import _badge_colour, _select

REPO = Path(__file__).resolve().parents[2]
#: the brief: a change made elsewhere shows within this long (ms), with no refresh
SHOWS_WITHIN_MS = 2000


def cli(db, *args: str) -> str:
    """Run the ``cryodesk`` command of this tree in a second process against the same database."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    proc = subprocess.run([sys.executable, "-m", "cryodesk.cli.main", "--db", db.database, *args],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _stripe_colour(win, uid: str) -> str:
    """Colour of the status stripe at the left edge of ``uid``'s card, as painted in the view."""
    snap = win.view.scene().snap
    i = snap.index_of(uid)
    p = win.view.mapFromScene(QPointF(float(snap.x[i]) + 3, float(snap.y[i]) + CARD_H / 2))
    return win.view.viewport().grab().toImage().pixelColor(p.x(), p.y()).name()


def _shown(win, qtbot, condition) -> None:
    qtbot.waitUntil(condition, timeout=SHOWS_WITHIN_MS)


def test_final_marked_by_another_process_shows_without_reload(ui_db, demo, make_window, qtbot, artifacts_dir):
    win = make_window()
    win.view.set_zoom(1.0)
    win.view.center_on_job(win.view.scene().snap.index_of("J4"))
    _select(win, qtbot, "J5")
    scene = win.view.scene()
    snap, overview, loads, x = scene.snap, scene.overview, win.loads, scene.snap.x.copy()
    assert "FINAL" not in win.inspector.header.text()

    cli(ui_db, "job", "final", "P1", "J5")
    _shown(win, qtbot, lambda: snap.is_final[snap.index_of("J5")])
    qtbot.waitUntil(lambda: "FINAL" in win.inspector.header.text(), timeout=1000)
    # patched in place: the same snapshot, items and layout; no load
    assert scene.snap is snap and scene.overview is overview and win.loads == loads
    assert (snap.x == x).all()
    ancestors = sorted(snap.uid(i) for i in (snap.is_ancestor & ~snap.is_final).nonzero()[0])
    assert ancestors == ["J1", "J2", "J3", "J4"]
    qtbot.wait(20)
    # what the user sees: the badges are painted, the sidebar counts J5 as final
    assert _badge_colour(win, "J5").name() == palette.FINAL_COLOUR
    assert _badge_colour(win, "J4").name() == palette.ANCESTOR_COLOUR
    size_j5 = int(snap.size[snap.index_of("J5")])
    assert win.sidebar.finals.values[0] == size_j5
    win.grab().save(str(artifacts_dir / "ui_live_final_from_cli.png"))


def test_clear_by_another_process_updates_card_browser_sidebar_and_status_bar(ui_db, demo, make_window, qtbot):
    win = make_window()
    scene = win.view.scene()
    snap, loads = scene.snap, win.loads
    top = win.browser.topLevelItem(0)
    before = top.text(2)
    assert _stripe_colour(win, "J6") == palette.STATUS_COLOURS["completed"]

    cli(ui_db, "job", "clear", "P1", "J6")
    _shown(win, qtbot, lambda: snap.status_name(snap.index_of("J6")) == "building")
    total = projects.project_summaries("P1")[0]["size_bytes"]
    qtbot.waitUntil(lambda: win.browser.topLevelItem(0).text(2) == human_bytes(total), timeout=SHOWS_WITHIN_MS)
    assert win.browser.topLevelItem(0).text(2) != before
    assert scene.snap is snap and win.loads == loads  # a status and size change: patched, not reloaded
    i = snap.index_of("J6")
    from pathlib import Path

    from cryodesk.base.fsio import du_size

    # a cleared job keeps its directory entry and job.json (du -sb): its size now is just that
    assert snap.size[i] == du_size(Path(projects.get_project("P1").directory) / "J6") < 4096 + 4096
    qtbot.wait(20)
    assert _stripe_colour(win, "J6") == palette.STATUS_COLOURS["building"]
    assert "(building)" in scene.cards[i].toolTip()
    assert human_bytes(int(snap.size.sum())) in win.status_scope.text()
    by_status = _by_status(snap)  # the sidebar's "By status" bars: J6's bytes are now "building"
    assert win.sidebar.status.values == list(by_status.values()) and by_status["building"] == int(snap.size[i])


def _by_status(snap) -> dict[str, int]:
    from cryodesk.core.layout import breakdown

    return breakdown(snap)["status"]


def test_jobs_created_and_deleted_elsewhere_reload_the_tree(ui_db, demo, make_window, qtbot, tmp_path):
    win = make_window()
    _select(win, qtbot, "J3")
    loads = win.loads
    cli(ui_db, "job", "create", "P1", "import_particles", "-w", "W1", "-p", f"particle_meta_path={tmp_path / 'x.cs'}",
        "--title", "made by the CLI")
    _shown(win, qtbot, lambda: win.view.scene().snap.index_of("J11") is not None)
    snap = win.view.scene().snap
    assert win.loads == loads + 1 and snap.titles[snap.index_of("J11")] == "made by the CLI"
    assert [snap.uid(i) for i in win.view.scene().selection.indices] == ["J3"]  # selection kept
    qtbot.waitUntil(lambda: win.browser.topLevelItem(0).child(0).text(1) == "10", timeout=SHOWS_WITHIN_MS)

    cli(ui_db, "job", "delete", "P1", "J9")
    _shown(win, qtbot, lambda: win.view.scene().snap.index_of("J9") is None)
    assert win.loads == loads + 2

    # a job of another workspace going away: the W1 tree stays as it is, the browser's figures change
    loads = win.loads
    cli(ui_db, "job", "delete", "P1", "J10")
    _shown(win, qtbot, lambda: win.browser.topLevelItem(0).child(1).text(1) == "1")
    qtbot.wait(100)
    assert win.loads == loads


def test_status_change_patches_in_place_and_only_that_job(demo, make_window, qtbot):
    win = make_window()
    scene = win.view.scene()
    snap, loads = scene.snap, win.loads
    ids, x, y, edges = snap.ids.copy(), snap.x.copy(), snap.y.copy(), snap.edge_child.copy()
    patched = []
    win.live.patched.connect(lambda idx: patched.append(sorted(snap.uid(i) for i in idx)))
    jobs.set_status(jobs.get_job("P1", "J7"), "failed", error="failed elsewhere")  # another writer (no poke)
    _shown(win, qtbot, lambda: snap.status_name(snap.index_of("J7")) == "failed")
    assert patched == [["J7"]]
    assert scene.snap is snap and win.loads == loads
    assert (snap.ids == ids).all() and (snap.x == x).all() and (snap.y == y).all() and (snap.edge_child == edges).all()
    assert [snap.status_name(i) for i in range(len(snap)) if snap.uid(i) != "J7"] == ["completed"] * 8


def test_edits_in_the_window_come_back_as_events_without_reload(window, qtbot):
    win = window
    loads = win.loads
    _select(win, qtbot, "J5")
    with qtbot.waitSignal(win.live.patched, timeout=SHOWS_WITHIN_MS):
        win.jobs.mark_final.trigger()
    snap = win.view.scene().snap
    assert snap.is_final[snap.index_of("J5")] and win.loads == loads
    with qtbot.waitSignal(win.graph_loaded, timeout=SHOWS_WITHIN_MS):  # links change the tree's shape
        win.jobs.do_link("W2")
    assert win.loads == loads + 1


def test_the_change_log_is_never_read_on_the_gui_thread(demo, make_window, qtbot, monkeypatch):
    threads, running, most = [], [0], [0]
    lock = threading.Lock()
    real_poll = events.Follower.poll

    def poll(self, *args, **kwargs):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        threads.append(threading.current_thread() is threading.main_thread())
        try:
            time.sleep(0.05)  # long enough for pokes to pile up behind it
            return real_poll(self, *args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(events.Follower, "poll", poll)
    win = make_window()
    for _ in range(5):  # every edit pokes; a poke during a poll queues one more, never a second poll
        win.watcher.poke()
    jobs.set_status(jobs.get_job("P1", "J8"), "killed", error="killed elsewhere")
    snap = win.view.scene().snap
    qtbot.waitUntil(lambda: snap.status_name(snap.index_of("J8")) == "killed", timeout=SHOWS_WITHIN_MS)
    assert len(threads) >= 2 and not any(threads)
    assert most[0] == 1
