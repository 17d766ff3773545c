"""Hostile tests: the ``h`` family of test job types (database/project fixtures: tests/conftest.py)."""

from __future__ import annotations

import jobtypes

from cryodesk.core import registry
from cryodesk.core.registry import JobType, OutputGroup, Param

TEST_TYPES = jobtypes.family("h", iter_multiple=True)


def _run_nested_iter(ctx):
    """Iterations written into a subdirectory (as class_2d does: J6/class2d/iter_000_*.cs)."""
    sub = ctx.job_dir / "sub"
    sub.mkdir(exist_ok=True)
    for it in range(int(ctx.params["iterations"])):
        out = sub / f"iter_{it:03d}.bin"
        out.write_bytes(b"z" * 100)
        ctx.add_output("classes", out, kind="blob", version=it)


registry.register(JobType("h_nested_iter", "Test nested iterations", "classification",
                          params=(Param("iterations", 3, "int"),),
                          outputs=(OutputGroup("classes", "particle", iterative=True),), run=_run_nested_iter))


# a type with the job-level setting ``cache_particles`` as its parameter (as class_2d has)
registry.register(JobType("h_cached", "Test cached reader", "utilities",
                          params=(Param("cache_particles", None, "bool"), Param("nbytes", 10, "int")),
                          outputs=(OutputGroup("particles", "particle"),), run=jobtypes._run_source))
