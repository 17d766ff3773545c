"""Cleanup Data as the CryoSPARC guide describes it (issue 12, items 1, 5, 6 and 8)."""

from __future__ import annotations

import pytest

from cryodesk.core import jobs, projects, runner, sizes
from cryodesk.core.cleanup import CleanupOptions, execute_cleanup, plan_cleanup
from cryodesk.core.cleanup import model as cleanup_model
from cryodesk.core.registry import InputSlot, JobType, OutputGroup, Param, register
from cryodesk.db.models import JOB_STATUSES, Job, OutputFile, Project

from .helpers import build_mixed


def _run_restack(ctx):
    src = ctx.inputs["particles"][0].path("blob").read_bytes()
    out = ctx.job_dir / "restack" / "batch_000.mrc"
    out.parent.mkdir()
    out.write_bytes(src[:1] * int(ctx.params["nbytes"]))
    ctx.add_output("particles", out, kind="blob")


register(JobType("c_restack", "Test restack", "utilities", params=(Param("nbytes", 700, "int"),),
                 inputs=(InputSlot("particles", "particle"),), outputs=(OutputGroup("particles", "particle"),),
                 run=_run_restack))


@pytest.fixture
def mixed(project, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "movie.mrc").write_bytes(b"m" * 1000)
    return build_mixed(project, raw)


def acts(plan) -> dict[str, str]:
    return {e.uid: e.action for e in plan.entries}


def versions(job) -> list[int]:
    return sorted({f.version for f in OutputFile.select().where(OutputFile.job == job)})


def test_intermediate_results_of_ancestors_of_final_are_cleared_too(project, mixed):
    """Item 1: every job in scope loses its intermediate results; only final jobs keep theirs."""
    plan = plan_cleanup(project, CleanupOptions(intermediate=True))
    assert acts(plan) == {"J3": "clear_intermediate", "J5": "clear_intermediate"}
    e = plan.entry("J3")
    assert e.is_ancestor_of_final and e.versions == {"classes": [0, 1]}
    assert not any("ancestor" in s.reason for s in plan.skipped)
    result = execute_cleanup(project, plan)
    assert result.ok, result.to_dict()
    assert versions(Job.get_by_id(mixed["iter_anc"].id)) == [2]  # the last version, which J4 reads
    assert versions(Job.get_by_id(mixed["iter"].id)) == [1, 3]  # J6 reads v1: kept
    final = Job.get_by_id(mixed["final"].id)
    assert final.status == "completed" and final.is_final


def test_restack_jobs_have_their_own_option_off_by_default(project, mixed, monkeypatch):
    """Item 5: "all pre-processing jobs (including particle extraction and restack jobs)"."""
    monkeypatch.setattr(cleanup_model, "RESTACK_TYPES", cleanup_model.RESTACK_TYPES + ("c_restack",))
    rs = runner.run_job(project, jobs.create_job(project, "c_restack", "W1",
                                                 [jobs.InputSpec("particles", mixed["src"].uid)]))
    assert rs.status == "completed"
    assert "restack" not in CleanupOptions().to_dict() or not CleanupOptions().restack
    everything = plan_cleanup(project, CleanupOptions(preprocessing="all"))
    assert rs.uid not in acts(everything)  # off by default, not part of "all"
    plan = plan_cleanup(project, CleanupOptions(preprocessing="all", restack=True))
    assert acts(plan)[rs.uid] == "clear"
    assert "restack" in plan.entry(rs.uid).options
    tab = plan.tabs["preprocessing"]["restack"]
    assert tab["jobs"] == 1 and tab["selected"] and tab["jobs_affected"] == 1
    assert CleanupOptions.from_dict(plan.options.to_dict()).restack
    assert execute_cleanup(project, plan).ok
    assert Job.get_by_id(rs.id).status == "building"


def test_estimate_uses_current_sizes_and_never_exceeds_100_percent(project, mixed):
    """Item 6: a stale project size, an empty "untouched" bar and a workspace measured against the project."""
    sizes.refresh_project_size(Project.get_by_id(project.id))
    big = runner.run_job(project, jobs.create_job(project, "c_source", "W1", params={"nbytes": "40000"}))
    p = Project.get_by_id(project.id)
    assert sizes.is_stale(p) and p.size_bytes + big.size_bytes == sizes.size_summary(p)["size_bytes"]
    plan = plan_cleanup(p, CleanupOptions(non_final="delete", failed="delete", killed="delete"))
    est, head = plan.tabs["estimate"], plan.header
    summary = sizes.size_summary(p)
    current = summary["size_bytes"]
    assert head["size_bytes"] == current == summary["jobs_bytes"] + summary["sessions_bytes"] + summary["other_bytes"]
    assert head["jobs_bytes"] == sum(j.size_bytes for j in Job.select().where(Job.project == project))
    assert est["scope_bytes"] == current and est["project_bytes"] == current
    assert est["bytes_freed"] == plan.bytes <= current
    assert est["percent_of_scope"] == round(100 * plan.bytes / current, 1) <= 100
    kept = [j for j in Job.select().where(Job.project == project) if j.uid not in acts(plan)]
    assert kept and est["bytes_after"] == current - plan.bytes >= sum(j.size_bytes for j in kept) > 0

    w2 = projects.create_workspace(project, "second")
    from cryodesk.core import actions

    actions.link(project, [mixed["killed"], mixed["iter"]], w2)
    ws = plan_cleanup(Project.get_by_id(project.id), CleanupOptions(killed="delete"), "W2")
    west = ws.tabs["estimate"]
    in_w2 = sum(Job.get_by_id(j.id).size_bytes for j in (mixed["killed"], mixed["iter"]))
    assert ws.header["size_bytes"] == west["scope_bytes"] == in_w2
    assert west["project_bytes"] == sizes.size_summary(Project.get_by_id(project.id))["size_bytes"] > in_w2
    assert west["bytes_freed"] == Job.get_by_id(mixed["killed"].id).size_bytes
    assert west["percent_of_scope"] == round(100 * west["bytes_freed"] / in_w2, 1)
    assert west["percent_of_project"] == round(100 * west["bytes_freed"] / west["project_bytes"], 1)
    assert west["bytes_after"] == in_w2 - west["bytes_freed"]  # the untouched bar is the scope's


def test_status_tab_breaks_jobs_down_by_every_status(project, mixed):
    """Item 8: the Killed/Failed tab counts every status, not only killed and failed."""
    jobs.create_job(project, "c_step", "W1", [jobs.InputSpec("particles", mixed["src"].uid)])  # building
    plan = plan_cleanup(project, CleanupOptions(killed="clear"))
    kf = plan.tabs["killed_failed"]
    assert list(kf["statuses"]) == list(JOB_STATUSES)
    rows = list(Job.select().where(Job.project == project))
    for status in JOB_STATUSES:
        members = [j for j in rows if j.status == status]
        assert kf["statuses"][status]["jobs"] == len(members), status
        assert kf["statuses"][status]["bytes"] == sum(j.size_bytes for j in members), status
    assert sum(b["jobs"] for b in kf["statuses"].values()) == len(rows)
    assert kf["statuses"]["completed"]["jobs"] >= 5 and kf["statuses"]["building"]["jobs"] == 1
    assert kf["killed"]["mode"] == "clear" and kf["failed"]["mode"] is None  # the two options, as before
    assert kf["statuses"]["killed"]["jobs_affected"] == 1


def test_cli_restack_and_scope_figures(project, mixed, capsys, monkeypatch):
    import json

    from cryodesk.cli.main import build_parser

    monkeypatch.setattr(cleanup_model, "RESTACK_TYPES", cleanup_model.RESTACK_TYPES + ("c_restack",))
    rs = runner.run_job(project, jobs.create_job(project, "c_restack", "W1",
                                                 [jobs.InputSpec("particles", mixed["src"].uid)]))
    args = build_parser().parse_args(["cleanup", "P1", "--restack", "--dry-run"])
    assert args.func(args) == 0  # in the test's open database
    d = json.loads(capsys.readouterr().out)
    assert {e["uid"] for e in d["entries"]} == {rs.uid}
    assert d["options"]["restack"] is True
    est = d["tabs"]["estimate"]
    assert est["bytes_freed"] > 0 and est["percent_of_scope"] <= 100 and est["scope_bytes"] == est["project_bytes"]
