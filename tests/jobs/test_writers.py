"""The job types' own writers (micrographs, datasets, exported stack copies) publish complete files only."""

from __future__ import annotations

import os

import mrcfile
import numpy as np
import pytest
from mounts import small_tmpfs

from cryodesk.jobs import particles_io
from cryodesk.jobs.preprocess_common import dataset_from_columns, write_dataset, write_mrc


def _dataset(n):
    return dataset_from_columns({"uid": np.arange(1, n + 1, dtype=np.uint64), "ctf/df1_A": np.ones(n)})


WRITERS = {
    "write_mrc": lambda p, big: write_mrc(p, np.ones((512, 512) if big else (8, 8), np.float32), 1.0),
    "write_dataset": lambda p, big: write_dataset(p, _dataset(100_000 if big else 3)),
}


@pytest.mark.parametrize("name", list(WRITERS))
def test_full_disk_leaves_the_old_file(tmp_path, name):
    with small_tmpfs(tmp_path, "1m") as disk:
        target = disk / "out"
        WRITERS[name](target, False)
        old = target.read_bytes()
        with pytest.raises(OSError):
            WRITERS[name](target, True)
        assert target.read_bytes() == old
        assert os.listdir(disk) == ["out"]


def test_export_copy_on_a_full_disk(tmp_path):
    src = tmp_path / "stack.mrcs"
    src.write_bytes(b"\1" * (2 << 20))
    with small_tmpfs(tmp_path, "1m") as disk:
        (disk / "stack.mrcs").write_bytes(b"old")
        with pytest.raises(OSError):
            particles_io._copy(src, disk / "stack.mrcs")
        assert (disk / "stack.mrcs").read_bytes() == b"old"
        assert os.listdir(disk) == ["stack.mrcs"]
    particles_io._copy(src, tmp_path / "copy.mrcs")
    assert (tmp_path / "copy.mrcs").read_bytes() == src.read_bytes()


def test_write_mrc_is_complete_and_bit_identical(tmp_path):
    data = np.arange(12, dtype=np.float32).reshape(3, 4)
    a, b = write_mrc(tmp_path / "a.mrc", data, 1.5), write_mrc(tmp_path / "b.mrc", data, 1.5)
    assert a.read_bytes() == b.read_bytes()  # re-runs write the same bytes
    with mrcfile.open(a) as m:
        np.testing.assert_array_equal(m.data, data)
        assert m.voxel_size.x == pytest.approx(1.5)
    assert sorted(os.listdir(tmp_path)) == ["a.mrc", "b.mrc"]
