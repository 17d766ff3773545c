"""read_star of a large file maps it instead of reading it (star._read_raw): the same blocks either way."""

from __future__ import annotations

import mmap

import numpy as np
import pytest

from cryodesk.base.errors import DataError
from cryodesk.io import star


def _same(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for name in a:
        assert a[name].pairs == b[name].pairs
        assert list(a[name].columns) == list(b[name].columns)
        for lab in a[name].columns:
            np.testing.assert_array_equal(np.asarray(a[name].columns[lab]), np.asarray(b[name].columns[lab]))


def _both(path, monkeypatch) -> tuple[dict, dict]:
    monkeypatch.setattr(star, "MAP_BYTES", 1 << 60)
    read = star.read_star(path)
    monkeypatch.setattr(star, "MAP_BYTES", 0)
    assert isinstance(star._read_raw(path), star._Mapped) or path.stat().st_size == 0
    return read, star.read_star(path)


def _big_table(rows: int, odd: str = "") -> str:
    lines = ["# version 30001", "", "data_optics", "", "loop_", "_rlnOpticsGroup", "_rlnVoltage", "1 300.0", "",
             "data_particles", "", "loop_", "_rlnImageName #1", "_rlnDefocusU #2", "_rlnOpticsGroup #3"]
    lines += [f"{k + 1:06d}@Extract/job007/stack_{k // 100:05d}.mrcs {15000 + k * 0.25} 1" for k in range(rows)]
    if odd:
        lines.append(odd)
    return "\n".join(lines) + "\n\n# version 30001\n"


@pytest.mark.parametrize("name", ["empiar_10076_7.star", "relion31.star"])
def test_real_files(realdata_dir, monkeypatch, name):
    _same(*_both(realdata_dir / name, monkeypatch))


def test_large_bulk_table(tmp_path, monkeypatch):
    path = tmp_path / "big.star"
    path.write_text(_big_table(60_000))  # > BULK_BYTES: split in bulk
    read, mapped = _both(path, monkeypatch)
    _same(read, mapped)
    assert len(mapped["particles"]) == 60_000 and mapped["particles"].columns["rlnDefocusU"].dtype.kind == "S"


def test_large_table_the_token_parser_reads(tmp_path, monkeypatch):
    path = tmp_path / "quoted.star"
    path.write_text(_big_table(60_000, odd="'000001@a b.mrcs' 1.0 1"))  # a quoted value: token by token
    read, mapped = _both(path, monkeypatch)
    _same(read, mapped)
    assert mapped["particles"].columns["rlnImageName"][-1] == "000001@a b.mrcs"


def test_bad_file_same_error(tmp_path, monkeypatch):
    path = tmp_path / "bad.star"
    path.write_text(_big_table(60_000, odd="000001@x.mrcs 1.0"))  # a row short
    for size in (1 << 60, 0):
        monkeypatch.setattr(star, "MAP_BYTES", size)
        with pytest.raises(DataError, match=r"bad\.star: block data_particles: the loop has 180002 values"):
            star.read_star(path)
    path.write_bytes(_big_table(60_000).encode() + b"\xff\xfe\n")
    with pytest.raises(DataError, match=r"bad\.star: cannot read STAR file .*utf-8"):
        star.read_star(path)


def test_empty_file(tmp_path, monkeypatch):
    monkeypatch.setattr(star, "MAP_BYTES", 0)
    (tmp_path / "empty.star").write_bytes(b"")
    assert star._read_raw(tmp_path / "empty.star") == b""  # (an empty file cannot be mapped)
    with pytest.raises(DataError, match=r"empty\.star: no data_ block"):
        star.read_star(tmp_path / "empty.star")


def test_mapped_count_and_decode(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    raw = bytes(rng.choice(np.frombuffer(b"ab\n", np.uint8), size=(1 << 25) + 12345))
    (tmp_path / "x").write_bytes(raw)
    with open(tmp_path / "x", "rb") as fh:
        m = star._Mapped(fh.fileno(), 0, access=mmap.ACCESS_READ)
    for start, end in [(0, None), (5, len(raw) - 3), ((1 << 24) - 1, (1 << 24) + 1), (100, 50)]:
        assert m.count(b"\n", start, end) == raw.count(b"\n", start, end)
    assert m.count(b"a\nb", 7) == raw.count(b"a\nb", 7)
    assert m.decode("ascii") == raw.decode("ascii")
