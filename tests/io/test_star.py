"""RELION STAR: parser robustness, writer, and conversion to/from .cs conventions."""

from __future__ import annotations

import numpy as np
import pytest

from cryodesk.base.errors import DataError
from cryodesk.io import cs, relion, star, star_images


def test_parse_comments_quotes_pairs_and_multiline():
    text = """
# a comment before anything
data_general
_rlnVersion  30001   # trailing comment
_rlnTitle 'a quoted value'

data_particles
loop_
_rlnImageName #1
_rlnMicrographName #2
_rlnNote #3
000001@stacks/a.mrcs   "mic one.mrc"   it's
2@stacks/a.mrcs mic2.mrc
;
a multi-line
note
;
"""
    blocks = star.parse_star(text)
    assert blocks["general"].pairs == {"rlnVersion": "30001", "rlnTitle": "a quoted value"}
    p = blocks["particles"]
    assert len(p) == 2
    assert list(p.columns["rlnMicrographName"]) == ["mic one.mrc", "mic2.mrc"]
    assert list(p.columns["rlnNote"]) == ["it's", "a multi-line\nnote"]


def test_write_quotes_and_roundtrip(tmp_path):
    blocks = {"particles": star.StarBlock("particles", columns={
        "rlnImageName": np.array(["000001@a b.mrcs", "000002@x.mrcs"]),
        "rlnDefocusU": np.array([15301.1, 2.5e4], dtype=np.float32),
        "rlnText": np.array(["", "_under"]),
        "rlnHash": np.array(["a#b", "#x"]),
    })}
    path = star.write_star(tmp_path / "o.star", blocks)
    assert [p.name for p in tmp_path.iterdir()] == ["o.star"]
    text = path.read_text()
    assert "'000001@a b.mrcs'" in text and "15301.1 " in text
    back = star.read_star(path)["particles"]
    assert list(back.columns["rlnImageName"]) == ["000001@a b.mrcs", "000002@x.mrcs"]
    assert list(back.columns["rlnText"]) == ["", "_under"]
    assert list(back.columns["rlnHash"]) == ["a#b", "#x"]
    np.testing.assert_array_equal(back.columns["rlnDefocusU"].astype(np.float32), blocks["particles"].columns["rlnDefocusU"])


@pytest.mark.parametrize("text,msg", [
    ("data_x\nloop_\n_a\n_b\n1 2\n3\n", "loop has 3 values, not a multiple of its 2 columns"),
    ("_a 1\n", "line 1: '_a' before the first data_ block"),
    ("data_x\n5\n", "line 2: value '5' without a label"),
    ("data_x\nloop_\n_a\n'unclosed value\n", "line 4: unterminated quoted string"),
    ("data_x\n_a\n", "label _a has no value"),
    ("data_x\ndata_x\n", "duplicate block data_x"),
    ("data_x\nloop_\n_a\n1\nloop_\n_b\n2\n", "has a second loop_"),
    ("data_x\n;\nnever closed\n", "unterminated ;-text field"),
    ("data_x\nsave_frame\n", "save_frame is not supported"),
    ("data_x\nloop_\n_a #1\n_b #2\n_a #3\n1 2 3\n", "line 5: block data_x: column _a appears twice"),
    ("data_x\n_a 1\n_a 2\n", "line 3: block data_x: label _a appears twice"),
])
def test_malformed(tmp_path, text, msg):
    path = tmp_path / "bad.star"
    path.write_text(text)
    with pytest.raises(DataError, match=r"bad\.star.*" + __import__("re").escape(msg)):
        star.read_star(path)


def test_missing_and_empty(tmp_path):
    with pytest.raises(DataError, match="STAR file not found"):
        star.read_star(tmp_path / "no.star")
    (tmp_path / "e.star").write_text("# only a comment\n")
    with pytest.raises(DataError, match="no data_ block"):
        star.read_star(tmp_path / "e.star")


def test_image_names():
    idx, paths = star_images.parse_image_names(["000003@a.mrcs", "1@b/c.mrcs", "single.mrc"])
    assert idx.tolist() == [2, 0, 0] and paths.tolist() == ["a.mrcs", "b/c.mrcs", "single.mrc"]
    assert star_images.format_image_names([2, 0], ["a.mrcs", "b.mrcs"]).tolist() == ["000003@a.mrcs", "000001@b.mrcs"]
    for bad in ["0@a.mrcs", "x@a.mrcs", "3@"]:
        with pytest.raises(DataError, match="bad image name"):
            star_images.parse_image_names(["1@ok.mrcs", bad], "f.star")


def test_relion30_matches_cryosparc_cs(realdata_dir):
    """The real .star and .cs of the same 7 particles agree field by field."""
    from_star = relion.star_to_cs(star.read_star(realdata_dir / "empiar_10076_7.star"))
    ref = cs.read_cs(realdata_dir / "empiar_10076_7.cs")
    np.testing.assert_array_equal(from_star["blob/path"], ref["blob/path"])
    np.testing.assert_array_equal(from_star["blob/idx"], ref["blob/idx"])
    for f in ["blob/psize_A", "ctf/accel_kv", "ctf/cs_mm", "ctf/amp_contrast", "ctf/df1_A", "ctf/df2_A",
              "ctf/df_angle_rad", "ctf/scale"]:
        np.testing.assert_allclose(from_star[f], ref[f], rtol=1e-5, err_msg=f)
    assert "ctf/phase_shift_rad" not in from_star.dtype.names and not ref["ctf/phase_shift_rad"].any()


def test_relion31_optics_spread(realdata_dir):
    d = relion.star_to_cs(star.read_star(realdata_dir / "relion31.star"))
    assert len(d) == 5
    assert cs.as_str(d["blob/path"]) == ["relion31.mrcs"] * 5 and d["blob/idx"].tolist() == [0, 1, 2, 3, 4]
    np.testing.assert_allclose(d["blob/psize_A"], 2.806, rtol=1e-6)
    assert d["blob/shape"].tolist() == [[256, 256]] * 5
    np.testing.assert_allclose(d["ctf/accel_kv"], 300)
    np.testing.assert_allclose(d["ctf/cs_mm"], 0.01)
    np.testing.assert_allclose(d["ctf/df_angle_rad"], np.radians(-160.39), rtol=1e-6)
    assert d["relion/rlnGroupNumber"].dtype == np.int64  # unmapped labels ride along, typed
    assert d["alignments3D/class"].tolist() == [0] * 5 and d["alignments3D/split"].tolist() == [0] * 5
    assert "relion/rlnAngleRot" not in d.dtype.names  # poses are converted, not carried


@pytest.mark.parametrize("name", ["empiar_10076_7.star", "relion31.star"])
@pytest.mark.parametrize("version", [30, 31])
def test_star_cs_star_roundtrip(realdata_dir, tmp_path, name, version):
    orig = relion.star_to_cs(star.read_star(realdata_dir / name))
    star.write_star(tmp_path / "o.star", relion.cs_to_star(orig, version=version))
    blocks = star.read_star(tmp_path / "o.star")
    assert ("optics" in blocks) == (version == 31)
    back = relion.star_to_cs(blocks)
    for f in orig.dtype.names:
        if f in ("uid", "location/micrograph_uid"):
            continue
        if orig.dtype[f].kind == "f":
            np.testing.assert_allclose(back[f], orig[f], rtol=1e-6, err_msg=f)
        else:
            np.testing.assert_array_equal(back[f], orig[f], err_msg=f)


def test_location_with_micrograph_shapes(realdata_dir):
    blocks = star.read_star(realdata_dir / "relion31.star")
    mics = set(blocks["particles"].columns["rlnMicrographName"].tolist())
    d = relion.star_to_cs(blocks, micrograph_shapes={m: (4096, 4096) for m in mics})
    np.testing.assert_allclose(d["location/center_x_frac"][0], 3277 / 4096, rtol=1e-6)
    out = relion.cs_to_star(d)["particles"].columns
    np.testing.assert_allclose(out["rlnCoordinateX"][0], 3277, atol=1e-3)


def test_star_conversion_errors():
    blocks = star.parse_star("data_\nloop_\n_rlnMicrographName\nm.mrc\n")
    with pytest.raises(DataError, match="no particle table"):
        relion.star_to_cs(blocks, "x.star")
    blocks = star.parse_star("data_\nloop_\n_rlnImageName\n_rlnDefocusU\n1@a.mrcs abc\n")
    with pytest.raises(DataError, match="x.star: column _rlnDefocusU has a non-numeric value 'abc'"):
        relion.star_to_cs(blocks, "x.star")
    blocks = star.parse_star("data_optics\nloop_\n_rlnOpticsGroup\n1\n"
                             "data_particles\nloop_\n_rlnImageName\n_rlnOpticsGroup\n1@a.mrcs 2\n")
    with pytest.raises(DataError, match="optics group 2 which data_optics does not define"):
        relion.star_to_cs(blocks, "x.star")
    # two rows of data_optics for one group (200 and 300 kV): which one the particles meant cannot be known
    blocks = star.parse_star("data_optics\nloop_\n_rlnOpticsGroup\n_rlnVoltage\n1 300\n1 200\n"
                             "data_particles\nloop_\n_rlnImageName\n_rlnOpticsGroup\n1@a.mrcs 1\n")
    with pytest.raises(DataError, match="x.star: data_optics defines optics group 1 twice"):
        relion.star_to_cs(blocks, "x.star")
    # a value beyond float32 (CryoSPARC's type for the defocus) would be inf, with numpy's warning on the terminal
    blocks = star.parse_star("data_particles\nloop_\n_rlnImageName\n_rlnDefocusU\n1@a.mrcs 1.5e4\n2@a.mrcs 1e39\n")
    with pytest.raises(DataError, match=r"x.star: _rlnDefocusU of particle 2 is 1e\+39, beyond the range"):
        relion.star_to_cs(blocks, "x.star")
    # a pixel size that is not a number cannot express the shifts in pixels (they would all be NaN)
    for bad in ("nan", "inf", "-1"):
        blocks = star.parse_star("data_optics\nloop_\n_rlnOpticsGroup\n_rlnImagePixelSize\n1 " + bad + "\n"
                                 "data_particles\nloop_\n_rlnImageName\n_rlnOpticsGroup\n_rlnOriginXAngst\n"
                                 "_rlnOriginYAngst\n_rlnAnglePsi\n1@a.mrcs 1 0.5 0.5 10\n")
        with pytest.raises(DataError, match="x.star: the particles have _rlnOriginXAngst/_rlnOriginYAngst but no "
                                            "pixel size"):
            relion.star_to_cs(blocks, "x.star")


_TEXT = __import__("hypothesis").strategies.text(
    alphabet=__import__("hypothesis").strategies.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")),
    max_size=12).filter(lambda v: not ("'" in v and '"' in v) and v == v.strip("\x85\x1c\x1d\x1e\x1f"))


@__import__("hypothesis").given(__import__("hypothesis").strategies.lists(_TEXT, min_size=1, max_size=6))
@__import__("hypothesis").settings(max_examples=150, deadline=None)
def test_any_single_line_value_roundtrips(values):
    blocks = {"t": star.StarBlock("t", columns={"rlnText": np.array(values, dtype=str)},
                                  pairs={"rlnFirst": values[0]})}
    import tempfile
    from pathlib import Path
    with tempfile.TemporaryDirectory() as d:
        back = star.read_star(star.write_star(Path(d) / "h.star", blocks))["t"]
    assert list(back.columns["rlnText"]) == values
    assert back.pairs["rlnFirst"] == values[0]


def test_a_duplicate_column_of_a_large_loop_is_refused(tmp_path):
    """A body read in bulk (by columns) too: the second _rlnDefocusU would silently replace the first."""
    head = "data_particles\nloop_\n_rlnImageName #1\n_rlnDefocusU #2\n_rlnDefocusU #3\n"
    rows = "".join(f"{i + 1:06d}@s.mrcs 15000.5 14900.25\n" for i in range(star.BULK_BYTES // 30 + 10))
    path = tmp_path / "dup.star"
    path.write_text(head + rows)
    with pytest.raises(DataError, match=r"dup\.star, line 5: block data_particles: column _rlnDefocusU appears twice"):
        star.read_star(path)


@pytest.mark.parametrize("n", [3, 5000])  # the column writer, and the row kernel (a large loop)
def test_writing_a_text_value_that_is_not_utf8_names_the_file_column_and_row(tmp_path, n):
    """A micrograph path of an old latin-1 .cs: a STAR file is text; the error says where (it was a
    UnicodeDecodeError, which a job reported as 'an input file holds text that is not valid UTF-8')."""
    mics = np.array([b"m.mrc"] * n, dtype="S12")
    mics[n // 2] = b"caf\xe9 1.mrc"
    blocks = {"particles": star.StarBlock("particles", columns={
        "rlnImageName": np.array([f"{i + 1}@s.mrcs".encode() for i in range(n)]),
        "rlnMicrographName": mics, "rlnDefocusU": np.full(n, 1.5e4)})}
    with pytest.raises(DataError, match=rf"o\.star: block data_particles: _rlnMicrographName of row {n // 2 + 1} is "
                                        r"not UTF-8 text \(b'caf\\xe9 1\.mrc'\)"):
        star.write_star(tmp_path / "o.star", blocks)
    assert list(tmp_path.iterdir()) == []  # nothing left: the write was atomic
