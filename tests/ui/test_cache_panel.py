"""The SSD cache in the GUI: the cache panel (figures, Clear with confirmation), warming a job's
particles from the Job menu with progress in the running-jobs panel, and the cache_particles param
in the inspector.  A small fake SSD directory (``CRYODESK_SSD_PATH``) and real 7-particle stacks."""

from __future__ import annotations

import shutil

import pytest
from PySide6.QtCore import Qt

from cryodesk.cache import CACHE_PARAM, Cache, resolve_config, set_project_default, stage
from cryodesk.core import registry
from cryodesk.core.registry import InputSlot, JobType, OutputGroup
from cryodesk.ui.cache_panel import figures
from cryodesk.ui.running_panel import C_DETAIL, C_PROGRESS, C_STATUS

from .test_actions import _select, _updated

registry.register(JobType("ui_cache_reader", "UI particle reader", "classification", params=(CACHE_PARAM,),
                          inputs=(InputSlot("particles", "particle"),),
                          outputs=(OutputGroup("result", "volume"),), run=lambda ctx: None))

QUOTA_MB = 100


@pytest.fixture
def ssd(tmp_path, monkeypatch):
    d = tmp_path / "ssd"
    d.mkdir()
    monkeypatch.setenv("CRYODESK_SSD_PATH", str(d))
    monkeypatch.setenv("CRYODESK_SSD_RESERVE_MB", "0")
    monkeypatch.setenv("CRYODESK_SSD_QUOTA_MB", str(QUOTA_MB))  # the quota binds: "available" is stable
    return d


@pytest.fixture
def particles(ui_db, tmp_path, realdata_dir):
    """Project P1 / W1 with J1 = an import of the 7 real particles (one stack) and J2 = a copy of it
    under another stack name, so there are two stacks to cache."""
    from cryodesk.core import jobs, projects, runner
    from cryodesk.io.cs import read_cs, write_cs

    p = projects.create_project("Cache demo", tmp_path / "proj")
    projects.create_workspace(p, "main")
    raw = tmp_path / "raw"
    raw.mkdir()
    data = read_cs(realdata_dir / "empiar_10076_7.cs")
    for name in ("a", "b"):
        shutil.copy(realdata_dir / "empiar_10076_7.mrc", raw / f"{name}.mrc")
        rows = data.copy()
        rows["blob/path"] = [f"{name}.mrc"] * len(rows)
        write_cs(raw / f"{name}.cs", rows)
        j = jobs.create_job(p, "import_particles", "W1", params={"particle_meta_path": str(raw / f"{name}.cs")})
        assert runner.run_job(p, j).status == "completed"
    return p


def _fresh_status() -> dict:
    return Cache(resolve_config()).status()


def _open_panel(win, qtbot):
    with qtbot.waitSignal(win.cache_panel.refreshed, timeout=10000) as sig:
        win.actions["cache"].trigger()
    return sig.args[0]


def _table_rows(table) -> list[tuple[str, ...]]:
    return [tuple(table.item(r, c).text() for c in range(table.columnCount())) for r in range(table.rowCount())]


def test_panel_shows_the_status_figures_and_clear_all(particles, ssd, make_window, qtbot, artifacts_dir):
    from cryodesk.cache import warm_job_output

    warm_job_output("P1", "J1")
    cfg = resolve_config()
    extra = ssd.parent / "loose.bin"
    extra.write_bytes(b"x" * 50_000)
    with stage(None, [extra], config=cfg, cache_on=True):  # an entry of no project: the "-" row
        pass
    win = make_window(scope=("P1", "W1"))
    st = _open_panel(win, qtbot)
    panel = win.cache_panel
    assert win.docks["SSD cache"].isVisible()
    fresh = _fresh_status()
    for key in ("path", "quota_bytes", "reserve_bytes", "used_bytes", "held_bytes", "entries", "by_project",
                "locks", "available_bytes", "threads", "lifetime_days"):
        assert st[key] == fresh[key], key
    assert abs(st["disk_free_bytes"] - fresh["disk_free_bytes"]) < 0.01 * fresh["disk_total_bytes"]
    assert _table_rows(panel.figures) == figures(st)
    assert ("Quota", f"{QUOTA_MB * 1_000_000 / 2**20:.1f} MiB") in _table_rows(panel.figures)
    assert st["entries"] == 2 and set(st["by_project"]) == {"P1", "-"}
    assert [r[0] for r in _table_rows(panel.projects)] == ["-", "P1"]
    assert panel.locks.rowCount() == 0  # nothing holds the entries now
    win.grab().save(str(artifacts_dir / "ui_cache_panel.png"))

    # Clear all: the confirmation names the bytes it frees; the entries are gone after it.
    qtbot.mouseClick(panel.clear_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.dialog is not None, timeout=10000)
    text = panel.dialog.label.text()
    assert f"{st['used_bytes']:,} bytes" in text and "2 entries" in text
    with qtbot.waitSignal(panel.refreshed, timeout=10000) as sig:
        qtbot.mouseClick(panel.dialog.ok_button, Qt.MouseButton.LeftButton)
    assert sig.args[0]["entries"] == 0 and _fresh_status()["entries"] == 0
    assert panel.projects.rowCount() == 0 and not panel.clear_button.isEnabled()


def test_clear_one_project_cancel_keeps_everything(particles, ssd, make_window, qtbot):
    from cryodesk.cache import warm_job_output

    warm_job_output("P1", "J1")
    extra = ssd.parent / "loose.bin"
    extra.write_bytes(b"y" * 30_000)
    with stage(None, [extra], config=resolve_config(), cache_on=True):
        pass
    win = make_window(scope=("P1", "W1"))
    st = _open_panel(win, qtbot)
    panel = win.cache_panel
    assert not panel.clear_project_button.isEnabled()  # no project selected yet
    row = [r[0] for r in _table_rows(panel.projects)].index("P1")
    panel.projects.selectRow(row)
    assert panel.clear_project_button.isEnabled()

    qtbot.mouseClick(panel.clear_project_button, Qt.MouseButton.LeftButton)  # cancelled: nothing changes
    qtbot.waitUntil(lambda: panel.dialog is not None, timeout=10000)
    qtbot.mouseClick(panel.dialog.cancel_button, Qt.MouseButton.LeftButton)
    assert _fresh_status()["entries"] == 2

    panel.projects.selectRow(row)
    qtbot.mouseClick(panel.clear_project_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: panel.dialog is not None, timeout=10000)
    freed = st["by_project"]["P1"]["bytes"]
    assert "project P1" in panel.dialog.label.text() and f"{freed:,} bytes" in panel.dialog.label.text()
    with qtbot.waitSignal(panel.cleared, timeout=10000) as sig:
        qtbot.mouseClick(panel.dialog.ok_button, Qt.MouseButton.LeftButton)
    assert sig.args[0] == {"removed": 1, "bytes_freed": freed, "held_skipped": 0}
    qtbot.waitUntil(lambda: panel.pending is None, timeout=10000)
    assert set(_fresh_status()["by_project"]) == {"-"}
    assert [r[0] for r in _table_rows(panel.projects)] == ["-"]


def test_warm_from_job_menu_shows_progress_then_entries(particles, ssd, make_window, qtbot, monkeypatch,
                                                        artifacts_dir):
    win = make_window(scope=("P1", "W1"))
    job_menu = next(a.menu() for a in win.menuBar().actions() if a.text() == "&Job")
    assert win.jobs.warm in job_menu.actions()
    assert not win.jobs.warm.isEnabled()  # nothing selected
    _select(win, qtbot, "J1", "J2")
    assert win.jobs.warm.isEnabled()

    seen = []  # (fraction, message, the bar's value, the row's detail) as the panel showed them
    panel = win.running
    add_task = panel.add_task

    def recording_add_task(title):
        task = add_task(title)

        def record(fraction, text, tk=task):
            row = panel.keys.index(("task", tk))
            seen.append((tk.title, fraction, text, panel.table.cellWidget(row, C_PROGRESS).value(),
                         panel.table.item(row, C_DETAIL).text()))
            if len(seen) == 1:  # the running-jobs panel while the copy reports progress
                win.grab().save(str(artifacts_dir / "ui_cache_warm_progress.png"))

        task.progressed.connect(record)  # after the panel's own slot: the row is already updated
        return task

    monkeypatch.setattr(panel, "add_task", recording_add_task)
    with qtbot.waitSignals([win.jobs.warmed, win.jobs.warmed], timeout=20000):
        win.jobs.warm.trigger()
        assert panel.table.rowCount() == 2
        assert panel.table.item(0, 0).text() == "Cache P1 J1 particles on SSD"
    # the rows stay as this session's history, completed
    qtbot.waitUntil(lambda: [panel.table.item(r, C_STATUS).text() for r in range(2)] == ["completed"] * 2,
                    timeout=5000)
    for uid in ("J1", "J2"):
        mine = [s for s in seen if s[0] == f"Cache P1 {uid} particles on SSD"]
        assert mine, seen
        title, fraction, text, bar, detail = mine[-1]
        assert fraction == 1.0 and bar == 1000 and text.startswith("cached ") and detail == text
    st = _fresh_status()
    assert st["entries"] == 2 and st["by_project"]["P1"]["entries"] == 2
    assert "particles cached on SSD" in win.statusBar().currentMessage()
    _open_panel(win, qtbot)
    assert [r[:2] for r in _table_rows(win.cache_panel.projects)] == [("P1", "2")]
    win.grab().save(str(artifacts_dir / "ui_cache_warmed.png"))


def test_warm_without_ssd_fails_with_a_clear_message(particles, make_window, qtbot, monkeypatch):
    monkeypatch.delenv("CRYODESK_SSD_PATH", raising=False)
    win = make_window(scope=("P1", "W1"))
    st = _open_panel(win, qtbot)
    assert st == {"usable": False, "worker": resolve_config().worker}
    assert "No SSD cache is configured" in win.cache_panel.summary.text()
    assert not win.cache_panel.clear_button.isEnabled()
    _select(win, qtbot, "J1")
    win.jobs.warm.trigger()
    qtbot.waitUntil(lambda: win.running.table.item(0, C_STATUS).text() == "failed"
                    and "no SSD cache" in win.statusBar().currentMessage(), timeout=10000)
    # the error stays in the Messages panel and asks for attention in a dialog, with its cause
    assert "no SSD cache" in win.messages.entries[-1][2]
    assert win.error_dialog is not None and "no SSD cache" in win.error_dialog.cause.text()
    qtbot.mouseClick(win.error_dialog.close_button, Qt.MouseButton.LeftButton)


def test_inspector_shows_cache_param_with_label_and_project_default(particles, make_window, qtbot, artifacts_dir):
    from cryodesk.core import jobs

    reader = jobs.create_job("P1", "ui_cache_reader", "W1", [jobs.InputSpec("particles", "J1")])
    win = make_window(scope=("P1", "W1"))
    table = win.inspector.params

    def row():
        _select(win, qtbot, reader.uid)
        r = next(r for r in range(table.rowCount()) if table.item(r, 0).text() == "Cache particle images on SSD")
        assert table.item(r, 0).data(Qt.ItemDataRole.UserRole) == "cache_particles"
        assert "cache_particles" in table.item(r, 0).toolTip()
        return r

    assert table.item(row(), 1).text() == "default: on"  # unset, no project default: on
    set_project_default("P1", "cache_particles", "false")
    assert table.item(row(), 1).text() == "default: off (project P1)"
    win.inspector.grab().save(str(artifacts_dir / "ui_cache_param_inspector.png"))
    r = row()
    assert table.item(r, 1).flags() & Qt.ItemFlag.ItemIsEditable
    _updated(win, qtbot, lambda: table.item(r, 1).setText("on"))
    assert jobs.get_job("P1", reader.uid).params["cache_particles"] is True
    r = row()
    assert table.item(r, 1).text() == "on"
    _updated(win, qtbot, lambda: table.item(r, 1).setText("default"))
    assert jobs.get_job("P1", reader.uid).params["cache_particles"] is None
    _updated(win, qtbot, win.actions["undo"].trigger)
    assert jobs.get_job("P1", reader.uid).params["cache_particles"] is True


def test_panel_suggests_a_reserve_and_calculates_as_the_cli(particles, ssd, make_window, qtbot, capsys,
                                                             artifacts_dir):
    """Issue 12, items 10 and 11: no reserve by default (a suggestion instead); the guide's size formula."""
    from cryodesk.cli.main import build_parser

    win = make_window(scope=("P1", "W1"))
    st = _open_panel(win, qtbot)
    panel = win.cache_panel
    assert st["reserve_bytes"] == 0 and ("Reserve", "none") in _table_rows(panel.figures)
    assert panel.advice.isVisible() and "--ssdreserve" in panel.advice.text()
    args = build_parser().parse_args(["cache", "status"])
    assert args.func(args) == 0
    assert panel.advice.text() in capsys.readouterr().out  # the CLI says the same
    # the calculator starts at the guide's first example; the second as a user would type it
    assert panel.calc_result.text().startswith("1,000,000 particles of box 256: 263,296,000,000 bytes (263.3 GB;")
    panel.calc_count.setValue(2_000_000)
    panel.calc_box.setValue(432)
    args = build_parser().parse_args(["cache", "estimate", "--count", "2000000", "--box", "432"])
    assert args.func(args) == 0
    assert panel.calc_result.text() == capsys.readouterr().out.strip()
    assert "1,495,296,000,000 bytes (1.5 TB;" in panel.calc_result.text()
    panel.grab().save(str(artifacts_dir / "ui_cache_panel_guide.png"))
