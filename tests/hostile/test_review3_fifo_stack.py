"""Review 3: a FIFO (or socket, device, directory) where a particle stack should be.

Before the fix ``read_header`` opened it with ``open()``, which blocks on a FIFO until a writer
comes — in C, where neither Ctrl-C nor a job's cancel reaches it: a job caching particles (its
stacks' headers are checked first) or reading them hung for ever.  Now it is opened without
waiting and refused: a DataError naming the file and what it is.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _run(code: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}"}
    try:
        return subprocess.run([sys.executable, "-c", textwrap.dedent(code), str(tmp_path)], env=env,
                              capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("reading a FIFO in place of a particle stack hung")


@pytest.mark.parametrize("kind", ["fifo", "dir"])
def test_read_header_refuses_what_is_not_a_regular_file_without_waiting(tmp_path, kind):
    p = tmp_path / "s.mrc"
    os.mkfifo(p) if kind == "fifo" else p.mkdir()
    run = _run("""
        import sys
        from cryodesk.base.errors import DataError
        from cryodesk.io.mrc import read_header
        try:
            read_header(sys.argv[1] + "/s.mrc")
        except DataError as exc:
            print("REFUSED", exc)
    """, tmp_path)
    assert run.returncode == 0, run.stderr
    assert "REFUSED" in run.stdout and str(p) in run.stdout and "not a regular file" in run.stdout, run.stdout


def test_a_job_caching_particles_of_a_fifo_stack_gets_a_clear_error(tmp_path):
    run = _run("""
        import sys, os
        from pathlib import Path
        import numpy as np
        from cryodesk.base.errors import DataError
        from cryodesk.cache.config import CacheConfig
        from cryodesk.cache.staging import stage
        from cryodesk.io.cs import ParticleSet, from_columns
        from cryodesk.io.mrc import make_header
        d = Path(sys.argv[1])
        good = d / "s0.mrc"
        good.write_bytes(make_header(16, 16, 4, 2, 1.5) + bytes(4 * 16 * 16 * 4))
        fifo = d / "s1.mrc"
        os.mkfifo(fifo)
        (d / "ssd").mkdir()
        ps = ParticleSet(from_columns({"blob/path": np.array([str(good), str(fifo)]),
                                       "blob/idx": np.array([0, 1], dtype=np.uint32)}), d / "x.cs", Path("/"))
        try:
            with stage(None, ps, config=CacheConfig(ssd_path=d / "ssd", reserve_bytes=0), cache_on=True,
                       subset=False):
                pass
        except DataError as exc:
            print("REFUSED", exc)
    """, tmp_path)
    assert run.returncode == 0, run.stderr
    assert "REFUSED" in run.stdout and str(tmp_path / "s1.mrc") in run.stdout, run.stdout


def test_staging_plain_files_refuses_a_fifo_without_waiting(tmp_path):
    """Plain files (no particle set: no header check first): the copy's open() waited on the FIFO."""
    run = _run("""
        import sys, os
        from pathlib import Path
        from cryodesk.base.errors import DataError
        from cryodesk.cache.config import CacheConfig
        from cryodesk.cache.staging import stage
        d = Path(sys.argv[1])
        (d / "a.bin").write_bytes(b"x" * 100)
        os.mkfifo(d / "b.bin")
        (d / "ssd").mkdir()
        try:
            with stage(None, [d / "a.bin", d / "b.bin"], config=CacheConfig(ssd_path=d / "ssd", reserve_bytes=0),
                       cache_on=True, subset=False):
                pass
        except DataError as exc:
            print("REFUSED", exc)
    """, tmp_path)
    assert run.returncode == 0, run.stderr
    assert "REFUSED" in run.stdout and str(tmp_path / "b.bin") in run.stdout, run.stdout
    assert "not a regular file" in run.stdout
