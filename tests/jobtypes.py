"""Small runnable job types shared by the test suites.

Each suite registers its own *family* under its own prefix (``t_`` core and
engine, ``c_`` cleanup, ``ui_`` GUI), so one suite's types never replace
another's in the process-wide registry; the families differ only in the
sizes they write, which some suites' figures depend on.  Importable from
conftests and from the subprocesses that crash tests start (the root
conftest puts this directory on ``sys.path``).
"""

from __future__ import annotations

from cryodesk.core import registry
from cryodesk.core.registry import InputSlot, JobType, OutputGroup, Param

SHORT = {"motion_correction": "motion", "ctf_estimation": "ctf",
         "particle_picking": "pick", "extraction": "extract"}


def _run_source(ctx):
    out = ctx.job_dir / "data.bin"
    out.write_bytes(b"x" * int(ctx.params["nbytes"]))
    ctx.add_output("particles", out, kind="blob")


def _step_runner(fill: str, extra: int):
    def run(ctx):
        src = ctx.inputs["particles"][0].path("blob").read_bytes()
        n = int(ctx.params["nbytes"])
        data = (src[:1] * n) if fill == "repeat" else (src[:n] or b"y")
        out = ctx.job_dir / "step.bin"
        out.write_bytes(data)
        if extra:  # a file outside every output: part of the job's size, not of its outputs
            (ctx.job_dir / "sub").mkdir(exist_ok=True)
            (ctx.job_dir / "sub" / "extra.bin").write_bytes(b"e" * extra)
        ctx.add_output("particles", out, kind="blob")

    return run


def _iter_runner(base: int, growth: int):
    def run(ctx):
        n = int(ctx.params["iterations"])
        for it in range(n):
            ctx.check_cancel()
            out = ctx.job_dir / f"iter_{it:03d}.bin"
            out.write_bytes(b"z" * (base + growth * it))
            ctx.add_output("classes", out, kind="blob", version=it)
            ctx.progress((it + 1) / n, f"iteration {it}")

    return run


def family(prefix: str, *, preprocessing=("motion_correction",), step_fill: str = "slice",
           step_extra: int = 0, iter_bytes: tuple[int, int] = (100, 0), iter_multiple: bool = False,
           register: bool = True) -> list[JobType]:
    """``{prefix}_source``, one step type per preprocessing category, ``{prefix}_step`` and ``{prefix}_iter``.

    ``step_fill``: ``slice`` writes the first ``nbytes`` of the input, ``repeat``
    writes its first byte ``nbytes`` times.  ``iter_bytes = (base, growth)``:
    iteration *k* writes ``base + growth * k`` bytes.
    """
    step = _step_runner(step_fill, step_extra)
    types = [JobType(f"{prefix}_source", "Test source", "import", params=(Param("nbytes", 1000, "int"),),
                     outputs=(OutputGroup("particles", "particle"),), run=_run_source)]
    for category in preprocessing:
        types.append(JobType(f"{prefix}_{SHORT[category]}", f"Test {SHORT[category]}", category,
                             params=(Param("nbytes", 500, "int"), Param("label", "", "str")),
                             inputs=(InputSlot("particles", "particle", multiple=True),),
                             outputs=(OutputGroup("particles", "particle"),), run=step))
    types.append(JobType(f"{prefix}_step", "Test step", "utilities",
                         params=(Param("nbytes", 500, "int"), Param("flag", False, "bool")),
                         inputs=(InputSlot("particles", "particle", multiple=True),),
                         outputs=(OutputGroup("particles", "particle"),), run=step))
    types.append(JobType(f"{prefix}_iter", "Test iterative", "classification",
                         params=(Param("iterations", 3, "int"),),
                         inputs=(InputSlot("particles", "particle", required=False, multiple=iter_multiple),),
                         outputs=(OutputGroup("classes", "particle", iterative=True),),
                         run=_iter_runner(*iter_bytes), keep_partial_on_cancel=True))
    if register:
        for t in types:
            registry.register(t)
    return types
