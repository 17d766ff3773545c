from __future__ import annotations

import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryodesk.core import finals, jobs, runner
from cryodesk.db.models import Job

from .helpers import brute_ancestors, build_dag, fresh_project

DIAMOND = [[], [0], [1], [1], [2, 3], []]


def run_all(project, js):
    for j in js:
        runner.run_job(project, j)
    return [Job.get_by_id(j.id) for j in js]


def flags(project):
    return {j.uid: (j.is_final, j.is_ancestor_of_final) for j in Job.select().where(Job.project == project)}


def test_mark_final_flags_every_ancestor_and_unmark_recomputes(project):
    js = run_all(project, build_dag(project, DIAMOND))
    result = finals.set_final(project, [js[2]])
    assert result.ok
    f = flags(project)
    assert f["J3"] == (True, False)
    assert [u for u, (_, a) in f.items() if a] == ["J1", "J2"]
    finals.set_final(project, [js[4]])
    assert sorted(u for u, (_, a) in flags(project).items() if a) == ["J1", "J2", "J3", "J4"]
    finals.set_final(project, [js[4]], final=False)
    assert sorted(u for u, (_, a) in flags(project).items() if a) == ["J1", "J2"]
    # the manifest on disk follows
    doc = json.loads((Path(project.directory) / "J2" / "job.json").read_text())
    assert doc["is_ancestor_of_final"] is True and doc["is_final"] is False


def test_only_completed_jobs_can_be_final(project):
    js = build_dag(project, [[]])
    result = finals.set_final(project, js)
    assert not result.ok
    assert "only completed jobs can be marked as final (it is building)" in result.refused[0].message


def test_ancestors_across_workspaces(project):
    from cryodesk.core import projects

    w2 = projects.create_workspace(project, "other")
    a = jobs.create_job(project, "t_source", "W1")
    b = jobs.create_job(project, "t_step", w2, [jobs.InputSpec("particles", a.uid)])
    run_all(project, [a, b])
    finals.set_final(project, [Job.get_by_id(b.id)])
    assert Job.get_by_id(a.id).is_ancestor_of_final


dags = st.integers(min_value=1, max_value=10).flatmap(
    lambda n: st.tuples(*[st.lists(st.integers(0, max(0, i - 1)), max_size=2 if i else 0) for i in range(n)])
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dag=dags, ops=st.lists(st.tuples(st.integers(0, 9), st.booleans()), max_size=8))
def test_flags_equal_union_of_ancestors_of_finals(dag, ops):
    dag = [sorted(set(ps)) for ps in dag]
    with fresh_project() as p:
        js = run_all(p, build_dag(p, dag))
        for idx, value in ops:
            idx %= len(js)
            finals.set_final(p, [Job.get_by_id(js[idx].id)], value)
            final_idx = {j.number - 1 for j in Job.select().where((Job.project == p) & Job.is_final)}
            expected = set().union(*[brute_ancestors(dag, i) for i in final_idx]) if final_idx else set()
            got = {j.number - 1 for j in Job.select().where((Job.project == p) & Job.is_ancestor_of_final)}
            assert got == expected
