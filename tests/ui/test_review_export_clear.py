"""The app's Clear of a restack under two final RELION exports: the one that links its stacks is named, with the
way to keep it (export again with copy_stacks=true); the one that copied them is not (it loses nothing)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import Qt

from .conftest import scene_point


def test_clear_dialog_names_the_linked_final_export_only(ui_db, tmp_path, make_window, qtbot, artifacts_dir):
    from cryodesk.core import finals, jobs, projects, runner
    from cryodesk.io import cs, mrc

    raw = tmp_path / "raw"
    raw.mkdir()
    mrc.write_stack(raw / "s.mrc", np.ones((4, 6, 6), np.float32), voxel_size=1.2)
    cs.write_cs(raw / "p.cs", cs.from_columns({"uid": np.arange(4, dtype=np.uint64) + 1,
                                               "blob/path": np.array([b"s.mrc"] * 4),
                                               "blob/idx": np.arange(4, dtype=np.uint32)}, 4))
    p = projects.create_project("Exports", tmp_path / "proj")
    projects.create_workspace(p, "main")
    made = [jobs.create_job(p, "import_particles", "W1", params={"particle_meta_path": str(raw / "p.cs")})]
    made.append(jobs.create_job(p, "restack_particles", "W1", [jobs.InputSpec("particles", made[0].uid)]))
    for copy in (False, True):
        made.append(jobs.create_job(p, "export_particles", "W1", [jobs.InputSpec("particles", made[1].uid)],
                                    params={"format": "relion", "copy_stacks": copy}))
    for j in made:
        assert runner.run_job(p, j).status == "completed"
    finals.set_final(p, made[2:], True)
    win = make_window()
    qtbot.mouseClick(win.view.viewport(), Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier,
                     scene_point(win, win.view.scene().snap.index_of("J2")))
    win.jobs.clear.trigger()
    qtbot.waitUntil(lambda: win.jobs.dialog is not None, timeout=10000)
    dialog = win.jobs.dialog
    text = dialog.label.text()
    dialog.grab().save(str(artifacts_dir / "ui_clear_restack_under_exports.png"))
    assert "final result J3 loses its particle images" in text and "copy_stacks=true" in text, text
    assert "J4" not in text, text
    qtbot.mouseClick(dialog.cancel_button, Qt.MouseButton.LeftButton)
