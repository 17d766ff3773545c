"""Every file-format writer: a failure midway (a full disk, an exception) leaves the old file intact
and no temp file behind."""

from __future__ import annotations

import os

import numpy as np
import pytest
from mounts import small_tmpfs

from cryodesk.base.errors import DataError
from cryodesk.io import cs, csg, gather, mrc, star


def _dataset(n: int) -> np.ndarray:
    return cs.from_columns({"blob/path": ["J1/a.mrc"] * n, "ctf/df1_A": np.linspace(1e4, 2e4, n)}, n)


def _stream(path, n_images):
    with mrc.StackWriter(path, (64, 64)) as w:
        for _ in range(n_images):
            w.append(np.ones((64, 64), np.float32))


#: name -> write(path, big): ``big`` does not fit on a 1 MiB disk
WRITERS = {
    "write_cs": lambda p, big: cs.write_cs(p, _dataset(100_000 if big else 3)),
    "write_star": lambda p, big: star.write_star(
        p, {"particles": star.StarBlock("particles", {"rlnDefocusU": np.arange(200_000 if big else 3) * 1.5})}),
    "write_csg": lambda p, big: csg.write_csg(
        p, csg.CsgGroup("g", "particle", description="x" * (2 << 20 if big else 10))),
    "write_stack": lambda p, big: mrc.write_stack(p, np.ones((80 if big else 1, 64, 64), np.float32)),
    "StackWriter": lambda p, big: _stream(p, 80 if big else 1),
}


@pytest.fixture
def disk(tmp_path):
    with small_tmpfs(tmp_path, "1m") as d:
        yield d


@pytest.mark.parametrize("name", list(WRITERS))
def test_full_disk_leaves_the_old_file(disk, name):
    target = disk / "out"
    WRITERS[name](target, False)
    old = target.read_bytes()
    with pytest.raises((OSError, DataError)) as err:
        WRITERS[name](target, True)
    if isinstance(err.value, DataError):  # the stack writers say what happened, naming the file
        assert str(err.value).startswith(f"{target}: cannot write the stack (No space left on device)")
    assert target.read_bytes() == old
    assert os.listdir(disk) == ["out"]


def test_stack_writer_exception_keeps_the_old_stack(tmp_path):
    path = tmp_path / "s.mrcs"
    mrc.write_stack(path, np.zeros((2, 8, 6), np.float32))
    old = path.read_bytes()
    with pytest.raises(RuntimeError), mrc.StackWriter(path, (8, 6)) as w:
        w.append(np.ones((3, 8, 6), np.float32))
        raise RuntimeError("boom")
    w = mrc.StackWriter(path, (8, 6))
    w.append(np.ones((1, 8, 6), np.float32))
    del w  # abandoned without close: nothing is published, the temp file goes
    assert path.read_bytes() == old and os.listdir(tmp_path) == ["s.mrcs"]


def test_write_cs_failing_midway_keeps_the_old_file(tmp_path, monkeypatch):
    path = cs.write_cs(tmp_path / "p.cs", _dataset(4))
    old = path.read_bytes()

    def half_save(fh, arr, allow_pickle=False):
        fh.write(b"\x93NUMPY half of a file")
        raise MemoryError("no more memory")

    monkeypatch.setattr(np, "save", half_save)
    with pytest.raises(MemoryError):
        cs.write_cs(path, _dataset(5))
    assert path.read_bytes() == old and os.listdir(tmp_path) == ["p.cs"]


def test_gather_failure_keeps_old_outputs_and_publishes_none(tmp_path):
    src = mrc.write_stack(tmp_path / "src.mrc", np.arange(6 * 16, dtype=np.float32).reshape(6, 4, 4)).path
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "batch_000.mrc").write_bytes(b"an earlier run's output")
    plan = gather.plan_gather([(src, i) for i in range(6)], out_dir, particles_per_file=2, batch_bytes=64)
    calls = []

    def cancel_late():
        calls.append(1)
        if len(calls) > 3:  # the first output is complete by now
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        gather.execute_plan(plan, check_cancel=cancel_late)
    assert sorted(os.listdir(out_dir)) == ["batch_000.mrc"]
    assert (out_dir / "batch_000.mrc").read_bytes() == b"an earlier run's output"
    done = gather.execute_plan(plan)
    assert [p.name for p in done] == ["batch_000.mrc", "batch_001.mrc", "batch_002.mrc"]
    assert sorted(os.listdir(out_dir)) == [p.name for p in done]
    np.testing.assert_array_equal(mrc.read_images(done[1]), mrc.read_images(src, [2, 3]))
