"""The same services on PostgreSQL (CI starts a server and sets CRYODESK_TEST_PG_URL)."""

from __future__ import annotations

import pytest
from throwaway import PG_URL, pg_project

from cryodesk.core import actions, finals, graph, jobs, projects, runner
from cryodesk.db.models import Job

pytestmark = pytest.mark.skipif(not PG_URL, reason="set CRYODESK_TEST_PG_URL to test against PostgreSQL")


@pytest.fixture
def pg(tmp_path):
    with pg_project(tmp_path) as p:
        yield p


def test_graph_finals_and_actions_on_postgres(pg):
    a = jobs.create_job(pg, "t_source", "W1")
    b = jobs.create_job(pg, "t_step", "W1", [jobs.InputSpec("particles", "J1")])
    c = jobs.create_job(pg, "t_step", "W1", [jobs.InputSpec("particles", "J2")])
    d = jobs.create_job(pg, "t_step", "W1", [jobs.InputSpec("particles", "J1")])
    for j in (a, b, c, d):
        assert runner.run_job(pg, j).status == "completed"
    assert [j.uid for j in graph.ancestors(c)] == ["J1", "J2"]
    assert [j.uid for j in graph.chain(a, c, projects.get_workspace(pg, "W1"))] == ["J1", "J2", "J3"]
    assert finals.set_final(pg, [b]).ok
    assert Job.get_by_id(a.id).is_ancestor_of_final
    r = actions.delete_jobs(pg, [a])
    assert "ancestor of a final result" in r.refused[0].message
    assert actions.delete_jobs(pg, [c, d]).ok
    assert finals.set_final(pg, [b], False).ok and not Job.get_by_id(a.id).is_ancestor_of_final
    assert actions.clear_jobs(pg, [a]).ok and Job.get_by_id(a.id).status == "building"
