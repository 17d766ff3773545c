"""The app: File → Open project folder… for RELION and CryoSPARC, their kind in the browser, the read-only notice."""

from __future__ import annotations

import pytest

from .cryosparc_fixtures import build as build_cryosparc

pytest.importorskip("pytestqt")


def test_open_cryosparc_folder_from_the_file_menu(window, qtbot, tmp_path, realdata_dir, artifacts_dir):
    from cryodesk.engine import workers

    file_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&File")
    texts = [a.text() for a in file_menu.actions() if a.text()]
    assert texts.index("&Open project folder…") == texts.index("New &workspace…") - 1
    top = window.browser.topLevelItem(0)
    assert "[RELION]" in top.text(0) and top.text(1) == "7"  # the RELION project and its jobs
    insp = window.inspector
    insp.show_job("P1", "J5")  # a RELION Class2D job: its job.star options, read-only
    shown = {insp.params.item(r, 0).text(): insp.params.item(r, 1).text() for r in range(insp.params.rowCount())}
    assert shown.get("nr_classes") == "50" and insp.params_note.text().startswith("Read-only")
    cs = build_cryosparc(tmp_path / "cs", realdata_dir / "cryosparc_job_docs")
    fa = window.foreign_actions
    fa.ask_directory = lambda: str(cs)
    with qtbot.waitSignal(fa.opened, timeout=20000):
        file_menu.actions()[texts.index("&Open project folder…")].trigger()
    assert fa.last["kind"] == "cryosparc" and fa.last["read_only"]
    qtbot.waitUntil(lambda: window.browser.topLevelItemCount() == 2, timeout=10000)
    second = window.browser.topLevelItem(1)
    assert "[CryoSPARC — read-only]" in second.text(0) and second.text(1) == "3"
    qtbot.waitUntil(lambda: "managed by CryoSPARC — read-only" in window.statusBar().currentMessage(), timeout=5000)
    window.grab().save(str(artifacts_dir / "foreign-projects.png"))
    # a folder that is no project: a clear refusal, no traceback
    fa.ask_directory = lambda: str(tmp_path)
    fa.open.trigger()
    qtbot.waitUntil(lambda: fa.pending is None and bool(fa.last.get("error")), timeout=10000)
    assert "not a project cryodesk knows" in fa.last["error"]
    assert workers.wait_all(10000)
    window.foreign_dialog.close()
