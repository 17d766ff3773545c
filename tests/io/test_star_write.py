"""The STAR writer's row kernel (issue 19) writes exactly the bytes of the column-at-a-time path.

The float text is held to numpy on random bit patterns, spread magnitudes,
ties (float32 values ending in ...5 exactly: numpy keeps the even digit),
powers of two and the edges; whole loops with every column kind (quotes,
non-ASCII, NULs inside values, constants, int64 minimum, uint64 maximum,
float16, bool) to the column path, across chunk boundaries and with values
handed back to Python (numpy's or ``_quote``'s bytes) in the middle of rows.
"""

from __future__ import annotations

import numpy as np
import pytest

from cryodesk.base.errors import DataError
from cryodesk.io import star, star_numbers, star_write
from cryodesk.io.star import StarBlock

pytestmark = pytest.mark.skipif(star_numbers.implementation() != "numba", reason="numba kernels not available")

RNG = np.random.default_rng(1919)


@pytest.fixture(autouse=True)
def kernels_for_small_arrays(monkeypatch):
    monkeypatch.setattr(star_numbers, "MIN_SIZE", 1)


def _edges(dt) -> np.ndarray:
    base = np.array([0.0, -0.0, np.nan, np.inf, -np.inf, 1e-4, 1e-5, 1e-6, 1e-7, 1e6, 1e16, 1e17, 0.1, 0.5, 1.0,
                     1024.0, 300.0, 2.7, 1.06, 999999.94, 9999999999999998.0, 2097152.25, 123456789.0, 0.3,
                     19670.3125, 23905.4375, 5e-324, 3.4e38, 1.17e-38], dtype=np.float64)
    with np.errstate(all="ignore"):
        b = base.astype(dt)
        return np.concatenate([b, np.nextafter(b, dt(np.inf)), np.nextafter(b, dt(-np.inf)), -b])


def _floats(dt, n: int) -> list[np.ndarray]:
    ubits = np.uint64 if dt == np.float64 else np.uint32
    bits = RNG.integers(0, np.iinfo(ubits).max, n, dtype=np.uint64, endpoint=True).astype(ubits).view(dt)
    spread = (RNG.uniform(-1, 1, n) * 10.0 ** RNG.integers(-9, 20, n)).astype(dt)
    ties = (RNG.integers(8000 * 512, 25000 * 512, n) / 512.0).astype(dt)  # multiples of 2^-9: many exact ...5
    return [bits, spread, ties, RNG.uniform(-180, 180, n).astype(dt), np.round(RNG.uniform(0, 6000, n), 3).astype(dt),
            RNG.integers(-10**7, 10**7, n).astype(dt), np.tile(_edges(dt), 3)]


@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_float_text_equals_numpy(dt):
    from cryodesk.io import _star_write_kernels as kernels

    for values in _floats(dt, 4000):
        out = np.zeros(len(values) * 25, dtype=np.uint8)
        flag = kernels.format_floats(values, dt == np.float32, out, 25)
        got, want = out.view("S25"), values.astype("S")
        bad = np.flatnonzero(~flag & (got != want))
        assert bad.size == 0, [(values[i], got[i], want[i]) for i in bad[:5]]
    ties = _floats(dt, 4000)[2]
    out = np.zeros(len(ties) * 25, dtype=np.uint8)
    assert kernels.format_floats(ties, dt == np.float32, out, 25).mean() < 0.01  # ties decided, not handed back


def _table(n: int) -> dict[str, np.ndarray]:
    e64, e32 = np.resize(_edges(np.float64), n), np.resize(_edges(np.float32), n)
    i64 = RNG.integers(-3, 50, n)
    i64[::97] = np.iinfo(np.int64).min
    u64 = RNG.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True)
    u64[::89] = np.iinfo(np.uint64).max
    names = np.array([b"a b", b"plain", b"data_x", b"_u", b"\xc3\xa4", b"ok'", b"#c", b"x", b"a\0b", b"Loop_1",
                      b"$d", b"x\ty", b"\0z", b"long-name-" * 5])
    return {
        "rlnAngleRot": np.where(RNG.random(n) < 0.3, e64, RNG.uniform(-180, 180, n)),
        "rlnDefocusU": np.where(RNG.random(n) < 0.3, e32, (RNG.integers(8000 * 512, 9000 * 512, n) / 512)
                                .astype(np.float32)),
        "rlnTiny": RNG.normal(size=n) * 10.0 ** RNG.integers(-40, 40, n),
        "rlnRuns": np.repeat(RNG.uniform(0, 1, n // 7 + 1), 7)[:n],  # repeated values: copied from the row above
        "rlnConst": np.full(n, 1.0, np.float32),
        "rlnConstInt": np.full(n, 7, np.int16),
        "rlnClassNumber": i64,
        "rlnSmall": RNG.integers(0, 255, n).astype(np.uint8),
        "csparc/uid": u64,
        "rlnFlag": RNG.random(n) < 0.5,
        "rlnHalf": RNG.normal(size=n).astype(np.float16),
        "rlnName": names[RNG.integers(0, len(names), n)],
        "rlnUnicode": np.array(["a b", "plain", "ä", "ö x", "data_"])[RNG.integers(0, 5, n)],
        "rlnImageName": np.array([f"{k:06d}@stacks/s{k % 3}.mrcs".encode() for k in range(n)]),
    }


def _column_path(monkeypatch, path, blocks) -> bytes:
    with monkeypatch.context() as m:
        m.setattr(star_write, "loop_chunks", lambda *a, **k: None)
        return star.write_star(path, blocks).read_bytes()


@pytest.mark.parametrize("chunk_rows", [1 << 15, 113])
def test_rows_equal_the_column_path(tmp_path, monkeypatch, chunk_rows):
    blocks = {"optics": StarBlock("optics", columns={"rlnOpticsGroup": np.array([1, 2]),
                                                     "rlnVoltage": np.array([300.0, 200.0])}),
              "particles": StarBlock("particles", columns=_table(1500))}
    taken = []
    real = star_write.loop_chunks

    def spy(cols, quote, text_of, chunk_rows_=None):
        it = real(cols, quote, text_of, chunk_rows)
        taken.append(it is not None)
        return it

    monkeypatch.setattr(star_write, "loop_chunks", spy)
    fast = star.write_star(tmp_path / "fast.star", blocks).read_bytes()
    assert taken == [True, True]
    assert fast == _column_path(monkeypatch, tmp_path / "slow.star", blocks)
    back = star.read_star(tmp_path / "fast.star")["particles"].columns
    np.testing.assert_array_equal(star.column_floats(back["rlnAngleRot"], "x"), blocks["particles"].columns["rlnAngleRot"])


def test_bad_text_is_refused_as_before(tmp_path):
    cols = {"rlnName": np.array([b"ok"] * 50 + [b"""a'b"c d"""] + [b"ok"] * 50)}
    with pytest.raises(DataError, match="both quote characters"):
        star.write_star(tmp_path / "bad.star", {"particles": StarBlock("particles", columns=cols)})
    assert not (tmp_path / "bad.star").exists()


def test_every_value_handed_back_and_small_loops(tmp_path, monkeypatch):
    empty = {"rlnName": np.array([b""] * 80), "rlnX": np.arange(80.0)}  # every value quoted by _quote
    blocks = {"particles": StarBlock("particles", columns=empty)}
    text = star.write_star(tmp_path / "e.star", blocks).read_bytes()
    assert text == _column_path(monkeypatch, tmp_path / "e2.star", blocks) and b"\n'' 0.0\n" in text
    monkeypatch.setattr(star_numbers, "MIN_SIZE", 2048)  # a small loop: the column path, numba never loaded
    assert star_write.loop_chunks([np.arange(10.0)], star._quote_bytes, star._text) is None
