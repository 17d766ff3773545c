from __future__ import annotations

import os
from pathlib import Path

import pytest

from cryodesk.base import hooks
from cryodesk.base.errors import Refused, UsageError
from cryodesk.core import actions, deletion, finals, jobs, projects, runner
from cryodesk.db.models import Job, JobWorkspace, OutputFile

from .helpers import build_dag

CHAIN3 = [[], [0], [1]]


def fresh(j):
    return Job.get_by_id(j.id)


def run_all(project, js):
    for j in js:
        runner.run_job(project, j)
    return [fresh(j) for j in js]


def pdir(project):
    return Path(project.directory)


def test_clear_removes_outputs_keeps_manifest_params_and_children(project):
    js = run_all(project, build_dag(project, CHAIN3))
    assert (pdir(project) / "J2" / "step.bin").exists()
    plan = actions.plan_clear(project, [js[1]])
    assert plan.plan.items[0].bytes >= 500 and not plan.refused
    result = actions.run_plan(project, plan)
    assert result.ok and result.bytes_freed == plan.plan.bytes
    j2 = fresh(js[1])
    assert j2.status == "building" and j2.params["nbytes"] == 500
    assert sorted(os.listdir(pdir(project) / "J2")) == ["job.json"]
    assert not OutputFile.select().where(OutputFile.job == j2).exists()
    # the child keeps its own outputs but cannot run again until J2 is re-run
    assert (pdir(project) / "J3" / "step.bin").exists()
    actions.clear_jobs(project, [fresh(js[2])])
    with pytest.raises(Refused, match="J2, which is building; run .*J2 first"):
        runner.run_job(project, js[2])
    runner.run_job(project, j2)
    assert runner.run_job(project, js[2]).status == "completed"


def test_final_and_ancestor_rules(project):
    js = run_all(project, build_dag(project, CHAIN3))
    finals.set_final(project, [js[1]])
    js = [fresh(j) for j in js]
    # final: no clear, no delete, no params
    r = actions.clear_jobs(project, [js[1]])
    assert not r.ok and "J2 cannot be cleared: it is marked as a final result" in r.refused[0].message
    r = actions.delete_jobs(project, [js[1], js[2]])
    msgs = {o.uid: o.message for o in r.refused}
    assert "marked as a final result" in msgs["J2"]
    assert r.outcomes[-1].uid == "J3" and r.outcomes[-1].ok  # J3 is neither, deleted with the batch
    with pytest.raises(Refused, match="J2: cannot change parameters: it is marked as a final result"):
        jobs.set_params(project, js[1], {"nbytes": "3"})
    # ancestor of final: may be cleared, not deleted, params frozen
    r = actions.delete_jobs(project, [js[0]])
    assert "J1 cannot be deleted: it is an ancestor of a final result" in r.refused[0].message
    with pytest.raises(Refused, match="ancestor of a final result"):
        jobs.set_params(project, js[0], {"nbytes": "3"})
    assert actions.clear_jobs(project, [js[0]]).ok
    assert (pdir(project) / "J2" / "step.bin").exists()


def test_delete_refuses_when_descendants_survive_and_lists_them(project):
    js = run_all(project, build_dag(project, [[], [0], [1], [0]]))
    r = actions.delete_jobs(project, [js[0], js[1]])
    assert not r.ok
    msgs = {o.uid: o.message for o in r.refused}
    assert msgs["J1"].endswith("descendants that are not being deleted with it: J3, J4")
    assert "J3" in msgs["J2"]
    r = actions.delete_jobs(project, js)
    assert r.ok
    assert Job.select().where(Job.project == project).count() == 0
    assert not any(p.name.startswith("J") for p in pdir(project).iterdir())


def test_deleting_never_follows_symlinks(project, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "movie.mrc").write_bytes(b"raw data")
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    js = run_all(project, build_dag(project, [[]]))
    jd = pdir(project) / "J1"
    (jd / "imported").symlink_to(raw, target_is_directory=True)
    (jd / "link.txt").symlink_to(outside)
    plan = actions.plan_clear(project, js)
    log = (jd / "job.log").stat().st_size
    links = (jd / "imported").lstat().st_size + (jd / "link.txt").lstat().st_size
    assert plan.plan.items[0].bytes == 1000 + log + links  # the links as links (du -sb); never their data
    assert actions.run_plan(project, plan).ok
    assert (raw / "movie.mrc").read_bytes() == b"raw data" and outside.read_text() == "keep me"
    (jd / "imported").symlink_to(raw, target_is_directory=True)
    assert actions.delete_jobs(project, [fresh(js[0])]).ok
    assert (raw / "movie.mrc").exists() and outside.exists() and not jd.exists()


def test_symlinked_job_directory_is_refused(project, tmp_path):
    js = build_dag(project, [[]])
    elsewhere = tmp_path / "elsewhere"
    jd = pdir(project) / "J1"
    os.rename(jd, elsewhere)
    jd.symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(Exception, match="symlink"):
        actions.plan_delete(project, js)
    assert elsewhere.exists()


def test_crash_mid_plan_is_rolled_forward(project, monkeypatch):
    js = run_all(project, build_dag(project, [[], [], []]))
    plan = actions.plan_delete(project, js)
    calls = {"n": 0}

    def crashing(**info):
        calls["n"] += 1
        if calls["n"] == 2:
            raise SystemExit("simulated crash")  # after J2's files moved, before its DB change

    hooks.register("deletion.moved", crashing)
    try:
        with pytest.raises(SystemExit):
            actions.run_plan(project, plan)
    finally:
        hooks.clear("deletion.moved")
    assert deletion.pending(project)
    assert not (pdir(project) / "J2").exists() and Job.select().where(Job.number == 2).exists()
    results = deletion.recover(project)
    assert all(r.ok for r in results)
    assert Job.select().where(Job.project == project).count() == 0
    assert not deletion.pending(project)
    assert not any((pdir(project) / ".cryodesk" / "trash").iterdir())


def test_recovery_skips_jobs_made_final_after_planning(project):
    js = run_all(project, build_dag(project, [[]]))
    plan = actions.plan_clear(project, js)
    finals.set_final(project, js)
    r = actions.run_plan(project, plan)
    assert not r.ok and "skipped: it is marked as a final result" in r.outcomes[0].message
    assert (pdir(project) / "J1" / "data.bin").exists()


def test_mark_complete_and_link_unlink_move(project):
    js = build_dag(project, [[], [0]])
    r = actions.mark_complete(project, js)
    assert not r.ok and "only killed or failed jobs" in r.refused[0].message
    jobs.set_status(js[0], "failed", error="boom")
    assert actions.mark_complete(project, [fresh(js[0])]).ok
    assert fresh(js[0]).status == "completed" and fresh(js[0]).error is None
    w2 = projects.create_workspace(project, "two")
    assert actions.link(project, js, w2).ok
    assert JobWorkspace.select().where(JobWorkspace.workspace == w2).count() == 2
    assert actions.unlink(project, js, "W1").ok
    r = actions.unlink(project, js, "W2")
    assert "W2 is its only workspace" in r.refused[0].message
    w3 = projects.create_workspace(project, "three")
    assert actions.move(project, [js[0]], w3).ok
    ws = [f"W{w.number}" for w in projects.list_workspaces(project)
          if JobWorkspace.select().where((JobWorkspace.job == js[0]) & (JobWorkspace.workspace == w)).exists()]
    assert ws == ["W3"]


def test_clone_chain_remaps_connections_inside_the_chain(project):
    js = build_dag(project, [[], [0], [1]])
    jobs.set_params(project, js[2], {"nbytes": "7"})
    result, mapping = actions.clone(project, js[1:], "W1")
    assert result.ok and mapping == {"J2": "J4", "J3": "J5"}
    d = {x["uid"]: x for x in jobs.describe_jobs(project, jobs.list_jobs(project))}
    assert d["J4"]["parents"] == ["J1"] and d["J5"]["parents"] == ["J4"]
    assert d["J5"]["params"]["nbytes"] == 7 and d["J5"]["status"] == "building"


def test_params_are_validated(project):
    js = build_dag(project, [[]])
    with pytest.raises(UsageError, match="expects int"):
        jobs.set_params(project, js[0], {"nbytes": "many"})
    with pytest.raises(UsageError, match="has no parameter 'nope'"):
        jobs.set_params(project, js[0], {"nope": "1"})
    runner.run_job(project, js[0])
    with pytest.raises(Refused, match="it is completed; clear it first"):
        jobs.set_params(project, js[0], {"nbytes": "2"})


def test_runner_cancel_keeps_finished_iterations_as_intermediate(project):
    import threading

    job = jobs.create_job(project, "t_iter", "W1", params={"iterations": "5"})
    ev = threading.Event()
    seen = []

    def progress(frac, msg):
        seen.append(frac)
        if len(seen) == 2:
            ev.set()

    out = runner.run_job(project, job, progress=progress, cancel_event=ev)
    assert out.status == "killed"
    versions = sorted(f.version for f in OutputFile.select().where(OutputFile.job == out))
    assert versions == [0, 1]
    assert (pdir(project) / "J1" / "job.log").exists()


def test_missing_project_directory_stops_every_write(project, tmp_path):
    import shutil as _sh

    from cryodesk.base.errors import DataError

    js = run_all(project, build_dag(project, [[], [0]]))
    waiting = jobs.create_job(project, "t_source", "W1")
    moved = tmp_path / "unmounted"
    _sh.move(project.directory, moved)
    for action in (lambda: actions.clear_jobs(project, js), lambda: actions.delete_jobs(project, js[1:]),
                   lambda: jobs.create_job(project, "t_source", "W1"), lambda: runner.run_job(project, waiting)):
        with pytest.raises(DataError, match="is its disk mounted"):
            action()
    assert not Path(project.directory).exists()  # nothing was recreated
    assert [fresh(j).status for j in js] == ["completed", "completed"]


def test_delete_skips_a_parent_whose_child_in_the_batch_was_not_deleted(project):
    js = run_all(project, build_dag(project, [[], [0]]))
    plan = actions.plan_delete(project, js)
    jobs.set_status(fresh(js[1]), "running")  # another process started the child after planning
    r = actions.run_plan(project, plan)
    msgs = {o.uid: o.message for o in r.outcomes}
    assert "skipped" in msgs["J2"] and "skipped" in msgs["J1"] and "J2" in msgs["J1"]
    assert Job.select().count() == 2 and (pdir(project) / "J1" / "data.bin").exists()


def test_clear_is_refused_while_a_child_runs_on_the_outputs(project):
    js = run_all(project, build_dag(project, [[], [0]]))
    jobs.set_status(fresh(js[1]), "running")
    r = actions.clear_jobs(project, [js[0]])
    assert not r.ok and "J2 is running on its outputs" in r.refused[0].message
    assert (pdir(project) / "J1" / "data.bin").exists()
