"""Runnable test job types for the engine tests (also imported by CLI subprocesses).

``t_source`` / ``t_step`` / ``t_iter`` are the shared ``t`` family of tests/jobtypes.py
(the same types tests/core/conftest.py registers); the ``e_*``
types add what the engine needs: slow iterations, gates a test opens, failures,
a pure-Python CPU burner and an io-pool type.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict

import jobtypes

from cryodesk.base.errors import DataError
from cryodesk.core import registry
from cryodesk.core.registry import InputSlot, JobType, OutputGroup, Param

#: gates a test opens to let an ``e_gate`` job finish (keyed by its ``gate`` param)
GATES: dict[str, threading.Event] = defaultdict(threading.Event)
#: (job uid, "start"|"end", monotonic time) of gate jobs, to check concurrency
EVENTS: list[tuple[str, str, float]] = []


def _sleep(ctx, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ctx.check_cancel()
        time.sleep(0.005)


def _run_slow_iter(ctx):
    n = int(ctx.params["iterations"])
    for it in range(n):
        out = ctx.job_dir / f"iter_{it:03d}.bin"
        out.write_bytes(b"z" * 100)
        ctx.add_output("classes", out, kind="blob", version=it)
        ctx.log.info("iteration %d written", it)
        ctx.progress((it + 1) / n, f"iteration {it}")
        _sleep(ctx, float(ctx.params["delay"]))


def _run_gate(ctx):
    EVENTS.append((ctx.uid, "start", time.monotonic()))
    (ctx.job_dir / "partial.bin").write_bytes(b"p" * 10)
    gate = GATES[ctx.params["gate"]]
    while not gate.wait(0.005):
        ctx.check_cancel()
    out = ctx.job_dir / "out.bin"
    out.write_bytes(b"g" * 10)
    ctx.add_output("particles", out, kind="blob")
    EVENTS.append((ctx.uid, "end", time.monotonic()))


def _run_fail(ctx):
    ctx.log.info("about to fail")
    if ctx.params["mode"] == "data":
        raise DataError("the input stack is corrupt")
    raise ValueError("boom")


def _run_burn(ctx):
    """Pure Python (holds the GIL between switches): the worst case for the GUI thread."""
    seconds = float(ctx.params["seconds"])
    start = time.monotonic()
    x = 0
    while (elapsed := time.monotonic() - start) < seconds:
        for i in range(20000):
            x += i * i
        ctx.check_cancel()
        ctx.progress(elapsed / seconds, "burning")
    (ctx.job_dir / "burn.txt").write_text(str(x))
    ctx.add_output("particles", ctx.job_dir / "burn.txt", kind="blob")


_PARTICLES = (OutputGroup("particles", "particle"),)
_OPT_IN = (InputSlot("particles", "particle", required=False),)
_CLASSES = (OutputGroup("classes", "particle", iterative=True),)
_SLOW = (Param("iterations", 5, "int"), Param("delay", 0.05, "float"))

jobtypes.family("t")
TYPES = [
    JobType("e_iter", "Slow iterative (keeps)", "classification", params=_SLOW, inputs=_OPT_IN,
            outputs=_CLASSES, run=_run_slow_iter, keep_partial_on_cancel=True),
    JobType("e_iter_discard", "Slow iterative (discards)", "classification", params=_SLOW, inputs=_OPT_IN,
            outputs=_CLASSES, run=_run_slow_iter, keep_partial_on_cancel=False),
    JobType("e_gate", "Gate (cpu)", "utilities", params=(Param("gate", "g", "str"),), inputs=_OPT_IN,
            outputs=_PARTICLES, run=_run_gate),
    JobType("e_gate_io", "Gate (io)", "utilities", params=(Param("gate", "g", "str"),), inputs=_OPT_IN,
            outputs=_PARTICLES, run=_run_gate, resource="io"),
    JobType("e_fail", "Failing", "utilities", params=(Param("mode", "data", "str"),), inputs=_OPT_IN,
            outputs=_PARTICLES, run=_run_fail),
    JobType("e_burn", "CPU burner", "utilities", params=(Param("seconds", 1.0, "float"),), inputs=_OPT_IN,
            outputs=_PARTICLES, run=_run_burn),
]
for _t in TYPES:
    registry.register(_t)
