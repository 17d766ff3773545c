"""The compiled STAR number kernels (issue 19) give exactly what numpy gives, and the writer's bytes do not change.

Each kernel is held to its numpy reference on random data and on the edge
values (0, -0, NaN, ±inf, subnormals, the 1e-4 / 1e6 / 1e16 switches between
positional and scientific text, powers of two, ties, 17-19 digit decimals, every
spelling RELION and other tools write).  ``write_star`` with the kernels must
write the same bytes as with numpy only, and ``read_star`` must read the same
values.
"""

from __future__ import annotations

import numpy as np
import pytest

from cryodesk.io import relion_carry, relion_optics, star, star_numbers
from cryodesk.io.star import StarBlock

pytestmark = pytest.mark.skipif(star_numbers.implementation() != "numba", reason="numba kernels not available")


@pytest.fixture(autouse=True)
def kernels_for_small_arrays(monkeypatch):
    monkeypatch.setattr(star_numbers, "MIN_SIZE", 1)

RNG = np.random.default_rng(19)


def _edges(dt) -> np.ndarray:
    base = np.array([0.0, -0.0, np.nan, -np.nan, np.inf, -np.inf, 1e-4, 1e-5, 1e-6, 1e-7, 1e6, 1e16, 1e17, 1e22,
                     9999999999999998.0, 2097152.25, 999999.94, 5e-324, 2.2e-308, 1.17e-38, 1.4e-45, 3.4e38, 1.7e308,
                     0.1, 0.5, 1.0, 2.0, 3.0, 1024.0, 300.0, 2.7, 1.06, 123456789.0, 0.3], dtype=np.float64)
    with np.errstate(all="ignore"):
        b = base.astype(dt)
        up, down = np.nextafter(b, dt(np.inf)), np.nextafter(b, dt(-np.inf))
    return np.concatenate([b, up, down, -b])


def _floats(dt, n: int) -> list[np.ndarray]:
    ubits = np.uint64 if dt == np.float64 else np.uint32
    bits = RNG.integers(0, np.iinfo(ubits).max, n, dtype=np.uint64, endpoint=True).astype(ubits).view(dt)
    spread = (RNG.uniform(-1, 1, n) * 10.0 ** RNG.integers(-9, 20, n)).astype(dt)
    return [bits, spread, RNG.uniform(-180, 180, n).astype(dt), np.round(RNG.uniform(0, 6000, n), 3).astype(dt),
            RNG.integers(-10**7, 10**7, n).astype(dt), np.tile(_edges(dt), 3)]


@pytest.mark.parametrize("dt", [np.float64, np.float32])
def test_float_text_equals_numpy(dt):
    for values in _floats(dt, 6000):
        got, want = star_numbers.format_numbers(values), values.astype("S")
        bad = np.flatnonzero(got != want)
        assert bad.size == 0, [(values[i], got[i], want[i]) for i in bad[:5]]


@pytest.mark.parametrize("dt", [np.int64, np.uint64, np.uint32, np.int32, np.uint8, np.bool_])
def test_int_text_equals_numpy(dt):
    if dt == np.bool_:
        values = RNG.integers(0, 2, 200).astype(bool)
    else:
        info = np.iinfo(dt)
        values = RNG.integers(info.min, info.max, 3000, dtype=dt, endpoint=True)
        values[:3] = [info.min, info.max, 0]
    np.testing.assert_array_equal(star_numbers.format_numbers(values), star_numbers.format_numbers_numpy(values))


SPELLINGS = [b"1e-05", b"1.0E+3", b"-.5", b"5.", b"+.5e-3", b"42", b"-0", b"0", b"0.0", b"-0.0", b"0e999", b"1e400",
             b"-1e400", b"1e-400", b"inf", b"-inf", b"nan", b"NaN", b"Infinity", b"000123.4500", b"1E5", b"1e+05",
             b"12345678901234567890123", b"0.000000000000000000000000012345", b"143.54153891597852",
             b"9007199254740993", b"900719925474099.35", b"123456789012345678", b"1234567890123456789",
             b"2.2250738585072014e-308", b"4.9e-324", b"1.7976931348623157e308", b"0.1000000000000000055511151231257827",
             b"3.4028234663852886e+38", b"1e22", b"1e23", b"8.98846567431158e307", b"-12.5e-1"]


def test_parse_equals_numpy_on_every_spelling_and_random_text():
    texts = [np.array(SPELLINGS * 2), np.repeat(np.array(SPELLINGS), 3)]  # runs of equal texts too
    for dt in (np.float64, np.float32):
        texts += [v.astype("S") for v in _floats(dt, 4000)]
    # 16 to 19 significant digits with exponents (the exact-check path)
    digits = RNG.integers(10**15, 10**18, 4000)
    texts.append(np.array([f"{d}e{e}".encode() for d, e in zip(digits.tolist(), RNG.integers(-30, 5, 4000).tolist())]))
    for t in texts:
        got, want = star_numbers.parse_floats(t), np.asarray(t, dtype=np.float64)
        same = (got.view(np.uint64) == want.view(np.uint64)) | (np.isnan(got) & np.isnan(want))
        assert same.all(), [(t[i], got[i], want[i]) for i in np.flatnonzero(~same)[:5]]


@pytest.mark.parametrize("bad", [b"abc", b"1.5.2", b"--1", b"1e", b"", b"1,5", b"0x10"])
def test_parse_refuses_what_numpy_refuses(bad):
    col = np.array([b"1.5"] * 20 + [bad])
    with pytest.raises(ValueError):
        np.asarray(col, dtype=np.float64)
    with pytest.raises(ValueError):
        star_numbers.parse_floats(col)


def test_parse_uints_equals_numpy():
    values = RNG.integers(0, 2**64 - 1, 2000, dtype=np.uint64, endpoint=True)
    values[:2] = [0, 2**64 - 1]
    got = star_numbers.parse_uints(values.astype("S"))
    np.testing.assert_array_equal(got, values)
    for bad in (b"18446744073709551616", b"-1", b"1.0", b"", b"1 2", b"99999999999999999999"):
        assert star_numbers.parse_uints(np.array([b"1", bad])) is None


def _bodies() -> list[bytes]:
    rows = "1@FoilHole_1_Data_2.mrcs 1.5 -2e-05\n2@FoilHole_1_Data_2.mrcs 300 7\n" * 3
    return [s.encode("utf-8") for s in (
        rows, rows.replace("300", "'3 00'"), rows.replace(" 7\n", " 7 # c\n"), rows.replace(" 7\n", "\n 7\n"),
        rows.replace("300", "a_data_b"), rows.replace("300", "Data_x"), rows.replace("300", "LOOP_"),
        rows.replace("300", "global_x"), rows.replace("300", "_x"), rows.replace("300", ";x"),
        rows.replace("300", "$x"), rows.replace("1.5", "ä"), rows.replace("1.5", "1\x0b5"), rows + "3@x 1",
        rows.replace("\n", "\r\n"), rows.replace(" ", "\t"), "", "  \n\n")]


@pytest.mark.parametrize("body", _bodies())
def test_splitter_equals_numpy_reference(body):
    buf = np.frombuffer(body, dtype=np.uint8)
    got = star_numbers.split_columns(buf, 3)
    want = star._split_columns_numpy(buf, body, 3, 1 << 24) if body.strip() else [np.zeros(0, "S1")] * 3
    if want is None:
        assert got is None
    else:
        assert got is not None and all(np.array_equal(g, w) for g, w in zip(got, want))


def test_quote_check_and_row_join_equal_numpy():
    words = [b"plain", b"x y", b"", b"_under", b"#hash", b"'q", b'"q', b";s", b"$d", b"data_", b"DATA_x", b"data",
             b"Loop_", b"save_1", b"stop_", b"global_", b"globa", b"a\tb", b"\xc3\xa4", b"a_data_", b"1.5", b"x\x0cy"]
    col = np.array(words * 30)
    np.testing.assert_array_equal(star_numbers.needs_quote(col), star._needs_quote_numpy(col))
    buf = RNG.integers(0, 4, (500, 37)).astype(np.uint8) * RNG.integers(0, 2, (500, 37)).astype(np.uint8)
    assert star_numbers.compact(buf) == buf[buf != 0].tobytes()


def _table(n: int) -> dict[str, np.ndarray]:
    e64, e32 = np.resize(_edges(np.float64), n), np.resize(_edges(np.float32), n)
    return {
        "rlnAngleRot": np.where(RNG.random(n) < 0.2, e64, RNG.uniform(-180, 180, n)),
        "rlnDefocusU": np.where(RNG.random(n) < 0.2, e32, RNG.uniform(8000, 25000, n).astype(np.float32)),
        "rlnTiny": RNG.normal(size=n) * 10.0 ** RNG.integers(-40, 40, n),
        "rlnZeros": np.where(RNG.random(n) < 0.5, 0.0, -0.0),
        "rlnConst": np.full(n, 300.0, np.float32),
        "rlnClassNumber": RNG.integers(-3, 50, n),
        "csparc/uid": RNG.integers(0, 2**64 - 1, n, dtype=np.uint64, endpoint=True),
        "rlnFlag": RNG.random(n) < 0.5,
        "rlnName": np.array(["a b", "plain", "data_x", "_u", "ä ö", "ok'", "#c", "x"])[RNG.integers(0, 8, n)],
        "rlnBytes": np.array([b"000001@s.mrcs", b"$x", b"loop_", b"y"])[RNG.integers(0, 4, n)],
        "csparc/ctf/tetra_A": relion_carry.encode(np.where(RNG.random((n, 1)) < 0.5, 0.0, -0.0) *
                                                  np.ones((1, 4))),
    }


def _without_kernels(monkeypatch):
    monkeypatch.setattr(star_numbers, "_kernels", False)


def test_written_star_is_byte_identical_without_kernels_and_reads_back(tmp_path, monkeypatch):
    blocks = {"optics": StarBlock("optics", columns={"rlnOpticsGroup": np.array([1]), "rlnVoltage": np.array([300.0])}),
              "particles": StarBlock("particles", columns=_table(3000))}
    fast = star.write_star(tmp_path / "fast.star", blocks).read_bytes()
    fast_read = star.read_star(tmp_path / "fast.star")
    with monkeypatch.context() as m:
        m.setattr(star, "BULK_BYTES", 16)
        small = star.read_star(tmp_path / "fast.star")
    with monkeypatch.context() as m:
        _without_kernels(m)
        slow = star.write_star(tmp_path / "slow.star", blocks).read_bytes()
        m.setattr(star, "BULK_BYTES", 16)
        slow_read = star.read_star(tmp_path / "fast.star")
    assert fast == slow
    # every value as its own per-value text (-0.0 stays -0.0 in a column of zeros and in vectors)
    rows = fast.decode("utf-8").split("_csparc/ctf/tetra_A #11\n", 1)[1].strip().splitlines()
    texts = [[star._quote(v) for v in star.format_column(c).tolist()] for c in blocks["particles"].columns.values()]
    assert rows == [" ".join(r) for r in zip(*texts)]
    for lab in blocks["particles"].columns:
        for other in (small, slow_read):
            np.testing.assert_array_equal(fast_read["particles"].columns[lab], other["particles"].columns[lab])
    for lab in ("rlnAngleRot", "rlnDefocusU", "rlnTiny", "rlnZeros", "rlnClassNumber"):
        want = np.asarray(blocks["particles"].columns[lab])
        got = star.column_floats(fast_read["particles"].columns[lab], lab).astype(want.dtype)  # float32 text: float32
        if want.dtype.kind == "f":  # bit for bit (-0.0 too); NaN as NaN
            nan = np.isnan(want)
            assert np.array_equal(np.isnan(got), nan) and np.array_equal(got[~nan].view(f"u{want.itemsize}"),
                                                                         want[~nan].view(f"u{want.itemsize}"))
        else:
            np.testing.assert_array_equal(got, want)


def test_starfile_reads_the_written_numbers(tmp_path):
    starfile = pytest.importorskip("starfile")
    cols = {k: v for k, v in _table(500).items() if k in ("rlnAngleRot", "rlnDefocusU", "rlnClassNumber")}
    cols["rlnName"] = np.array(["a b", "plain", "ä ö", "x"])[RNG.integers(0, 4, 500)]  # (quotes starfile reads)
    path = star.write_star(tmp_path / "o.star", {"particles": StarBlock("particles", columns=cols)})
    df = starfile.read(path)
    assert list(df.columns) == list(cols) and len(df) == 500
    np.testing.assert_allclose(df["rlnAngleRot"].to_numpy(float), cols["rlnAngleRot"], rtol=1e-15, equal_nan=True)
    np.testing.assert_array_equal(df["rlnClassNumber"].to_numpy(), cols["rlnClassNumber"])
    assert df["rlnName"].astype(str).tolist() == cols["rlnName"].tolist()


def test_optics_codes_equal_numpy_unique():
    for trial in range(60):
        n, k = int(RNG.integers(1, 200)), int(RNG.integers(1, 4))
        base = RNG.choice(np.array([0.0, -0.0, 1.5, 2.0, -3.0, 1e-7]), size=(int(RNG.integers(1, 6)), k))
        rows = base[np.sort(RNG.integers(0, len(base), n)) if trial % 2 else RNG.integers(0, len(base), n)]
        for col in (rows, rows[:, 0], rows[:, 0].astype(np.int64)):
            want = (np.unique(col, axis=0, return_inverse=True)[1] if col.ndim > 1 else
                    np.unique(col, return_inverse=True)[1]).ravel()
            if not np.all(col == col[:1]):
                np.testing.assert_array_equal(relion_optics._codes(col), want)
        key = RNG.integers(0, 5, n) * 7 + RNG.integers(0, 3, n)
        _, first, inv = np.unique(key, return_index=True, return_inverse=True)
        got_first, got_inv = relion_optics._unique_keys(key)
        np.testing.assert_array_equal(got_first, first)
        np.testing.assert_array_equal(got_inv, inv.ravel())


def test_row_join_equals_the_padded_table():
    """join_rows gives compact() of the padded table: NULs inside a value dropped, empty values, long texts."""
    n = 700
    words = np.array([b"", b"a", b"x\x00y", b"\x00lead", b"p" * 40, b"q\x00" * 30, b"-1.5e-07"])
    texts = words[RNG.integers(0, len(words), n)]
    nums = star_numbers.number_chars(RNG.normal(size=n))
    const = np.broadcast_to(np.frombuffer(b"300.0", dtype=np.uint8).reshape(1, -1), (n, 5))
    cols = [texts, nums, const, texts[::-1].copy()]
    padded = [c.view(f"S{c.shape[1]}").ravel() if c.dtype == np.uint8 else c for c in cols]
    want_rows = [b" ".join(bytes(p[i]).replace(b"\x00", b"") for p in padded) + b"\n" for i in range(n)]
    assert star_numbers.join_rows(cols) == b"".join(want_rows)


def test_body_end_equals_bytes_find():
    rows = b"1@a.mrcs 1.5\n2@b.mrcs data_x\n" * 40
    for tail in (b"", b"\n_rlnX #1\n", b"\ndata_next\n", b"\nloop_\n", b"\nDATA_no\n", b"\nloop", b"\n_"):
        for pad in (0, 1, 63, 64, 65):
            raw = b"x" * pad + rows + tail
            want = [e for e in (raw.find(w, 3) for w in (b"\n_", b"\ndata_", b"\nloop_")) if e >= 0]
            got = int(star_numbers._k()._body_end(np.frombuffer(raw, dtype=np.uint8), 3))
            assert got == (min(want) if want else -1), (tail, pad)
