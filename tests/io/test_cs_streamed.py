"""``write_cs_replacing`` (unchanged bytes copied in blocks that bridge
replaced fields of the same size, a string column filled a run at a time) writes exactly ``np.save`` of
the dataset built field by field, for any chunk size and any mix of replaced fields."""

from __future__ import annotations

import io

import numpy as np
import pytest

from cryodesk.io import cs


def _dataset(n, rng):
    stacks = np.array([f"J3/extract/{k:020d}_FoilHole_particles.mrc" for k in range(9)], dtype="S")
    run_of = np.sort(rng.integers(0, 9, n))
    cols = {"uid": cs.new_uids(n, rng), "blob/path": stacks[run_of], "blob/idx": rng.integers(0, 50, n),
            "blob/shape": np.full((n, 2), 64), "blob/psize_A": rng.random(n), "blob/sign": np.full(n, -1.0),
            "ctf/type": np.array([b"spline"] * n), "ctf/df1_A": rng.random(n) * 1e4,
            "alignments3D/pose": rng.normal(size=(n, 3)), "alignments3D/psize_A": rng.random(n),
            "extra/u16": rng.integers(0, 9, n).astype(np.uint16)}
    return cs.from_columns(cols, n), run_of


def _reference(data, replace) -> bytes:
    cols = {f: data[f] for f in data.dtype.names}
    for name, spec in replace.items():
        cols[name] = spec[0][spec[1]] if isinstance(spec, tuple) else spec
    buf = io.BytesIO()
    np.save(buf, cs.from_columns(cols, len(data)))
    return buf.getvalue()


@pytest.mark.parametrize("chunk", [1, 7, 64, 1 << 15, None])
def test_streamed_writer_bytes(tmp_path, chunk):
    rng = np.random.default_rng(chunk or 0)
    n = 200 if chunk == 1 else 1000  # (9 runs in 1,000 rows: filled a run at a time)
    data, run_of = _dataset(n, rng)
    names = np.array([f"J1/imported/s{k}.mrc" for k in range(9)])
    shuffled = rng.permutation(run_of)
    cases = [
        # the import's: a long string column in runs, shape and pixel size (same sizes, between kept fields)
        {"blob/path": (names, run_of), "blob/shape": np.full((n, 2), 32, np.uint32),
         "blob/psize_A": rng.random(n).astype(np.float32)},
        # as the import writes it now: the shape a (2,) row per stack, by the same index
        {"blob/path": (names, run_of), "blob/shape": (rng.integers(1, 99, (9, 2)).astype(np.uint32), run_of),
         "blob/psize_A": rng.random(n).astype(np.float32)},
        {"blob/path": (names, shuffled), "blob/shape": (np.arange(18, dtype=np.uint32).reshape(9, 2), shuffled)},
        {"blob/path": (names, shuffled)},  # no runs: the gather
        {"blob/path": (names[:1], np.zeros(n, np.int64)), "uid": cs.new_uids(n, rng)},  # one run; the first field
        {"blob/idx": rng.integers(0, 9, n).astype(np.int64)},  # a different size: no bridge
        {"ctf/type": (np.array(["x", "ünïcode"]), run_of % 2), "extra/u16": rng.integers(0, 9, n),
         "alignments3D/psize_A": np.float32(1.5)},  # the last field; a scalar
        {"new/field": (np.array([1.5, 2.5]), run_of % 2), "blob/sign": rng.random(n)},  # an added field
        {},
    ]
    for k, replace in enumerate(cases):
        path = cs.write_cs_replacing(tmp_path / f"o{k}.cs", data, replace, chunk_rows=chunk)
        assert path.read_bytes() == _reference(data, replace), (k, chunk)


def test_memory_mapped_and_strided_inputs(tmp_path):
    rng = np.random.default_rng(9)
    data, run_of = _dataset(300, rng)
    with open(tmp_path / "in.cs", "wb") as fh:
        np.save(fh, data)
    mapped = cs.read_cs(tmp_path / "in.cs", mmap=True)
    replace = {"blob/path": (np.array(["a", "bb"]), run_of % 2), "blob/shape": np.zeros((300, 2), np.uint32)}
    want = _reference(data, replace)
    assert cs.write_cs_replacing(tmp_path / "m.cs", mapped, replace, chunk_rows=50).read_bytes() == want
    every_other = data[::2]  # not contiguous: field by field
    rep2 = {"blob/path": (np.array(["a", "bb"]), (run_of % 2)[::2])}
    assert (cs.write_cs_replacing(tmp_path / "s.cs", every_other, rep2, chunk_rows=7).read_bytes()
            == _reference(every_other, rep2))


@pytest.mark.parametrize("n", [0, 1, 2, 3, 16384, 16385, 40001])
def test_from_columns_block_fill_is_numpys_field_assignment(n):
    """from_columns fills blocks of rows: the bytes are those of numpy's whole-field assignment,
    for per-row values, scalars and one vector broadcast to every row (also when n equals its length)."""
    rng = np.random.default_rng(n)
    cols = {"uid": np.arange(n, dtype=np.uint64) + 7,
            "blob/path": np.array([f"J1/x{i % 7}.mrc" for i in range(n)], dtype=object),
            "blob/idx": np.arange(n, dtype=np.uint32),
            "alignments3D/pose": rng.standard_normal((n, 3)).astype(np.float32),
            "ctf/amp_contrast": 0.1,
            "blob/shape": np.array([128, 128], dtype=np.uint32),
            "alignments3D/shift": np.array([1.5, -2.0], dtype=np.float32)}
    got = cs.from_columns(cols)
    want = np.zeros(n, dtype=got.dtype)
    for name, values in cols.items():
        values = np.asarray(values)
        want[name] = values.astype("S") if values.dtype.kind in "OU" else values
    assert got.tobytes() == want.tobytes()
