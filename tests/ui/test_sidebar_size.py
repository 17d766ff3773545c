"""Issue 12, item 9: the data sidebar has "Refresh size" and the out-of-date notice too (as the
Cleanup Data dialog), and shows the project's size as ``cryodesk project size`` does."""

from __future__ import annotations

import json

from PySide6.QtCore import Qt

from cryodesk.core import jobs, runner, sizes
from cryodesk.core.projects import get_project
from cryodesk.core.units import human_bytes


def test_sidebar_notice_and_refresh_size(big_demo, make_window, qtbot, capsys, artifacts_dir):
    from cryodesk.cli.main import build_parser

    win = make_window(scope=("P1", ""))
    side = win.sidebar
    qtbot.waitUntil(lambda: side.project_uid == "P1", timeout=10000)
    assert side.refresh_button.isEnabled() and side.refresh_button.text() == "Refresh size"
    win.watcher.poke()  # opening the project measured it (it never was): the notice goes
    qtbot.waitUntil(lambda: not side.stale_bar.isVisible() and "project on disk: " in side.summary.text()
                    and "not measured" not in side.summary.text(), timeout=15000)
    # a job runs elsewhere (the CLI, another window): the measured size is now out of date
    runner.run_job("P1", jobs.create_job("P1", "ui_source", "W1", params={"nbytes": 5000}))
    win.watcher.poke()
    qtbot.waitUntil(lambda: side.stale_bar.isVisible(), timeout=15000)
    assert "out of date" in side.stale_label.text()
    side.grab().save(str(artifacts_dir / "ui_sidebar_stale.png"))
    with qtbot.waitSignal(side.size_refreshed, timeout=30000) as sig:
        qtbot.mouseClick(side.refresh_button, Qt.MouseButton.LeftButton)
    summary = sig.args[0]
    assert not summary["stale"] and not side.stale_bar.isVisible()
    assert not sizes.is_stale(get_project("P1"))
    # the figures the sidebar shows are the CLI's
    args = build_parser().parse_args(["project", "size", "P1", "--json"])
    assert args.func(args) == 0
    cli = json.loads(capsys.readouterr().out)
    assert cli["size_bytes"] == summary["size_bytes"]
    win.watcher.poke()
    qtbot.waitUntil(lambda: f"project on disk: {human_bytes(cli['size_bytes'])}" in side.summary.text(),
                    timeout=15000)
