"""The planner on a fixed project with every case (tests/cleanup/helpers.build_mixed).

J1 source -> J2 motion -> J3 iter -> J4 final;  J1 -> J5 iter (4 versions) -> J6 reads J5@1;
J1 -> J7 killed;  J8 failed source -> J9 failed child.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cryodesk.base.errors import UsageError
from cryodesk.core import actions, jobs, projects
from cryodesk.core.cleanup import CleanupOptions, CleanupPlan, plan_cleanup

from .helpers import build_mixed


@pytest.fixture
def mixed(project, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "movie.mrc").write_bytes(b"m" * 1000)
    return build_mixed(project, raw)


def acts(plan) -> dict[str, str]:
    return {e.uid: e.action for e in plan.entries}


def test_preprocessing_clears_ancestors_of_final_and_says_so(project, mixed):
    plan = plan_cleanup(project, CleanupOptions(preprocessing="motion,ctf"))
    assert acts(plan) == {"J2": "clear"}
    e = plan.entry("J2")
    assert e.is_ancestor_of_final and "ancestor of a final result" in e.reasons[0]
    # a clear frees all of the job but its directory's own entry and its job.json
    jd = Path(project.directory) / "J2"
    kept = os.lstat(jd).st_size + os.lstat(jd / "job.json").st_size
    assert e.bytes == jobs.get_job(project, "J2").size_bytes - kept > 2000
    assert plan_cleanup(project, CleanupOptions(preprocessing="ctf")).entries == []
    with pytest.raises(UsageError, match="unknown preprocessing category 'motoin'"):
        CleanupOptions(preprocessing="motoin")


def test_intermediate_keeps_the_last_version_and_versions_read_by_other_jobs(project, mixed):
    plan = plan_cleanup(project, CleanupOptions(intermediate=True))
    # the ancestor of final J3 loses its intermediate results too (the guide: only final jobs keep theirs)
    assert acts(plan) == {"J3": "clear_intermediate", "J5": "clear_intermediate"}
    e = plan.entry("J5")
    assert e.versions == {"classes": [0, 2]} and e.bytes == 100 + 102
    assert "keeps classes v1" in e.reasons[0]
    assert plan.entry("J3").versions == {"classes": [0, 1]} and not plan.skipped
    tab = plan.tabs["intermediate"]
    assert tab["jobs_with_intermediate"] == 2 and tab["intermediate_bytes"] == (100 + 101) + (100 + 101 + 102)
    assert tab["bytes_freed"] == 202 + 201


def test_non_final_delete_takes_descendants_along_and_never_touches_final_lines(project, mixed):
    plan = plan_cleanup(project, CleanupOptions(non_final="delete"))
    assert acts(plan) == {u: "delete" for u in ("J5", "J6", "J7", "J8", "J9")}
    assert plan.tabs["non_final"]["final"]["jobs"] == 1
    assert plan.tabs["non_final"]["ancestor_of_final"]["jobs"] == 3
    assert plan.tabs["non_final"]["neither"]["jobs"] == 5
    clear = plan_cleanup(project, CleanupOptions(non_final="clear"))
    assert acts(clear) == {u: "clear" for u in ("J5", "J6", "J7", "J8", "J9")}


def test_workspace_scope_counts_linked_jobs_and_flags_them(project, mixed):
    w2 = projects.create_workspace(project, "second")
    actions.link(project, [mixed["iter"]], w2)
    plan = plan_cleanup(project, CleanupOptions(non_final="delete", intermediate=True), "W2")
    e = plan.entry("J5")
    assert acts(plan) == {"J5": "clear"}  # its child J6 lives outside W2: cleared, not deleted
    assert e.also_in == ["W1"] and any("J6" in r for r in e.reasons) and any("also linked" in r for r in e.reasons)
    assert plan.header["jobs"] == 1 and plan.header["scope"] == "P1 W2"


def test_killed_and_failed_by_status_and_mark_complete_protects(project, mixed):
    plan = plan_cleanup(project, CleanupOptions(killed="clear", failed="delete"))
    assert acts(plan) == {"J7": "clear", "J8": "delete", "J9": "delete"}
    kf = plan.tabs["killed_failed"]
    assert kf["killed"]["jobs"] == 1 and kf["failed"]["jobs"] == 2 and kf["failed"]["mode"] == "delete"
    actions.mark_complete(project, [mixed["killed"]])
    assert "J7" not in acts(plan_cleanup(project, CleanupOptions(killed="delete")))


def test_running_jobs_and_the_jobs_they_read_are_left_alone(project, mixed):
    jobs.set_status(mixed["reader"], "running")
    plan = plan_cleanup(project, CleanupOptions(intermediate=True, non_final="delete"))
    assert "J5" not in acts(plan) and "J6" not in acts(plan)
    reasons = {s.uid: s.reason for s in plan.skipped}
    assert reasons["J6"] == "it is running" and "J6 is running and reads its outputs" in reasons["J5"]


def test_figures_and_round_trip(project, mixed):
    plan = plan_cleanup(project, CleanupOptions(preprocessing="all", intermediate=True, killed="clear",
                                                failed="delete"))
    est = plan.tabs["estimate"]
    assert est["jobs_modified"] == len(plan.entries) == 6
    assert (est["jobs_cleared"], est["jobs_intermediate_only"], est["jobs_deleted"]) == (2, 2, 2)
    assert est["bytes_freed"] == plan.bytes == sum(e.bytes for e in plan.entries)
    assert 0 < est["percent_of_project"] < 100
    pre = plan.tabs["preprocessing"]
    assert pre["motion_correction"]["jobs"] == 1 and pre["motion_correction"]["selected"]
    assert pre["non_preprocessing"]["jobs"] == 8
    assert sum(b["bytes"] for b in pre.values()) == plan.header["jobs_bytes"]
    again = CleanupPlan.from_dict(plan.to_dict())
    assert again.to_dict() == plan.to_dict()
