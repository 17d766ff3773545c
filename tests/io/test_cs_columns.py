"""``cs_columns.Columns``: the dataset ``from_columns`` builds, kept as its columns (what the STAR import writes
its ``.cs`` from): the same dtype, the same field values, the same bytes through ``write_cs_replacing``, and
the same overflow error from ``star_to_cs``; its fields validate and import as the array's do."""

from __future__ import annotations

import io

import numpy as np
import pytest

from cryodesk.base.errors import DataError
from cryodesk.io import cs, relion, star
from cryodesk.io.cs_columns import Columns


def _columns(n: int, rng) -> dict:
    return {"uid": cs.new_uids(n, rng), "blob/path": np.array([f"a/s{k % 3}.mrc" for k in range(n)]),
            "blob/idx": rng.integers(0, 50, n), "blob/shape": np.full((n, 2), 64.0),
            "blob/psize_A": rng.random(n), "blob/sign": -1.0, "ctf/type": "imported",
            "ctf/df1_A": rng.uniform(-1e4, 1e4, n), "ctf/tilt_A": rng.normal(size=(n, 2)),
            "ctf/anisomag": np.array([0.5, 0.25, -0.125, 1e-3]), "alignments3D/pose": rng.normal(size=(n, 3)),
            "location/micrograph_path": np.array([f"m/ü{k % 5}.mrc" for k in range(n)]),
            "relion/rlnFoo": rng.integers(-5, 5, n), "relion/rlnBar": rng.random(n),
            "relion/rlnText": np.array([b"x", b"yy"] * (n // 2)), "extra/u16": rng.integers(0, 9, n).astype(np.uint16)}


@pytest.mark.parametrize("n", [0, 1, 7, 40_000])
def test_columns_are_the_dataset(n):
    rng = np.random.default_rng(n)
    cols = _columns(n - n % 2, rng)
    n -= n % 2
    want = cs.from_columns(cols, n)
    got = Columns(dict(cols), n)
    assert got.dtype == want.dtype and len(got) == len(want) == n and got.ndim == 1
    for name in want.dtype.names:
        field = got[name]
        assert field.dtype == want[name].dtype and field.shape == want[name].shape, name
        assert np.array_equal(field, want[name]), name
    assert got.to_array().tobytes() == want.tobytes()
    with pytest.raises(TypeError):
        got.view(np.uint8)  # no record layout: validate takes its general way


def test_uid_made_when_absent_and_consume_takes_the_entries():
    rng = np.random.default_rng(3)
    cols = _columns(10, rng)
    del cols["uid"]
    given = dict(cols)
    got = Columns(given, 10, consume=True)
    assert given == {} and got.dtype.names[0] == "uid" and len(np.unique(got["uid"])) == 10
    assert got.dtype == cs.from_columns(cols, 10).dtype


@pytest.mark.parametrize("chunk", [None, 3, 1000])
def test_written_like_the_array(tmp_path, chunk):
    rng = np.random.default_rng(11)
    n = 2000
    cols = _columns(n, rng)
    data = cs.from_columns(cols, n)
    names = np.array(["J1/imported/a.mrc", "J1/imported/b.mrc", "J1/imported/c.mrc"])
    run_of = np.arange(n) % 3
    for k, replace in enumerate([{}, {"blob/path": (names, run_of), "blob/psize_A": rng.random(n).astype(np.float32)},
                                 {"blob/idx": data["blob/idx"].astype(np.uint32), "new/f": (np.array([1.5, 2]), run_of % 2)}]):
        want = cs.write_cs_replacing(tmp_path / f"a{k}.cs", data, replace, chunk_rows=chunk).read_bytes()
        got = cs.write_cs_replacing(tmp_path / f"c{k}.cs", Columns(dict(cols), n), replace, chunk_rows=chunk)
        assert got.read_bytes() == want, k
    buf = io.BytesIO()
    np.save(buf, data)
    assert (tmp_path / "a0.cs").read_bytes() == buf.getvalue()


def test_an_overflow_is_the_same_error():
    text = ("data_particles\nloop_\n_rlnImageName\n_rlnDefocusU\n_rlnDefocusV\n"
            "1@a.mrcs 1.5e4 2e39\n2@a.mrcs 1e39 1.0\n")
    errors = []
    for columns in (False, True):
        with pytest.raises(DataError, match=r"_rlnDefocusU of particle 2 is 1e\+39, beyond the range") as exc:
            relion.star_to_cs(star.parse_star(text, "x.star"), "x.star", columns=columns)
        errors.append(str(exc.value))
    assert errors[0] == errors[1]


def test_star_to_cs_columns_is_star_to_cs(tmp_path):
    rows = "\n".join(f"{k % 9 + 1}@s{k % 4}.mrcs m{k % 3}.mrc {k * 0.5} {k % 2 + 1} {1e4 + k} 1.{k}"
                     for k in range(300))
    text = ("data_optics\nloop_\n_rlnOpticsGroup\n_rlnVoltage\n_rlnImagePixelSize\n_rlnImageSize\n1 300 1.06 64\n"
            "2 200 0.9 64\n\ndata_particles\nloop_\n_rlnImageName\n_rlnMicrographName\n_rlnAnglePsi\n"
            "_rlnOpticsGroup\n_rlnDefocusU\n_rlnFoo\n" + rows + "\n")
    want = relion.star_to_cs(star.parse_star(text), "x.star")
    got = relion.star_to_cs(star.parse_star(text), "x.star", columns=True)
    assert isinstance(got, Columns) and got.dtype == want.dtype
    for name in want.dtype.names:
        if name != "uid":  # (new random uids each time)
            assert np.array_equal(got[name], want[name]), name


@pytest.mark.parametrize("columns", [False, True])
def test_a_carried_blob_path_still_wins(columns):
    """``_csparc/blob/path`` (a carried text field) replaces the paths of the image names, coded or not."""
    text = ("data_particles\nloop_\n_rlnImageName\n_csparc/blob/path\n_rlnDefocusU\n"
            "1@a.mrcs J1/x.mrc 1.5\n2@a.mrcs J1/y.mrc 2.5\n")
    got = relion.star_to_cs(star.parse_star(text, "x.star"), "x.star", columns=columns)
    assert list(got["blob/path"]) == [b"J1/x.mrc", b"J1/y.mrc"] and list(got["blob/idx"]) == [0, 1]
