"""Property tests on random projects: the promises of the Cleanup Data tool."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryodesk.base.fsio import du_size
from cryodesk.core.cleanup import CleanupOptions, execute_cleanup, plan_cleanup
from cryodesk.core.registry import PREPROCESSING_CATEGORIES
from cryodesk.db.models import Connection, Job, OutputFile

from .helpers import build_random, bytes_gone, disk_files, fresh_project, job_sizes, raw_intact

MODE = st.sampled_from([None, "clear", "delete"])
OPTIONS = st.builds(
    CleanupOptions,
    preprocessing=st.sets(st.sampled_from(PREPROCESSING_CATEGORIES)).map(tuple),
    intermediate=st.booleans(), non_final=MODE, killed=MODE, failed=MODE,
)


def _descendants(edges: dict[int, set[int]], jid: int) -> set[int]:
    out, stack = set(), list(edges.get(jid, ()))
    while stack:
        k = stack.pop()
        if k not in out:
            out.add(k)
            stack.extend(edges.get(k, ()))
    return out


def _planned_paths(project, plan) -> tuple[set[str], set[str]]:
    """(path prefixes a clear/delete may remove, exact files a clear_intermediate may remove)."""
    prefixes, files = set(), set()
    for e in plan.entries:
        if e.action in ("clear", "delete"):
            prefixes.add(f"{e.uid}/")
        else:
            job = Job.get((Job.project == project) & (Job.number == e.number))
            for f in OutputFile.select().where(OutputFile.job == job):
                if f.version in e.versions.get(f.group, ()):
                    files.add(f.path)
    return prefixes, files


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10**6), options=OPTIONS, workspace=st.sampled_from([None, "W1", "W2"]))
def test_cleanup_promises_on_random_projects(seed, options, workspace):
    with fresh_project() as project:
        build_random(project, seed)
        rows = {j.id: j for j in Job.select().where(Job.project == project)}
        edges: dict[int, set[int]] = {}
        for c in Connection.select().where(Connection.project == project):
            edges.setdefault(c.parent_id, set()).add(c.child_id)
        by_uid = {j.uid: j for j in rows.values()}
        plan = plan_cleanup(project, options, workspace)

        for e in plan.entries:
            job = by_uid[e.uid]
            assert not job.is_final, f"{e.uid} is final"
            if job.is_ancestor_of_final:  # cleared as preprocessing, or its intermediate results; never deleted
                assert (e.action == "clear" and "preprocessing" in e.options) or e.action == "clear_intermediate", e
            if workspace:
                assert workspace in {f"W{w.workspace.number}" for w in job.links}
        deleted = {by_uid[e.uid].id for e in plan.by_action("delete")}
        for jid in deleted:  # a planned delete takes every descendant with it
            assert _descendants(edges, jid) <= deleted

        pdir = Path(project.directory)
        before, sizes_before = disk_files(pdir), job_sizes(pdir)
        prefixes, files = _planned_paths(project, plan)
        result = execute_cleanup(project, plan)
        after = disk_files(pdir)
        assert result.ok, result.to_dict()
        assert raw_intact(project)  # symlinked raw data and outside files survive every cleanup
        # planned bytes == bytes freed == what left the disk (du -sb of the job directories)
        assert result.bytes_freed == plan.bytes == bytes_gone(sizes_before, job_sizes(pdir))
        gone = set(before) - set(after)
        for rel in gone:  # nothing outside the plan is gone
            assert rel in files or any(rel.startswith(p) for p in prefixes), rel
            assert not rel.endswith("/job.json") or rel.split("/")[0] in {f"J{rows[j].number}" for j in deleted}
        left = {j.id for j in Job.select(Job.id).where(Job.project == project)}
        assert left == set(rows) - deleted
        for jid in deleted:
            assert not _descendants(edges, jid) & left
        # the database matches the disk
        for f in OutputFile.select().join(Job).where(Job.project == project):
            assert f.path in after, f.path
        for e in plan.by_action("clear"):
            job = Job.get_by_id(by_uid[e.uid].id)
            assert job.status == "building" and job.size_bytes == du_size(pdir / e.uid)
            assert [r for r in after if r.startswith(f"{e.uid}/")] == [f"{e.uid}/job.json"]
