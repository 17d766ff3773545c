"""Small runnable job types for the cleanup tests (the t_* types of tests/core/conftest.py,
copied as c_* so the two sets never replace each other in the shared registry, plus one per
preprocessing category).  Imported by conftest.py and by the crash-test child process."""

from __future__ import annotations

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
    JobType("c_source", "Test source", "import", params=(Param("nbytes", 1000, "int"),),
            outputs=(OutputGroup("particles", "particle"),), run=_run_source),
    _step_type("c_motion", "motion_correction"),
    _step_type("c_ctf", "ctf_estimation"),
    _step_type("c_pick", "particle_picking"),
    _step_type("c_extract", "extraction"),
    JobType("c_step", "Test step", "utilities", params=(Param("nbytes", 500, "int"), Param("flag", False, "bool")),
            inputs=(InputSlot("particles", "particle", multiple=True),),
            outputs=(OutputGroup("particles", "particle"),), run=_run_step),
    JobType("c_iter", "Test iterative", "classification", params=(Param("iterations", 3, "int"),),
            inputs=(InputSlot("particles", "particle", required=False, multiple=True),),
            outputs=(OutputGroup("classes", "particle", iterative=True),), run=_run_iter,
            keep_partial_on_cancel=True),
]
for _t in TEST_TYPES:
    registry.register(_t)
