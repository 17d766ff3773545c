"""Issue 20 item 5: a cleanup that takes a final result's particle images, and readers at any depth.

``cleanup --preprocessing all`` cleared the extraction job that holds a final
selection's particle images without a word (the guide allows clearing an
ancestor's preprocessing: the plan must say which final results become
unusable and suggest restacking them).  ``job clear J5`` succeeded while J5's
grandchild was running, which then failed with "No such file": nothing a
queued or running job reads, at any depth, may be cleared — refused in the
plan, and again at apply time.
"""

from __future__ import annotations

import json

import jobtypes
import pytest

from cryodesk.cli.main import main
from cryodesk.core import actions, finals, jobs, runner
from cryodesk.core.cleanup import CleanupOptions, execute_cleanup, plan_cleanup
from cryodesk.db.models import Job

TYPES = jobtypes.family("i20", preprocessing=("extraction",))


def _chain(project, types, final_last=True):
    """Jobs of ``types`` each reading the one before; all completed; the last marked final."""
    made = []
    for t in types:
        specs = [jobs.InputSpec("particles", made[-1].uid)] if made else []
        made.append(jobs.create_job(project, t, "W1", specs, params={"nbytes": 40}))
        runner.run_job(project, made[-1])
    if final_last:
        assert finals.set_final(project, [made[-1]]).ok
    return [Job.get_by_id(j.id) for j in made]


def test_cleanup_says_which_final_results_lose_their_particle_images(project):
    # J1 source -> J2 extraction -> J3 selection -> J4 final; J2 -> J5 extraction again -> J6 final
    src, ext, sel, fin = _chain(project, ["i20_source", "i20_extract", "i20_step", "i20_step"])
    ext2 = jobs.create_job(project, "i20_extract", "W1", [jobs.InputSpec("particles", ext.uid)])
    runner.run_job(project, ext2)
    fin2 = jobs.create_job(project, "i20_step", "W1", [jobs.InputSpec("particles", ext2.uid)])
    runner.run_job(project, fin2)
    assert finals.set_final(project, [Job.get_by_id(fin2.id)]).ok
    plan = plan_cleanup(project, CleanupOptions(preprocessing="all"))
    by = {e.uid: e for e in plan.entries}
    assert by[ext.uid].action == "clear" and by[ext.uid].finals_losing_images == [fin.uid]
    assert by[ext2.uid].finals_losing_images == [fin2.uid]  # J6's images are in J5's own stacks
    assert len(plan.warnings) == 2
    assert f"final result {fin.uid} loses its particle images" in plan.warnings[0]
    assert f"restack_particles -i particles={fin.uid}" in plan.warnings[0]
    assert any("restack them first" in r for r in by[ext.uid].reasons)
    # job clear says the same (from the database, not a snapshot)
    clear = actions.plan_clear(project, [ext])
    assert len(clear.warnings) == 1 and f"final result {fin.uid} loses its particle images" in clear.warnings[0]
    assert clear.to_dict()["warnings"] == clear.warnings
    assert [w.split(":")[0] for w in actions.plan_clear(project, [Job.get_by_id(ext2.id), src]).warnings] == \
        [f"final result {fin2.uid} loses its particle images"]
    # (the plan round-trips: a saved preview keeps its warnings)
    again = type(plan).from_dict(json.loads(json.dumps(plan.to_dict())))
    assert again.warnings == plan.warnings and again.entry(ext.uid).finals_losing_images == [fin.uid]


def test_cli_dry_run_and_text_show_the_warning(qapp, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRYODESK_DB", str(tmp_path / "cli.sqlite"))

    def cli(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return code, out, err

    cli("project", "create", "--title", "X", "--dir", str(tmp_path / "p"))
    cli("workspace", "create", "P1", "--title", "main")
    cli("job", "create", "P1", "i20_source")
    cli("job", "create", "P1", "i20_extract", "-i", "particles=J1")
    cli("job", "create", "P1", "i20_step", "-i", "particles=J2")
    for uid in ("J1", "J2", "J3"):
        assert cli("job", "run", "P1", uid)[0] == 0
    assert cli("job", "final", "P1", "J3")[0] == 0
    code, out, _ = cli("cleanup", "P1", "--preprocessing", "all", "--dry-run")
    doc = json.loads(out)
    assert code == 0 and doc["warnings"] and "J3 loses its particle images" in doc["warnings"][0]
    assert [e["finals_losing_images"] for e in doc["entries"] if e["uid"] == "J2"] == [["J3"]]
    code, out, err = cli("job", "clear", "P1", "J2", "--dry-run")
    assert code == 0 and "warning: final result J3 loses its particle images" in err
    assert "J3 loses its particle images" in json.loads(out)["warnings"][0]
    code, out, err = cli("cleanup", "P1", "--preprocessing", "all")  # the summary, then no confirmation here
    assert code == 1 and "without confirmation" in err
    assert "warning: final result J3 loses its particle images" in out
    assert "cryodesk job create P1 restack_particles -i particles=J3" in out


@pytest.mark.parametrize("status", ["running", "queued"])
def test_nothing_an_active_job_reads_at_any_depth_is_cleared(project, status):
    a, b, c = _chain(project, ["i20_source", "i20_step", "i20_step"], final_last=False)
    early = actions.plan_clear(project, [a])  # planned while nothing ran
    assert early.plan.items and not early.refused
    early_cleanup = plan_cleanup(project, CleanupOptions(non_final="clear"))
    assert a.uid in {e.uid for e in early_cleanup.entries}
    jobs.set_status(Job.get_by_id(c.id), status)  # the grandchild starts
    # the plan refuses ...
    refused = actions.plan_clear(project, [a])
    assert not refused.plan.items and f"{c.uid} is {status}" in refused.refused[0].message
    cleanup = plan_cleanup(project, CleanupOptions(non_final="clear"))
    why = {s.uid: s.reason for s in cleanup.skipped}
    assert a.uid not in {e.uid for e in cleanup.entries}
    assert why[a.uid] == f"{c.uid} is {status} and reads what was made from its outputs (through {b.uid})"
    # ... and so does the recheck at apply time, for plans made before it started
    r = actions.run_plan(project, early)
    assert not r.ok and f"{c.uid} is {status}" in r.outcomes[0].message
    res = execute_cleanup(project, early_cleanup)
    assert not [o for o in res.outcomes if o["uid"] == a.uid and o["ok"]], res.outcomes
    from pathlib import Path

    assert (Path(project.directory) / a.uid / "data.bin").exists()
    assert Job.get_by_id(a.id).status == "completed"


def test_the_cleanup_dialog_preview_shows_the_warning(project, qtbot, artifacts_dir):
    from PySide6.QtCore import QPoint, Qt

    from cryodesk.ui.cleanup_dialog import QtCleanupDialog

    src, ext, sel, fin = _chain(project, ["i20_source", "i20_extract", "i20_step", "i20_step"])
    dialog = QtCleanupDialog(None, project.uid)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    qtbot.waitUntil(lambda: dialog.plan is not None, timeout=10000)
    assert not dialog.warnings.isVisibleTo(dialog)
    box = dialog.pre_boxes["extraction"]
    qtbot.mouseClick(box, Qt.MouseButton.LeftButton, pos=QPoint(8, box.height() // 2))  # on its indicator
    assert box.isChecked()
    qtbot.waitUntil(lambda: dialog.plan.options.preprocessing == ("extraction",) or "Cannot" in dialog.summary.text(),
                    timeout=10000)
    assert "Cannot" not in dialog.summary.text(), dialog.summary.text()
    assert dialog.warnings.isVisibleTo(dialog)
    text = dialog.warnings.text()
    assert f"final result {fin.uid} loses its particle images" in text and "restack" in text
    assert "1 final result(s) lose their particle images" in dialog.summary.text()
    dialog.tabs.setCurrentWidget(dialog.tabs.jobs)
    rows = {dialog.tabs.jobs.item(r, 0).text(): dialog.tabs.jobs.item(r, 3).text()
            for r in range(dialog.tabs.jobs.rowCount())}
    assert fin.uid in rows[ext.uid] and "restack" in rows[ext.uid]
    dialog.tabs.setCurrentIndex(0)
    dialog.grab().save(str(artifacts_dir / "ui_cleanup_final_loses_images.png"))
    dialog.reject()
