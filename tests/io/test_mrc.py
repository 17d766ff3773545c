"""MRC stacks: header validation, reading, atomic and streaming writing."""

from __future__ import annotations

import os

import mrcfile
import numpy as np
import pytest

from cryodesk.base.errors import DataError
from cryodesk.io import mrc


def _stack(n=4, shape=(8, 6), dtype="float32", seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, *shape)) * 50).astype(dtype)


@pytest.mark.parametrize("dtype,mode", [("int8", 0), ("int16", 1), ("float32", 2), ("uint16", 6),
                                        ("float16", 12)])
def test_write_read_modes(tmp_path, dtype, mode):
    data = _stack(dtype=dtype)
    info = mrc.write_stack(tmp_path / "s.mrc", data, voxel_size=1.5)
    assert (info.mode, info.nx, info.ny, info.nz) == (mode, 6, 8, 4)
    assert info.voxel_size == pytest.approx(1.5)
    assert info.image_bytes == 6 * 8 * np.dtype(dtype).itemsize
    np.testing.assert_array_equal(mrc.read_images(info.path), data)
    np.testing.assert_array_equal(mrc.read_image(info.path, 2), data[2])
    np.testing.assert_array_equal(mrc.read_images(info.path, [3, 0, 3]), data[[3, 0, 3]])
    # offsets let other code pread raw bytes
    with open(info.path, "rb") as fh:
        raw = os.pread(fh.fileno(), info.image_bytes, info.offset(1))
    np.testing.assert_array_equal(np.frombuffer(raw, info.dtype).reshape(8, 6), data[1])
    assert [p.name for p in tmp_path.iterdir()] == ["s.mrc"]


def test_extended_header_offset(tmp_path):
    data = _stack()
    path = tmp_path / "ext.mrc"
    with mrcfile.new(str(path)) as m:
        m.set_extended_header(np.zeros(100, dtype="u1"))
        m.set_data(data)
        m.set_image_stack()
    info = mrc.read_header(path)
    assert info.data_offset == 1024 + 100
    np.testing.assert_array_equal(mrc.read_images(path), data)


def test_big_endian_stack(tmp_path):
    data = _stack()
    path = tmp_path / "be.mrc"
    with mrcfile.new(str(path)) as m:
        m.set_data(data.astype(">f4"))
    info = mrc.read_header(path)
    assert info.dtype == np.dtype(">f4")
    out = mrc.read_images(path)
    assert out.dtype.isnative
    np.testing.assert_array_equal(out, data)


def test_real_stacks(realdata_dir):
    info = mrc.read_header(realdata_dir / "empiar_10076_7.mrc")
    assert (info.nz, info.ny, info.nx, info.mode) == (7, 320, 320, 2)
    # relion31.mrcs has no map ID and no machine stamp: still readable
    info = mrc.read_header(realdata_dir / "relion31.mrcs")
    assert (info.nz, info.ny, info.nx) == (5, 256, 256)
    with pytest.warns(RuntimeWarning), mrcfile.open(realdata_dir / "relion31.mrcs", permissive=True) as m:
        np.testing.assert_array_equal(mrc.read_images(info.path), m.data)
    with mrc.open_stack(realdata_dir / "empiar_10076_7.mrc") as m:
        assert m.data.shape == (7, 320, 320)


def test_stack_writer_streams_and_finalises(tmp_path):
    data = _stack(n=7)
    path = tmp_path / "out.mrcs"
    with mrc.StackWriter(path, (8, 6), "float32", voxel_size=2.0) as w:
        assert not path.exists()  # only a hidden temp name while writing
        w.append(data[:3])
        w.append(data[3])
        w.append(data[4:])
    info = mrc.read_header(path)
    assert info.nz == 7 and info.voxel_size == pytest.approx(2.0)
    np.testing.assert_array_equal(mrc.read_images(path), data)
    with mrcfile.open(path) as m:
        h = m.header
        assert float(h.dmin) == pytest.approx(data.min())
        assert float(h.dmax) == pytest.approx(data.max())
        assert float(h.dmean) == pytest.approx(data.mean(dtype=np.float64), rel=1e-5)
        assert float(h.rms) == pytest.approx(data.std(dtype=np.float64), rel=1e-5)
    assert mrcfile.validate(str(path), print_file=open(os.devnull, "w"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mrcs"]


def test_stack_writer_failure_leaves_nothing(tmp_path):
    path = tmp_path / "out.mrcs"
    with pytest.raises(RuntimeError):
        with mrc.StackWriter(path, (8, 6)) as w:
            w.append(_stack(n=2))
            raise RuntimeError("boom")
    with pytest.raises(DataError, match="expected images of shape"):
        with mrc.StackWriter(path, (8, 6)) as w:
            w.append(np.zeros((2, 5, 5), np.float32))
    assert list(tmp_path.iterdir()) == []


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match=r"nothere\.mrc: particle stack not found"):
        mrc.read_header(tmp_path / "nothere.mrc")


def test_truncated_stack(tmp_path):
    path = tmp_path / "t.mrc"
    mrc.write_stack(path, _stack(n=5))
    with open(path, "r+b") as fh:
        fh.truncate(1024 + 2 * 8 * 6 * 4 + 10)
    with pytest.raises(DataError, match=r"t\.mrc: truncated particle stack.*index 2 on are incomplete"):
        mrc.read_header(path)


def _patched(path, offset: int, data: bytes):
    """A written stack with ``data`` overwriting its bytes at ``offset``."""
    mrc.write_stack(path, _stack())
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)
    return path


def test_corrupt_header(tmp_path):
    path = _patched(tmp_path / "c.mrc", 12, b"\x4d\x00\x00\x4d")  # mode 77 in both byte orders is nonsense
    with pytest.raises(DataError, match=r"c\.mrc: corrupt MRC header or unsupported mode"):
        mrc.read_header(path)
    short = tmp_path / "short.mrc"
    short.write_bytes(b"MRC" * 10)
    with pytest.raises(DataError, match=r"short\.mrc: not an MRC file or corrupt header"):
        mrc.read_header(short)


def test_negative_dimensions(tmp_path):
    path = _patched(tmp_path / "neg.mrc", 4, np.int32(-8).tobytes())
    with pytest.raises(DataError, match=r"neg\.mrc: corrupt MRC header \(dimensions"):
        mrc.read_header(path)


def test_index_out_of_range(tmp_path):
    path = tmp_path / "s.mrc"
    info = mrc.write_stack(path, _stack(n=3))
    with pytest.raises(DataError, match=r"s\.mrc: particle index 3 is out of range \(the stack has 3"):
        mrc.read_images(path, [0, 3])
    with pytest.raises(DataError, match="particle index -1"):
        info.offset(-1)


def test_unsupported_dtype(tmp_path):
    with pytest.raises(DataError, match="cannot store complex64"):
        mrc.write_stack(tmp_path / "x.mrc", np.zeros((1, 4, 4), np.complex64))
    assert list(tmp_path.iterdir()) == []
