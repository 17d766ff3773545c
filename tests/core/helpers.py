"""Building blocks for core tests: random DAG projects."""

from __future__ import annotations

import tempfile
from contextlib import contextmanager
from pathlib import Path

from cryodesk import db as dbmod
from cryodesk.core import jobs, projects


@contextmanager
def fresh_project():
    """A throw-away database + project (for hypothesis examples, which cannot use fixtures)."""
    with tempfile.TemporaryDirectory() as tmp:
        dbmod.open_database(str(Path(tmp) / "db.sqlite"))
        try:
            with dbmod.db.connection_context():
                p = projects.create_project("P", Path(tmp) / "proj")
                projects.create_workspace(p, "main")
                yield p
        finally:
            dbmod.close_database()


def build_dag(project, edges_by_child: list[list[int]], workspace="W1"):
    """Create jobs J1..Jn; job i reads from the jobs listed in ``edges_by_child[i]`` (indices < i)."""
    made = []
    for i, parents in enumerate(edges_by_child):
        if parents:
            specs = [jobs.InputSpec("particles", made[p].uid) for p in sorted(set(parents))]
            made.append(jobs.create_job(project, "t_step", workspace, specs))
        else:
            made.append(jobs.create_job(project, "t_source", workspace))
    return made


def brute_ancestors(edges_by_child, i) -> set[int]:
    out, stack = set(), list(edges_by_child[i])
    while stack:
        p = stack.pop()
        if p not in out:
            out.add(p)
            stack.extend(edges_by_child[p])
    return out
