from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cryodesk.base.errors import NotFound
from cryodesk.core import actions, graph, projects

from .helpers import brute_ancestors, build_dag, fresh_project

# J1 -> J2 -> J3 -> J5 ; J2 -> J4 -> J5 ; J6 independent
DIAMOND = [[], [0], [1], [1], [2, 3], []]


def uids(js):
    return [j.uid for j in js]


def test_parents_children_ancestors_descendants(project):
    js = build_dag(project, DIAMOND)
    assert uids(graph.parents(js[4])) == ["J3", "J4"]
    assert uids(graph.children(js[1])) == ["J3", "J4"]
    assert uids(graph.ancestors(js[4])) == ["J1", "J2", "J3", "J4"]
    assert uids(graph.descendants(js[0])) == ["J2", "J3", "J4", "J5"]
    assert graph.ancestors(js[5]) == [] and graph.descendants(js[5]) == []


def test_chain_between_two_jobs_in_either_order(project):
    js = build_dag(project, DIAMOND)
    assert uids(graph.chain(js[1], js[4])) == ["J2", "J3", "J4", "J5"]
    assert uids(graph.chain(js[4], js[0])) == ["J1", "J2", "J3", "J4", "J5"]
    assert uids(graph.chain(js[2], js[4])) == ["J3", "J5"]
    with pytest.raises(NotFound, match="no job chain between J3 and J4"):
        graph.chain(js[2], js[3])


def test_workspace_scope_follows_only_linked_jobs(project):
    js = build_dag(project, DIAMOND)
    w2 = projects.create_workspace(project, "branch")
    actions.link(project, [js[0], js[1], js[2], js[4]], w2)  # J4 not in W2
    assert uids(graph.ancestors(js[4], w2)) == ["J1", "J2", "J3"]
    assert uids(graph.descendants(js[1], w2)) == ["J3", "J5"]
    assert uids(graph.chain(js[1], js[4], w2)) == ["J2", "J3", "J5"]


def test_cycle_detection(project):
    js = build_dag(project, [[], [0]])
    assert graph.would_create_cycle(js[0], js[1])
    assert not graph.would_create_cycle(js[1], js[0])


dags = st.integers(min_value=1, max_value=14).flatmap(
    lambda n: st.tuples(*[st.lists(st.integers(0, max(0, i - 1)), max_size=3 if i else 0) for i in range(n)])
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dag=dags, data=st.data())
def test_queries_agree_with_brute_force(dag, data):
    dag = [sorted(set(ps)) for ps in dag]
    with fresh_project() as p:
        js = build_dag(p, dag)
        n = len(dag)
        for i in range(n):
            anc = brute_ancestors(dag, i)
            assert {j.number - 1 for j in graph.ancestors(js[i])} == anc
            desc = {k for k in range(n) if i in brute_ancestors(dag, k)}
            assert {j.number - 1 for j in graph.descendants(js[i])} == desc
        a = data.draw(st.integers(0, n - 1))
        b = data.draw(st.integers(0, n - 1))
        lo, hi = sorted((a, b))
        if lo == hi:
            expected = {lo}
        elif lo in brute_ancestors(dag, hi):
            expected = {k for k in range(n) if lo in brute_ancestors(dag, k) and k in brute_ancestors(dag, hi)} | {lo, hi}
        else:
            expected = None
        if expected is None:
            with pytest.raises(NotFound):
                graph.chain(js[a], js[b])
        else:
            assert {j.number - 1 for j in graph.chain(js[a], js[b])} == expected
