"""The in-memory graph index answers exactly what the recursive SQL answers, across connections.

Random DAGs, then random mutations (create with inputs, connect, delete,
link into a second workspace), half of them made through a *second*
database object on the same database — another connection with its own
index, as another process would be — and after each mutation every query of
the first connection is compared with the SQL reference.  On SQLite and,
with ``CRYODESK_TEST_PG_URL``, on PostgreSQL.  And a crafted database with a
job that is its own input (and a two-job cycle) must not make any query loop.
"""

from __future__ import annotations

import random
from contextlib import contextmanager

import pytest
from throwaway import PG_URL, empty_database

from cryodesk import db as dbmod
from cryodesk.base.errors import NotFound
from cryodesk.core import actions, graph, graph_index, jobs, projects
from cryodesk.db.models import Job, Workspace

BACKENDS = ["sqlite", pytest.param("pg", marks=pytest.mark.skipif(not PG_URL, reason="set CRYODESK_TEST_PG_URL"))]


@pytest.fixture(params=BACKENDS)
def two(request, tmp_path, monkeypatch):
    """``(project, other)``: P1 in database A (bound), and a second database object on the same database."""
    url = PG_URL if request.param == "pg" else str(tmp_path / "g.sqlite")
    empty_database(url) if request.param == "pg" else dbmod.open_database(url)
    a = dbmod.db.obj
    b = dbmod.make_database(url)
    monkeypatch.setattr(graph_index, "SQL_FIRST", False)  # the index from the first query on
    with a.connection_context():
        p = projects.create_project("G", tmp_path / "proj")
        projects.create_workspace(p, "main")
        projects.create_workspace(p, "branch")
        yield p, b
    b.close()
    dbmod.close_database()


@contextmanager
def via(database):
    previous = dbmod.db.obj
    dbmod.db.initialize(database)
    try:
        with database.connection_context():
            yield
    finally:
        dbmod.db.initialize(previous)


def sql_ancestors(j, ws=None):
    return graph._closure_ids_sql([j.id], True, ws) - {j.id}


def sql_descendants(j, ws=None):
    return graph._closure_ids_sql([j.id], False, ws) - {j.id}


def sql_chain(a, b, ws=None):
    graph_index.enabled = False
    try:
        return graph.chain_ids(a, b, ws)
    except NotFound:
        return None
    finally:
        graph_index.enabled = True


def index_chain(a, b, ws=None):
    try:
        return graph.chain_ids(a, b, ws)
    except NotFound:
        return None


def check_all(project, rng):
    all_jobs = list(Job.select().where(Job.project == project).order_by(Job.number))
    scopes = [None, *Workspace.select().where(Workspace.project == project)]
    for ws in scopes:
        for j in all_jobs:
            assert graph.ancestor_ids([j], ws) == sql_ancestors(j, ws), (j.uid, ws)
            assert graph.descendant_ids([j], ws) == sql_descendants(j, ws), (j.uid, ws)
        for _ in range(6):
            a, b = rng.choice(all_jobs), rng.choice(all_jobs)
            assert index_chain(a, b, ws) == sql_chain(a, b, ws), (a.uid, b.uid, ws)
    for _ in range(6):
        a, b = rng.choice(all_jobs), rng.choice(all_jobs)
        assert graph.would_create_cycle(a, b) == (a.id == b.id or b.id in sql_descendants(a))


def mutate(project, rng, step: int) -> None:
    existing = list(Job.select().where(Job.project == project).order_by(Job.number))
    what = rng.choice(["create", "create", "connect", "delete", "link"]) if existing else "create"
    if what == "create" or (what == "connect" and not any(j.status == "building" for j in existing)):
        parents = rng.sample(existing, k=min(len(existing), rng.choice((0, 1, 1, 2))))
        ws = rng.choice(["W1", "W2"])
        if parents:
            jobs.create_job(project, "t_step", ws, [jobs.InputSpec("particles", p.uid) for p in parents])
        else:
            jobs.create_job(project, "t_source", ws)
    elif what == "connect":
        child = rng.choice([j for j in existing if j.status == "building"])
        parent = rng.choice(existing)
        if child.type == "t_step" and not graph.would_create_cycle(child, parent):
            jobs.connect(project, child, jobs.InputSpec("particles", parent.uid))
    elif what == "delete":
        leaves = [j for j in existing if not graph.children(j)]
        actions.delete_jobs(project, [rng.choice(leaves)])
    else:
        actions.link(project, [rng.choice(existing)], "W2")


@pytest.mark.parametrize("seed,arrays", [(1, False), (2, True)])
def test_index_equals_sql_after_random_mutations_from_two_connections(two, seed, arrays, monkeypatch):
    project, other = two
    monkeypatch.setattr(graph_index, "ARRAY_EDGES", 0 if arrays else 10**9)
    rng = random.Random(seed)
    for _ in range(6):
        mutate(project, rng, 0)
    check_all(project, rng)  # the index of connection A is built now
    for step in range(10):
        if step % 2:
            with via(other):  # another connection: A's index must notice at its next query
                mutate(projects.get_project(project.uid), rng, step)
                check_all(project, rng)  # B's own index too
        else:
            mutate(project, rng, step)
        check_all(project, rng)


def test_inside_a_transaction_uncommitted_edges_are_answered_by_sql_and_never_cached(two):
    project, _ = two
    a = jobs.create_job(project, "t_source", "W1")
    b = jobs.create_job(project, "t_step", "W1", [jobs.InputSpec("particles", a.uid)])
    assert graph.descendant_ids([a]) == {b.id}  # index built

    class Rollback(Exception):
        pass

    idx = graph_index._index(project.id)
    before = (idx.cursor, dict(idx.down))
    with pytest.raises(Rollback):
        with dbmod.db.atomic():
            c = jobs.create_job(project, "t_step", "W1", [jobs.InputSpec("particles", b.uid)])
            assert graph.descendant_ids([a]) == {b.id, c.id}  # sees its own write
            assert (idx.cursor, idx.down) == before  # answered by SQL: the index is untouched
            raise Rollback
    assert graph.descendant_ids([a]) == {b.id}
    assert graph.descendant_ids([a]) == sql_descendants(a)


@pytest.mark.parametrize("arrays", [False, True], ids=["sets", "arrays"])
def test_a_job_that_is_its_own_input_never_loops(two, monkeypatch, arrays):
    """Issue 20 item 11: a crafted database (a self-input, a two-job cycle) must not hang any query."""
    project, _ = two
    a = jobs.create_job(project, "t_source", "W1")
    b = jobs.create_job(project, "t_step", "W1", [jobs.InputSpec("particles", a.uid)])
    c = jobs.create_job(project, "t_step", "W1", [jobs.InputSpec("particles", b.uid)])
    database = dbmod.db.obj
    mark = database.param
    for child, parent in ((b, b), (b, c)):  # b reads itself, and b <-> c
        database.execute_sql(f"INSERT INTO connection (project_id, child_id, slot, parent_id, output, position) "
                             f"VALUES ({mark}, {mark}, 'particles', {mark}, 'particles', 9)",
                             [project.id, child.id, parent.id])
    graph_index.clear()  # crafted behind the app's back: nothing announced it
    monkeypatch.setattr(graph_index, "ARRAY_EDGES", 0 if arrays else 10**9)  # the compiled walk, or Python's
    ws = projects.get_workspace(project, "W1")
    for scope in (None, ws):
        assert graph.ancestor_ids([b], scope) == {a.id, c.id} == sql_ancestors(b, scope)
        assert graph.descendant_ids([b], scope) == {c.id} == sql_descendants(b, scope)
        assert graph._closure_ids([b.id], True, scope) == {a.id, b.id, c.id}  # b is on a cycle
        assert graph.descendant_ids([a], scope) == {b.id, c.id}
        assert index_chain(a, c, scope) == sql_chain(a, c, scope) == {a.id, b.id, c.id}
        assert index_chain(b, c, scope) == sql_chain(b, c, scope)
    assert graph.would_create_cycle(a, c) and graph.would_create_cycle(b, b)
    assert [j.uid for j in graph.ancestors(c)] == ["J1", "J2"]


def test_a_one_shot_process_asks_sql_first_and_builds_the_index_at_the_second_query(two, monkeypatch):
    project, _ = two
    monkeypatch.setattr(graph_index, "SQL_FIRST", True)
    a = jobs.create_job(project, "t_source", "W1")
    b = jobs.create_job(project, "t_step", "W1", [jobs.InputSpec("particles", a.uid)])
    idx = graph_index._index(project.id)
    assert graph.descendant_ids([a]) == {b.id} and idx.cursor < 0  # SQL
    assert graph.descendant_ids([a]) == {b.id} and idx.cursor >= 0  # built
