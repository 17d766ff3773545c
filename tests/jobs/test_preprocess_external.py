"""The ``external`` job: placeholders, log capture, outputs, failure and cancel."""

from __future__ import annotations

import logging
import sys
import threading
import time

import numpy as np
import pytest

from cryodesk.base.errors import CryodeskError, JobCancelled, UsageError
from cryodesk.core.context import JobContext
from cryodesk.demo.pipeline import run_inline
from cryodesk.io.cs import from_columns, write_cs

SCRIPT = """
import sys, pathlib, shutil
src, job = sys.argv[1], pathlib.Path(sys.argv[2])
print("copying", src, flush=True)
(job / "outputs" / "output").mkdir(parents=True, exist_ok=True)
shutil.copy(src, job / "outputs" / "output" / "copy.cs")
(job / "outputs" / "extra").mkdir(exist_ok=True)
(job / "outputs" / "extra" / "notes.txt").write_text("hi")
"""


@pytest.fixture
def parent(tmp_path):
    """A finished stand-in parent job with a particles dataset."""
    (tmp_path / "J1").mkdir()
    write_cs(tmp_path / "J1" / "particles.cs", from_columns({"uid": np.arange(1, 4, dtype=np.uint64)}))
    ctx = JobContext("P0", "J1", "import_particles", tmp_path, tmp_path / "J1", {}, {},
                     logging.getLogger("test.parent"))
    ctx.add_output("particles", tmp_path / "J1" / "particles.cs")
    return ctx


def test_placeholders_log_and_outputs(tmp_path, parent, caplog):
    script = tmp_path / "my script.py"  # a space: stays one argument
    script.write_text(SCRIPT)
    cmd = f"{sys.executable} '{script}' {{input:particles}} {{job_dir}}"
    with caplog.at_level("INFO"):
        ctx = run_inline(tmp_path, "J2", "external", {"command": cmd}, {"particles": (parent, "particles")})
    assert any("copying" in r.getMessage() and "J1/particles.cs" in r.getMessage() for r in caplog.records)
    got = {(g, r.path, r.kind) for g, r in ctx.outputs}
    assert got == {("output", "J2/outputs/output/copy.cs", "dataset"), ("extra", "J2/outputs/extra/notes.txt", "file")}
    assert len(np.load(tmp_path / "J2" / "outputs" / "output" / "copy.cs")) == 3


def test_shell_mode_and_errors(tmp_path):
    ctx = run_inline(tmp_path, "J3", "external",
                     {"command": "echo {project_dir} > outputs/output/where.txt", "use_shell": True})
    assert (tmp_path / "J3" / "outputs" / "output" / "where.txt").read_text().strip() == str(tmp_path)
    assert ctx.results["n_output_files"] == 1
    with pytest.raises(CryodeskError, match="status 3"):
        run_inline(tmp_path, "J4", "external", {"command": f"{sys.executable} -c 'import sys; sys.exit(3)'"})
    with pytest.raises(UsageError, match="not connected"):
        run_inline(tmp_path, "J5", "external", {"command": "cat {input:particles}"})
    with pytest.raises(UsageError, match="unknown placeholder"):
        run_inline(tmp_path, "J6", "external", {"command": "echo {nope}"})


def test_cancel_terminates_the_command(tmp_path):
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    t0 = time.monotonic()
    with pytest.raises(JobCancelled):
        run_inline(tmp_path, "J7", "external", {"command": f"{sys.executable} -c 'import time; time.sleep(60)'"},
                   cancel_event=stop)
    assert time.monotonic() - t0 < 10


def test_the_command_gets_its_own_blas_default_not_cryodesks(tmp_path, monkeypatch):
    """cryodesk runs OpenBLAS on one thread (configure(), marked as ours); the user's command must not inherit it."""
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setenv("CRYODESK_OPENBLAS_DEFAULT", "1")
    cmd = "printenv OPENBLAS_NUM_THREADS > outputs/output/blas.txt || echo unset > outputs/output/blas.txt"
    run_inline(tmp_path, "J8", "external", {"command": cmd, "use_shell": True})
    assert (tmp_path / "J8" / "outputs" / "output" / "blas.txt").read_text().strip() == "unset"
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "6")  # the user's own: kept
    run_inline(tmp_path, "J9", "external", {"command": cmd, "use_shell": True})
    assert (tmp_path / "J9" / "outputs" / "output" / "blas.txt").read_text().strip() == "6"
