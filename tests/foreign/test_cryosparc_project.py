"""A CryoSPARC project directory: audited read only (v4 and v5 documents), never a byte changed."""

from __future__ import annotations

import hashlib
import os

import pytest

from cryodesk.base.fsio import du_size
from cryodesk.core import finals, jobs, projects, sizes
from cryodesk.core.deletion import DeletionPlan, clear_item, execute
from cryodesk.core.foreign import cryosparc_audit
from cryodesk.core.foreign.service import detect, open_project
from cryodesk.core.guard import ProjectReadOnly

from .cryosparc_fixtures import build

READ_ONLY = "managed by CryoSPARC — read-only"


def _tree(root):
    """Every entry's kind, size, content checksum (files), link target: what 'no byte changed' means."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            digest = hashlib.sha256(open(p, "rb").read()).hexdigest() if os.path.isfile(p) else None
            out[os.path.relpath(p, root)] = (st.st_mode, st.st_size, st.st_mtime_ns, digest)
    return out


@pytest.fixture
def csparc(database, tmp_path, realdata_dir):
    return build(tmp_path / "CS-beta-gal", realdata_dir / "cryosparc_job_docs")


def test_open_and_browse_changes_no_byte(csparc):
    before = _tree(csparc)
    assert detect(csparc) == "cryosparc"
    project, info = open_project(csparc)
    assert (project.kind, info["jobs"], info["workspaces"], info["sessions"]) == ("cryosparc", 3, 2, 1)
    j1, j2, j3 = (jobs.get_job(project, f"J{n}") for n in (1, 2, 3))
    assert (j1.type, j1.status, j1.is_ancestor_of_final) == ("cryosparc.homo_abinit", "completed", True)
    assert (j2.type, j2.status, j2.title) == ("cryosparc.snowflake", "killed", "Recenter Particles")
    assert (j3.type, j3.is_final, j3.params["refine_symmetry"]) == ("cryosparc.nonuniform_refine_new", True, "D2")
    assert "brand_new_v6_field" in j3.params["_cryosparc_fields"]  # unknown fields shown, not refused
    assert [c.parent.number for c in j3.input_connections] == [1] == [c.parent.number for c in j2.input_connections]
    assert j1.size_bytes == du_size(csparc / "J1") and info["size"]["measured_bytes"] == du_size(csparc)
    assert j1.created_at.year == 2023
    # browsing: summaries, job lists, sizes, the cleanup preview; then opening again
    assert projects.project_summaries(project)[0]["state"] == "read-only"
    jobs.describe_jobs(project, jobs.list_jobs(project))
    sizes.refresh_project_size(project)
    prev = cryosparc_audit.preview(project)
    assert READ_ONLY in prev["read_only"]
    inter = {j["uid"]: j["bytes"] for j in prev["tabs"]["intermediate"]["jobs"]}
    assert inter["J1"] > 0 and "J3" not in inter  # a final job's intermediate results are kept
    assert [j["uid"] for j in prev["tabs"]["killed"]["jobs"]] == ["J2"]
    assert [j["uid"] for j in prev["tabs"]["non_final"]["jobs"]] == ["J2"]
    open_project(csparc)
    assert _tree(csparc) == before


def test_every_change_is_refused(csparc):
    before = _tree(csparc)
    project, _ = open_project(csparc)
    j2 = jobs.get_job(project, "J2")
    with pytest.raises(ProjectReadOnly, match=READ_ONLY):
        finals.set_final(project, [j2])
    with pytest.raises(ProjectReadOnly, match=READ_ONLY):
        jobs.set_params(project, j2, {"x": 1})
    with pytest.raises(ProjectReadOnly, match=READ_ONLY):
        execute(project, DeletionPlan(project.uid, [clear_item(csparc, j2, "test")]))
    with pytest.raises(ProjectReadOnly, match=READ_ONLY):
        projects.create_workspace(project, "mine")
    assert _tree(csparc) == before


def test_a_running_cryosparc_job_is_not_killed_nor_marked_complete_here(csparc):
    """CryoSPARC runs its jobs: Kill is refused (the status stays what CryoSPARC recorded); so is mark-complete."""
    import json

    from cryodesk.base.errors import Refused
    from cryodesk.core import actions, lifecycle

    doc = json.loads((csparc / "J2" / "job.json").read_text())
    (csparc / "J2" / "job.json").write_text(json.dumps({**doc, "status": "running"}))
    before = _tree(csparc)
    project, _ = open_project(csparc)
    assert jobs.get_job(project, "J2").status == "running"
    with pytest.raises(Refused, match="runs in CryoSPARC"):
        lifecycle.request_kill(project, "J2")
    assert jobs.get_job(project, "J2").status == "running"
    r = actions.mark_complete(project, [jobs.get_job(project, "J1")])
    assert not r.ok and "cryodesk only reads it" in r.outcomes[0].message
    assert _tree(csparc) == before


def test_cleanup_data_says_which_tool(csparc):
    from cryodesk.base.errors import UsageError
    from cryodesk.core.cleanup import CleanupOptions, plan_cleanup

    project, _ = open_project(csparc)
    with pytest.raises(UsageError, match="cryosparc preview"):
        plan_cleanup(project, CleanupOptions(intermediate=True))
