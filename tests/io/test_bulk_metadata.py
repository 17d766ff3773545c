"""The vectorised metadata paths (issue 19) agree with the token-by-token / field-by-field ones.

* ``read_star`` splits large plain loop bodies with numpy: every column must
  equal what :func:`star.parse_star` gives (as UTF-8 bytes), and anything the
  bulk splitter cannot read exactly (quotes, comments, keywords, ``_`` tokens,
  rows over several lines, non-ASCII, an incomplete row) goes to the slow parser.
* ``write_cs_replacing`` streams a dataset with fields replaced: the file must
  equal ``np.save`` of the same array built field by field (``from_columns``).
* ``unique_first`` equals ``np.unique`` reordered by first appearance.
* ``write_star``'s vectorised formatting writes the text the per-value writer did.
"""

from __future__ import annotations

import numpy as np
import pytest

from cryodesk.base.errors import DataError
from cryodesk.io import cs, relion, star, star_images


@pytest.fixture
def bulk(monkeypatch):
    monkeypatch.setattr(star, "BULK_BYTES", 16)


def _same(fast: dict, slow: dict) -> None:
    assert list(fast) == list(slow)
    for name in slow:
        assert fast[name].pairs == slow[name].pairs
        assert list(fast[name].columns) == list(slow[name].columns)
        for lab, want in slow[name].columns.items():
            got = fast[name].columns[lab]
            got = np.char.decode(got, "utf-8") if got.dtype.kind == "S" else got
            np.testing.assert_array_equal(got, want, err_msg=f"{name}/{lab}")


@pytest.mark.parametrize("name", ["relion31.star", "empiar_10076_7.star"])
def test_bulk_read_equals_token_parser_on_real_files(realdata_dir, bulk, name):
    path = realdata_dir / name
    fast = star.read_star(path)
    _same(fast, star.parse_star(path.read_text(), str(path)))
    assert any(c.dtype.kind == "S" for b in fast.values() for c in b.columns.values())  # the bulk path ran
    # and the conversion gives the same dataset
    a, b = relion.star_to_cs(fast, str(path)), relion.star_to_cs(star.parse_star(path.read_text(), str(path)))
    for f in a.dtype.names:
        if f != "uid":
            np.testing.assert_array_equal(a[f], b[f], err_msg=f)


ROWS = "1@FoilHole_1_Data_2.mrcs 1.5 -2e-05\n2@FoilHole_1_Data_2.mrcs 300 7\n"
HEAD = "data_particles\n\nloop_\n_rlnImageName #1\n_rlnDefocusU #2\n# a comment line\n_rlnX #3\n"


@pytest.mark.parametrize("body", [
    ROWS,                                               # plain: bulk
    ROWS.replace("300", "'3 00'"),                      # quoted value
    ROWS.replace(" 7\n", " 7 # comment\n"),            # trailing comment
    ROWS.replace(" 7\n", "\n 7\n"),                     # a row over two lines
    ROWS.replace("300", "a_data_b"),                    # not a keyword: part of a name
    ROWS + "\n# version 30001\n\n",                     # comment lines after the rows
    ROWS.replace("1.5", "ä"),                           # non-ASCII
    ROWS + "\n_rlnPair after\n",                        # a pair after the loop
    ROWS + "data_second\n_rlnA 1\n",                    # another block
])
def test_bulk_read_agrees_or_falls_back(tmp_path, bulk, body):
    path = tmp_path / "p.star"
    path.write_text(HEAD + body, encoding="utf-8")
    _same(star.read_star(path), star.parse_star(path.read_text(encoding="utf-8"), str(path)))


@pytest.mark.parametrize("body", [ROWS.replace("300", "stop_"), ROWS.replace("300", "Data_x")])
def test_bulk_read_keeps_the_token_parser_errors(tmp_path, bulk, body):
    path = tmp_path / "p.star"
    path.write_text(HEAD + body)
    with pytest.raises(DataError) as slow:
        star.parse_star(path.read_text(), str(path))
    with pytest.raises(DataError) as fast:
        star.read_star(path)
    assert str(fast.value) == str(slow.value)


def test_bulk_read_incomplete_row_is_the_same_error(tmp_path, bulk):
    path = tmp_path / "p.star"
    path.write_text(HEAD + ROWS + "3@x.mrcs 1.0\n")
    with pytest.raises(DataError, match=r"p\.star: block data_particles: the loop has 8 values, not a multiple"):
        star.read_star(path)


def test_bulk_columns_feed_the_conversion(tmp_path, bulk):
    path = tmp_path / "p.star"
    path.write_text("data_optics\nloop_\n_rlnOpticsGroup\n_rlnVoltage\n_rlnImagePixelSize\n1 300 1.1\n2 200 1.2\n\n"
                    "data_particles\nloop_\n_rlnImageName\n_rlnOpticsGroup\n_rlnMicrographName\n_rlnDefocusU\n"
                    "_rlnFoo\n000001@s.mrcs 2 m1.mrc 1.5 a\n000002@s.mrcs 1 m2.mrc 2.5 b\n")
    data = relion.star_to_cs(star.read_star(path))
    assert data["ctf/accel_kv"].tolist() == [200.0, 300.0] and data["blob/idx"].tolist() == [0, 1]
    assert cs.as_str(data["blob/path"]) == ["s.mrcs"] * 2 and cs.as_str(data["relion/rlnFoo"]) == ["a", "b"]
    assert cs.as_str(data["location/micrograph_path"]) == ["m1.mrc", "m2.mrc"]


def test_image_names_vectorised(bulk):
    idx, paths = star_images.parse_image_names(np.array([b"000003@a.mrcs", b"b.mrcs", b"12@c d.mrcs"]))
    assert idx.tolist() == [2, 0, 11] and [p.decode() for p in paths] == ["a.mrcs", "b.mrcs", "c d.mrcs"]
    for bad in ("0@a.mrcs", "5.5@a.mrcs", "@a.mrcs", "3@", "x@a", "-1@a", "9" * 25 + "@a", "٣@a"):
        with pytest.raises(DataError, match="bad image name"):
            star_images.parse_image_names(np.array(["1@ok.mrcs", bad]))
    assert star_images.format_image_names([2, 0], ["a.mrcs", "ä.mrcs"]).tolist() == ["000003@a.mrcs", "000001@ä.mrcs"]


def test_unique_first_matches_numpy():
    rng = np.random.default_rng(3)
    for values in (rng.integers(0, 5, 200), np.repeat(rng.integers(0, 50, 20), 7),
                   np.array([b"b", b"a", b"b", b"c", b"a"]), np.array([], dtype="S3")):
        table, inv = cs.unique_first(values)
        np.testing.assert_array_equal(table[inv], values)
        _, first = np.unique(values, return_index=True)
        np.testing.assert_array_equal(table, values[np.sort(first)])


def test_streamed_writer_equals_field_by_field(tmp_path, realdata_dir):
    orig = cs.read_cs(realdata_dir / "empiar_10076_7.cs")
    extra = {"alignments3D/pose": np.arange(21, dtype=np.float64).reshape(7, 3)}
    names = np.array(["J1/imported/a_much_longer_name_than_before.mrc", "ä.mrc"])
    which = np.array([0, 0, 1, 1, 0, 1, 0])
    replace = {"blob/path": (names, which), "blob/idx": np.arange(7, dtype=np.int64)[::-1],
               "blob/shape": np.full((7, 2), 64), **extra}
    cols = {n: orig[n] for n in orig.dtype.names}
    cols.update({"blob/path": names[which], "blob/idx": np.arange(7)[::-1], "blob/shape": np.full((7, 2), 64),
                 **extra})
    want = cs.from_columns(cols, 7)
    for chunk in (2, 1 << 15):
        path = cs.write_cs_replacing(tmp_path / f"o{chunk}.cs", orig, replace, chunk_rows=chunk)
        got = np.load(path)
        assert got.dtype == want.dtype
        np.testing.assert_array_equal(got, want)
    # and through write_cs(replace=...) in the compressed encoding
    got = cs.read_cs(cs.write_cs(tmp_path / "o.csdat.cs", orig, format="csdat", replace=replace))
    for f in want.dtype.names:
        np.testing.assert_array_equal(got[f], want[f], err_msg=f)


def test_vectorised_star_text_equals_per_value_formatting(tmp_path):
    rng = np.random.default_rng(5)
    cols = {"rlnA": rng.normal(size=300).astype(np.float32), "rlnB": rng.normal(size=300) * 1e-7,
            "rlnC": np.full(300, 300.0), "rlnD": rng.integers(-5, 5, 300), "rlnE": np.array(["x y", "plain"] * 150),
            "rlnF": np.array([b"_under", b"#hash", b"data_x", b"ok"] * 75), "rlnG": np.array([True, False] * 150)}
    path = star.write_star(tmp_path / "v.star", {"t": star.StarBlock("t", columns=cols)})
    rows = path.read_text().split("_rlnG #7\n", 1)[1].strip().splitlines()
    texts = [[star._quote(v) for v in star.format_column(c).tolist()] for c in cols.values()]
    assert rows == [" ".join(r) for r in zip(*texts)]
