"""The app's Cleanup Data and Job ▸ Delete on RELION projects, and the read-only preview of CryoSPARC's (issue 16).

The dialogs are driven as a user would: tick options, read the preview rows and bytes,
click Clean up, read the result; files on disk are checked after.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .cryosparc_fixtures import build as build_cryosparc

pytest.importorskip("pytestqt")


def _cells(table) -> list[list[str]]:
    return [[table.item(r, c).text() for c in range(table.columnCount())] for r in range(table.rowCount())]


def _tree(root: Path) -> dict[str, tuple]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            out[os.path.relpath(os.path.join(dirpath, name), root)] = (st.st_size, st.st_mtime_ns)
    return out


def test_relion_cleanup_dialog_previews_and_frees(window, qtbot, tmp_path, artifacts_dir):
    from cryodesk.core.foreign import relion_clean
    from cryodesk.core.units import human_bytes
    from cryodesk.engine import workers
    from cryodesk.ui.foreign_cleanup import QtRelionCleanupDialog

    rel = tmp_path / "rel"
    data_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Data")
    cleanup = next(a for a in data_menu.actions() if a.text() == "&Cleanup Data…")
    cleanup.trigger()
    d = window.cleanup_dialog
    assert isinstance(d, QtRelionCleanupDialog)
    qtbot.waitUntil(lambda: d.plan is not None, timeout=10000)
    assert d.table.rowCount() == 0 and not d.run_button.isEnabled()
    expected = relion_clean.plan_cleanup("P1", preprocessing=True, failed=True)
    with qtbot.waitSignal(d.preview_ready, timeout=10000):
        d.boxes["preprocessing"].setChecked(True)
        d.boxes["failed"].setChecked(True)
    rows = _cells(d.table)
    by_job = {r[0]: r for r in rows}
    assert set(by_job) == {"J2", "J3", "J4", "J7"}  # MotionCorr, CtfFind, Extract cleaned; the failed Class3D deleted
    assert by_job["J2"][1:3] == ["MotionCorr/job002", "harsh clean"] and "Movies" in by_job["J2"][4]
    assert by_job["J7"][2] == "delete to Trash/" and "Trash/Class3D/job007" in by_job["J7"][4]
    for it in expected.items:
        assert by_job[it.job][3] == human_bytes(it.bytes)
    assert d.plan.bytes == expected.bytes > 150_000  # the 50+20+80 kB stacks
    assert d.run_button.text() == f"Clean up {human_bytes(expected.bytes)}" and d.run_button.isEnabled()
    qtbot.wait(50)  # the buttons' new text laid out
    d.grab().save(str(artifacts_dir / "relion-cleanup-dialog.png"))
    with qtbot.waitSignal(d.cleanup_finished, timeout=20000) as sig:
        d.run_button.click()
    results = sig.args[0]
    assert all(r.ok for r in results), [r.message for r in results]
    assert sum(r.bytes for r in results) == expected.bytes
    assert f"freed {human_bytes(expected.bytes)}" in d.results_label.text()
    assert d.results_table.isVisible() and {r[0] for r in _cells(d.results_table)} >= {"J2", "J3", "J4", "J7"}
    assert not (rel / "MotionCorr/job002/Movies/mic1.mrc").exists()
    assert not (rel / "Extract/job004/Movies/mic1.mrcs").exists()
    assert (rel / "Extract/job004/particles.star").exists()  # a pipeline node stays
    assert (rel / "Trash/Class3D/job007").is_dir() and not (rel / "Class3D/job007").exists()
    assert (rel.parent / "rel-raw/m1.tiff").stat().st_size == 123_456  # raw data behind the Movies link
    assert d.cancel_button.text() == "Close" and d.progress.value() == 100 and not d.run_button.isEnabled()
    qtbot.wait(50)
    d.grab().save(str(artifacts_dir / "relion-cleanup-result.png"))
    d.close()
    # a harsh clean of the selected Class2D job only
    snap = window.view.scene().snap
    window.view.scene().selection.set([snap.index_of("J5")])
    cleanup.trigger()
    d = window.cleanup_dialog
    qtbot.waitUntil(lambda: d.plan is not None, timeout=10000)
    with qtbot.waitSignal(d.preview_ready, timeout=10000):
        d.clean_radio.setChecked(True)
    assert d.selected_box.isChecked() and {r[0] for r in _cells(d.table)} == {"J5"}
    assert d.plan.bytes == relion_clean.plan_clear("P1", ["J5"]).bytes > 0
    with qtbot.waitSignal(d.preview_ready, timeout=10000):
        d.kind_combo.setCurrentIndex(d.kind_combo.findData("gentle"))
    assert d.plan.bytes == relion_clean.plan_clear("P1", ["J5"], harsh=False).bytes
    assert all(r[2] == "gentle clean" for r in _cells(d.table))
    d.close()
    assert workers.wait_all(10000)


def test_relion_delete_to_trash_and_empty_trash_from_the_job_menu(window, qtbot, tmp_path, artifacts_dir):
    from PySide6.QtCore import Qt

    from cryodesk.core import finals
    from cryodesk.core import jobs as core_jobs
    from cryodesk.core.foreign import relion_clean
    from cryodesk.core.units import human_bytes
    from cryodesk.engine import workers

    rel = tmp_path / "rel"
    jobs = window.jobs
    snap = window.view.scene().snap
    window.view.scene().selection.set([snap.index_of("J6")])  # Select/job006; Class3D/job007 reads it
    jobs.update_enabled()
    job_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Job")
    texts = [a.text() for a in job_menu.actions()]
    assert "Empty RELION &Trash…" in texts and jobs.relion.empty_trash.isEnabled()
    moved = relion_clean.plan_delete("P1", ["J6"]).items
    jobs.delete.trigger()
    qtbot.waitUntil(lambda: jobs.relion.dialog is not None, timeout=10000)
    dlg = jobs.relion.dialog
    text = dlg.label.text()
    assert "Select/job006 → Trash/Select/job006" in text and "Class3D/job007 → Trash/Class3D/job007" in text
    total = sum(i.versions["moved_bytes"] for i in moved)
    assert human_bytes(total) in text
    qtbot.wait(50)
    dlg.grab().save(str(artifacts_dir / "relion-delete-confirm.png"))
    with qtbot.waitSignal(jobs.relion.done, timeout=20000) as sig:
        dlg.ok_button.click()
    assert all(r.ok for r in sig.args[0])
    assert (rel / "Trash/Select/job006/particles.star").exists() and not (rel / "Select/job006").exists()
    assert "Select/job006" not in (rel / "default_pipeline.star").read_text().split("data_pipeline_processes")[1] \
        .split("data_pipeline_nodes")[0]
    assert relion_clean.trash_entries(rel) == ["Trash/Class3D/job007", "Trash/Select/job006"]
    # Empty Trash: its bytes, then gone
    plan = relion_clean.plan_empty_trash("P1")
    jobs.relion.empty_trash.trigger()
    qtbot.waitUntil(lambda: jobs.relion.dialog is not None and jobs.relion.dialog is not dlg, timeout=10000)
    dlg = jobs.relion.dialog
    assert f"frees {human_bytes(plan.bytes)}" in dlg.label.text() and "Trash/Select/job006" in dlg.label.text()
    qtbot.waitExposed(dlg)
    assert dlg.cancel_button.isDefault() and not dlg.ok_button.isDefault()
    qtbot.keyClick(dlg, Qt.Key.Key_Return)  # Enter cancels: nothing is freed by accident
    assert dlg.result() == dlg.DialogCode.Rejected and len(relion_clean.trash_entries(rel)) == 2
    jobs.relion.empty_trash.trigger()
    qtbot.waitUntil(lambda: jobs.relion.dialog is not None and jobs.relion.dialog is not dlg, timeout=10000)
    dlg = jobs.relion.dialog
    with qtbot.waitSignal(jobs.relion.done, timeout=20000) as sig:
        dlg.ok_button.click()
    assert sum(r.bytes for r in sig.args[0] if r.ok) == plan.bytes > 0
    assert relion_clean.trash_entries(rel) == []
    # an ancestor of a final result: a clear refusal in words, nothing moved
    finals.set_final("P1", core_jobs.get_jobs("P1", ["J5"]))
    with qtbot.waitSignal(jobs.error, timeout=10000) as sig:
        jobs.relion.do_delete(["J4"])
    assert "an ancestor of a final result" in sig.args[1] and (rel / "Extract/job004/particles.star").exists()
    qtbot.waitUntil(lambda: window.error_dialog is not None and window.error_dialog.isVisible(), timeout=5000)
    window.error_dialog.close()
    assert workers.wait_all(10000)


def test_cryosparc_cleanup_is_a_read_only_preview(window, qtbot, tmp_path, realdata_dir, artifacts_dir):
    from PySide6.QtWidgets import QPushButton

    from cryodesk.core.foreign import cryosparc_audit
    from cryodesk.core.foreign.service import open_project
    from cryodesk.core.units import human_bytes
    from cryodesk.engine import workers
    from cryodesk.ui.foreign_cleanup import QtCryosparcPreviewDialog

    cs = build_cryosparc(tmp_path / "cs", realdata_dir / "cryosparc_job_docs")
    project, _info = open_project(cs)
    window.refresh_browser()
    qtbot.waitUntil(lambda: any(r["uid"] == project.uid for r in window.browser.rows), timeout=10000)
    before = _tree(cs)
    expected = cryosparc_audit.preview(project.uid)
    d = window.open_cleanup(project.uid)
    assert isinstance(d, QtCryosparcPreviewDialog)
    qtbot.waitUntil(lambda: d.preview is not None, timeout=10000)
    assert "managed by CryoSPARC — read-only" in d.notice.text()
    assert [b.text() for b in d.findChildren(QPushButton)] == ["Close"]  # nothing to execute
    for i, (key, _title) in enumerate((("intermediate", 0), ("preprocessing", 0), ("non_final", 0), ("killed", 0),
                                       ("failed", 0))):
        tab = expected["tabs"][key]
        assert d.tabs.tabText(i).endswith(f"({human_bytes(tab['bytes'])})")
        assert [r[0] for r in _cells(d.tables[key])] == [j["uid"] for j in tab["jobs"]]
    assert any(t["bytes"] for t in expected["tabs"].values())
    qtbot.wait(50)
    d.grab().save(str(artifacts_dir / "cryosparc-preview-dialog.png"))
    d.close()
    assert workers.wait_all(10000)
    assert _tree(cs) == before  # not a byte changed
