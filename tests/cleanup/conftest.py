"""Fixtures for the cleanup tests: the small runnable test job types (copied from tests/core) plus
one per preprocessing category, a fresh database and project, and random-project builders."""

from __future__ import annotations

import itertools

import pytest

from cryodesk.core import registry
from cryodesk.core.registry import InputSlot, JobType, OutputGroup, Param


def _run_source(ctx):
    out = ctx.job_dir / "data.bin"
    out.write_bytes(b"x" * int(ctx.params["nbytes"]))
    ctx.add_output("particles", out, kind="blob")


def _run_step(ctx):
    src = ctx.inputs["particles"][0].path("blob")
    out = ctx.job_dir / "step.bin"
    out.write_bytes(src.read_bytes()[: int(ctx.params["nbytes"])] or b"y")
    (ctx.job_dir / "sub").mkdir(exist_ok=True)
    (ctx.job_dir / "sub" / "extra.bin").write_bytes(b"e" * 77)
    ctx.add_output("particles", out, kind="blob")


def _run_iter(ctx):
    for it in range(int(ctx.params["iterations"])):
        ctx.check_cancel()
        out = ctx.job_dir / f"iter_{it:03d}.bin"
        out.write_bytes(b"z" * (100 + it))
        ctx.add_output("classes", out, kind="blob", version=it)
        ctx.progress((it + 1) / int(ctx.params["iterations"]), f"iteration {it}")


def _step_type(name, category):
    return JobType(name, f"Test {category}", category,
                   params=(Param("nbytes", 500, "int"), Param("label", "", "str")),
                   inputs=(InputSlot("particles", "particle", multiple=True),),
                   outputs=(OutputGroup("particles", "particle"),), run=_run_step)


TEST_TYPES = [
    JobType("t_source", "Test source", "import", params=(Param("nbytes", 1000, "int"),),
            outputs=(OutputGroup("particles", "particle"),), run=_run_source),
    _step_type("t_motion", "motion_correction"),
    _step_type("t_ctf", "ctf_estimation"),
    _step_type("t_pick", "particle_picking"),
    _step_type("t_extract", "extraction"),
    JobType("t_step", "Test step", "utilities", params=(Param("nbytes", 500, "int"), Param("flag", False, "bool")),
            inputs=(InputSlot("particles", "particle", multiple=True),),
            outputs=(OutputGroup("particles", "particle"),), run=_run_step),
    JobType("t_iter", "Test iterative", "classification", params=(Param("iterations", 3, "int"),),
            inputs=(InputSlot("particles", "particle", required=False, multiple=True),),
            outputs=(OutputGroup("classes", "particle", iterative=True),), run=_run_iter,
            keep_partial_on_cancel=True),
]
for _t in TEST_TYPES:
    registry.register(_t)

_counter = itertools.count()


@pytest.fixture
def database(tmp_path):
    """A fresh SQLite database bound to the models for this test."""
    from cryodesk import db as dbmod

    database = dbmod.open_database(str(tmp_path / f"db{next(_counter)}.sqlite"))
    with dbmod.db.connection_context():
        yield database
    dbmod.close_database()


@pytest.fixture
def project(database, tmp_path):
    from cryodesk.core import projects

    p = projects.create_project("Cleanup test", tmp_path / "proj")
    projects.create_workspace(p, "main")
    return p
