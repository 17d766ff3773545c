"""Execution: re-checks, failures, cancel, symlinks, sizes and the automatic intermediate cleanup."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from cryodesk.core import actions, finals, jobs, runner, sizes
from cryodesk.core.cleanup import CleanupOptions, execute_cleanup, plan_cleanup, set_job_setting, set_project_setting
from cryodesk.db.models import Job, OutputFile, Project

from .helpers import build_mixed, bytes_gone, disk_files, job_sizes, rename_source


@pytest.fixture
def raw(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "movie.mrc").write_bytes(b"m" * 1000)
    return raw


@pytest.fixture
def mixed(project, raw):
    return build_mixed(project, raw)


ALL = CleanupOptions(preprocessing="all", intermediate=True, non_final="delete", killed="clear", failed="delete")


def fresh(j):
    return Job.get_by_id(j.id)


def versions(job):
    return sorted(f.version for f in OutputFile.select().where(OutputFile.job == job))


def test_execution_frees_what_the_plan_says_and_symlinked_data_survives(project, mixed, raw, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    jd = Path(project.directory) / "J7"
    (jd / "out-link").symlink_to(outside)
    pdir = Path(project.directory)
    sizes.refresh_project_size(Project.get_by_id(project.id))  # the link made by hand counts (as a link)
    before = job_sizes(pdir)
    plan = plan_cleanup(project, ALL)
    result = execute_cleanup(project, plan)
    assert result.ok, result.to_dict()
    assert result.bytes_freed == plan.bytes == bytes_gone(before, job_sizes(pdir))
    assert (raw / "movie.mrc").read_bytes() == b"m" * 1000 and outside.read_text() == "keep"
    assert not os.path.lexists(pdir / "J2" / "raw") and (pdir / "J2" / "job.json").exists()
    assert fresh(mixed["motion"]).status == "building" and fresh(mixed["final"]).status == "completed"
    assert Job.get_or_none(Job.id == mixed["failed"].id) is None
    assert sizes.is_stale(Project.get_by_id(project.id)) or project.size_bytes is None


def test_a_job_marked_final_after_planning_is_skipped_and_reported(project, mixed):
    plan = plan_cleanup(project, CleanupOptions(non_final="clear"))
    finals.set_final(project, [mixed["reader"]])  # J6 final -> J5 becomes an ancestor of final
    result = execute_cleanup(project, plan)
    msgs = {o["uid"]: o["message"] for o in result.skipped}
    assert "marked as a final result (it was not when the plan was made)" in msgs["J6"]
    assert "became an ancestor of a final result" in msgs["J5"]
    assert versions(mixed["iter"]) == [0, 1, 2, 3] and fresh(mixed["killed"]).status == "building"


def test_failing_items_are_reported_and_the_rest_proceeds(project, mixed, monkeypatch):
    pdir = Path(project.directory)
    real = os.rename

    def rename(src, dst, *a, **k):
        if rename_source(src, k).startswith(str(pdir / "J7")):
            raise PermissionError(13, "Permission denied")
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "rename", rename)
    before = disk_files(pdir)
    result = execute_cleanup(project, plan_cleanup(project, CleanupOptions(killed="clear", failed="delete")))
    failed = {o["uid"]: o["message"] for o in result.skipped}
    assert failed == {"J7": "Permission denied"}
    assert fresh(mixed["killed"]).status == "killed"
    assert {k: v for k, v in before.items() if k.startswith("J7/")} == \
        {k: v for k, v in disk_files(pdir).items() if k.startswith("J7/")}
    assert Job.get_or_none(Job.id == mixed["failed"].id) is None


def test_a_delete_whose_descendant_survives_is_skipped(project, mixed, monkeypatch):
    pdir = Path(project.directory)
    real = os.rename

    def rename(src, dst, *a, **k):
        if rename_source(src, k) == str(pdir / "J9"):
            raise OSError(16, "Device or resource busy")
        return real(src, dst, *a, **k)

    monkeypatch.setattr(os, "rename", rename)
    result = execute_cleanup(project, plan_cleanup(project, CleanupOptions(failed="delete")))
    msgs = {o["uid"]: o["message"] for o in result.skipped}
    assert msgs["J9"] == "Device or resource busy" and "descendants that are not being deleted with it: J9" in msgs["J8"]
    assert (pdir / "J8" / "data.bin").exists() and (pdir / "J9" / "job.json").exists()


def test_cancel_stops_before_the_next_job(project, mixed):
    ev = threading.Event()
    seen = []

    def progress(frac, msg):
        seen.append(msg)
        ev.set()

    result = execute_cleanup(project, plan_cleanup(project, ALL), progress=progress, cancel=ev)
    done = [o for o in result.outcomes if o["ok"]]
    assert len(done) == 1 and all("cancelled" in o["message"] for o in result.skipped)


def test_sizes_are_recorded_on_completion_clear_and_rerun(project):
    j = jobs.create_job(project, "c_source", "W1", params={"nbytes": "1234"})
    j = runner.run_job(project, j)
    jd = Path(project.directory) / "J1"
    log, manifest = (jd / "job.log").stat().st_size, (jd / "job.json").stat().st_size
    assert j.size_bytes == 1234 + log + manifest + os.lstat(jd).st_size  # du -sb of J1
    assert actions.clear_jobs(project, [j]).ok
    assert fresh(j).size_bytes == os.lstat(jd).st_size + (jd / "job.json").stat().st_size
    assert runner.run_job(project, fresh(j)).size_bytes > 1234
    summary = sizes.ensure_project_size(Project.get_by_id(project.id))
    assert summary["known"] and not summary["stale"]
    runner.run_job(project, jobs.create_job(project, "c_source", "W1"))
    assert sizes.is_stale(Project.get_by_id(project.id))


def test_intermediate_results_deleted_automatically_unless_switched_off(project):
    j = runner.run_job(project, jobs.create_job(project, "c_iter", "W1", params={"iterations": "4"}))
    assert versions(j) == [3]
    assert not (Path(project.directory) / "J1" / "iter_000.bin").exists()
    set_project_setting(project, "delete_intermediate", "false")
    k = runner.run_job(project, jobs.create_job(project, "c_iter", "W1", params={"iterations": "3"}))
    assert versions(k) == [0, 1, 2]
    m = jobs.create_job(project, "c_iter", "W1", params={"iterations": "3"})
    set_job_setting(project, m, "delete_intermediate", True)  # per-job override
    assert versions(runner.run_job(project, m)) == [2]


def test_killed_iterative_job_keeps_intermediates_and_mark_complete_makes_them_inputs(project):
    ev = threading.Event()
    job = jobs.create_job(project, "c_iter", "W1", params={"iterations": "5"})
    out = runner.run_job(project, job, progress=lambda f, m: ev.set() if f >= 0.4 else None, cancel_event=ev)
    assert out.status == "killed" and versions(out) == [0, 1]
    assert actions.mark_complete(project, [out]).ok
    child = jobs.create_job(project, "c_step", "W1", [jobs.InputSpec("particles", "J1", None, 0)])
    assert runner.run_job(project, child).status == "completed"
    assert plan_cleanup(project, CleanupOptions(killed="delete")).entries == []
    plan = plan_cleanup(project, CleanupOptions(intermediate=True))
    assert plan.entries == [] and "read by another job" in plan.skipped[0].reason


def test_old_database_without_sizes_gets_them_on_first_use(project):
    runner.run_job(project, jobs.create_job(project, "c_source", "W1"))
    Project.update(size_bytes=None, size_refreshed_at=None).execute()
    p = Project.get_by_id(project.id)
    assert sizes.size_summary(p)["known"] is False and sizes.is_stale(p)
    s = sizes.ensure_project_size(p)
    assert s["known"] and s["size_bytes"] > 1000 and s["jobs_bytes"] > 1000


def test_on_project_open_replays_the_journal_and_measures(project, mixed):
    from cryodesk.core.cleanup import on_project_open

    Project.update(size_bytes=None).execute()
    d = on_project_open(project.uid)
    assert d["known"] and d["recovered"] == 0 and d["size_bytes"] > 0
