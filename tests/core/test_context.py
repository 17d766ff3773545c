from __future__ import annotations

import logging

import pytest

from cryodesk.base.errors import DataError
from cryodesk.core.context import JobContext


def make_ctx(tmp_path):
    pdir = tmp_path / "proj"
    jdir = pdir / "J4"
    jdir.mkdir(parents=True)
    return JobContext("P1", "J4", "t", pdir, jdir, {}, {}, logging.getLogger("t"))


def test_symlinked_outputs_are_recorded_as_files_of_the_job(tmp_path):
    ctx = make_ctx(tmp_path)
    raw = tmp_path / "raw.mrc"
    raw.write_bytes(b"1234")
    (ctx.job_dir / "imported").mkdir()
    (ctx.job_dir / "imported" / "raw.mrc").symlink_to(raw)
    ctx.add_output("particles", ctx.job_dir / "imported" / "raw.mrc", kind="blob")
    group, ref = ctx.outputs[0]
    link = ctx.job_dir / "imported" / "raw.mrc"
    # the link itself, as du -sb counts it (its path's length): never the raw data it points to
    assert ref.path == "J4/imported/raw.mrc" and ref.size_bytes == link.lstat().st_size == len(str(raw))
    (ctx.job_dir / "out.cs").write_bytes(b"12")
    ctx.add_output("particles", "out.cs")
    assert ctx.outputs[1][1].path == "J4/out.cs" and ctx.outputs[1][1].size_bytes == 2


def test_outputs_outside_the_job_directory_are_refused(tmp_path):
    ctx = make_ctx(tmp_path)
    with pytest.raises(DataError, match="outside the job directory"):
        ctx.add_output("x", tmp_path / "elsewhere.bin")
    with pytest.raises(DataError, match="outside the job directory"):
        ctx.add_output("x", "../J5/file")
