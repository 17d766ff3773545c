"""CryoSPARC .cs datasets: read/write, cryosparc-tools as an oracle, CSDAT, passthrough, ParticleSet."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from cryodesk.base.errors import DataError
from cryodesk.io import cs

try:
    from cryosparc.dataset import CSDAT_FORMAT, Dataset
except ImportError:  # pragma: no cover - test-time oracle only
    Dataset = None
needs_tools = pytest.mark.skipif(Dataset is None, reason="cryosparc-tools (test oracle) is not installed")


def _particles(n=5):
    return cs.from_columns({
        "blob/path": [f"J3/extract/mic_{i % 2}.mrc" for i in range(n)],
        "blob/idx": np.arange(n),
        "blob/shape": [64, 64],
        "blob/psize_A": 1.2,
        "ctf/type": "imported",
        "ctf/df1_A": np.linspace(1e4, 2e4, n),
        "ctf/tetra_A": np.arange(4 * n, dtype=np.float32).reshape(n, 4),
        "alignments3D/pose": np.ones((n, 3), np.float32),
    }, n)


def test_from_columns_canonical_dtypes():
    d = _particles()
    assert d.dtype["blob/idx"] == np.dtype("<u4")
    assert d.dtype["blob/shape"] == np.dtype(("<u4", (2,)))
    assert d.dtype["ctf/df1_A"] == np.dtype("<f4")
    assert d.dtype["blob/path"].kind == "S"
    assert len(np.unique(d["uid"])) == 5


def test_write_read_roundtrip(tmp_path):
    d = _particles()
    path = cs.write_cs(tmp_path / "p.cs", d)
    assert [p.name for p in tmp_path.iterdir()] == ["p.cs"]  # no .npy suffix, no temp left
    back = cs.read_cs(path)
    assert back.dtype == d.dtype
    for f in d.dtype.names:
        np.testing.assert_array_equal(back[f], d[f])
    sub = cs.read_cs(path, fields=["blob/idx"])
    assert sub.dtype.names == ("uid", "blob/idx")
    assert len(cs.read_cs(path, mmap=True)) == 5


def test_str_object_columns_written_as_bytes(tmp_path):
    d = np.zeros(2, dtype=[("uid", "<u8"), ("blob/path", object)])
    d["blob/path"] = ["ä.mrc", "b.mrc"]
    back = cs.read_cs(cs.write_cs(tmp_path / "o.cs", d))
    assert back.dtype["blob/path"].kind == "S"
    assert cs.as_str(back["blob/path"]) == ["ä.mrc", "b.mrc"]


@needs_tools
def test_cryosparc_tools_reads_what_we_write(tmp_path):
    d = _particles()
    ds = Dataset.load(cs.write_cs(tmp_path / "p.cs", d))
    assert len(ds) == 5
    assert list(ds["blob/path"]) == cs.as_str(d["blob/path"])
    np.testing.assert_array_equal(ds["blob/idx"], d["blob/idx"])
    np.testing.assert_array_equal(ds["ctf/tetra_A"], d["ctf/tetra_A"])
    np.testing.assert_array_equal(ds["uid"], d["uid"])


@needs_tools
def test_real_cs_roundtrip_through_tools(realdata_dir, tmp_path):
    orig = cs.read_cs(realdata_dir / "empiar_10076_7.cs")
    assert len(orig) == 7 and len(orig.dtype.names) == 24
    ds = Dataset.load(cs.write_cs(tmp_path / "r.cs", orig))
    for f in orig.dtype.names:
        want = cs.as_str(orig[f]) if orig.dtype[f].kind == "S" else orig[f]
        np.testing.assert_array_equal(np.asarray(ds[f]).tolist(), np.asarray(want).tolist())


@needs_tools
def test_wide_and_empty_datasets(tmp_path):
    # (cryosparc-tools 5.0.3 itself corrupts its heap on hundreds of keys longer
    # than 52 characters, so the names stay short, as CryoSPARC's own are.)
    names = [f"extra/field_{k:04d}" for k in range(3000)]
    wide = cs.from_columns({f: np.full(3, k, np.float32) for k, f in enumerate(names)}, 3)
    path = cs.write_cs(tmp_path / "wide.cs", wide)
    assert path.read_bytes()[6] == 2  # header > 64 KiB: .npy format 2.0
    ds = Dataset.load(path)
    assert len(ds.fields()) == 3001 and ds[names[-1]][0] == 2999
    back = cs.read_cs(path)
    assert len(back.dtype.names) == 3001 and back[names[-1]][2] == 2999
    empty = _particles(0)
    ds = Dataset.load(cs.write_cs(tmp_path / "empty.cs", empty))
    assert len(ds) == 0 and "blob/path" in ds.fields()
    assert len(cs.read_cs(tmp_path / "empty.cs")) == 0


@needs_tools
@pytest.mark.parametrize("n", [0, 3, 3000])
def test_read_csdat(tmp_path, n):
    d = _particles(n)
    ds = Dataset.load(cs.write_cs(tmp_path / "a.cs", d))
    ds.save(tmp_path / "b.cs", format=CSDAT_FORMAT)
    assert (tmp_path / "b.cs").read_bytes()[:6] == b"\x95CSDAT"
    back = cs.read_cs(tmp_path / "b.cs")
    assert len(back) == n
    for f in d.dtype.names:
        np.testing.assert_array_equal(back[f], d[f])
    assert cs.read_cs(tmp_path / "b.cs", fields=["ctf/df1_A"]).dtype.names == ("uid", "ctf/df1_A")


def test_malformed_cs(tmp_path):
    with pytest.raises(DataError, match=r"gone\.cs: dataset file not found"):
        cs.read_cs(tmp_path / "gone.cs")
    (tmp_path / "text.cs").write_text("hello, I am not a dataset")
    with pytest.raises(DataError, match=r"text\.cs: malformed CryoSPARC dataset: not a NumPy or CSDAT"):
        cs.read_cs(tmp_path / "text.cs")
    good = cs.write_cs(tmp_path / "good.cs", _particles())
    raw = good.read_bytes()
    (tmp_path / "trunc.cs").write_bytes(raw[: len(raw) - 40])
    with pytest.raises(DataError, match=r"trunc\.cs: malformed CryoSPARC dataset"):
        cs.read_cs(tmp_path / "trunc.cs")
    np.save(tmp_path / "plain.npy", np.arange(4))
    (tmp_path / "plain.npy").rename(tmp_path / "plain.cs")
    with pytest.raises(DataError, match=r"plain\.cs: .*expected a 1-D structured array"):
        cs.read_cs(tmp_path / "plain.cs")
    np.save(tmp_path / "nouid.npy", np.zeros(2, dtype=[("blob/idx", "<u4")]))
    (tmp_path / "nouid.npy").rename(tmp_path / "nouid.cs")
    with pytest.raises(DataError, match=r"nouid\.cs: .*no 'uid' field"):
        cs.read_cs(tmp_path / "nouid.cs")
    (tmp_path / "bad.cs").write_bytes(b"\x95CSDAT" + b"\x10\x00\x00\x00{not json")
    with pytest.raises(DataError, match=r"bad\.cs: malformed CryoSPARC dataset \(CSDAT"):
        cs.read_cs(tmp_path / "bad.cs")


def test_join_on_uid_passthrough():
    main = _particles(4)
    extra = cs.from_columns({"uid": main["uid"][::-1], "location/center_x_frac": [0.4, 0.3, 0.2, 0.1],
                             "blob/idx": [9, 9, 9, 9]})
    joined = cs.join_on_uid(main, extra)
    np.testing.assert_allclose(joined["location/center_x_frac"], [0.1, 0.2, 0.3, 0.4])
    np.testing.assert_array_equal(joined["blob/idx"], main["blob/idx"])  # main wins
    with pytest.raises(DataError, match="lacks 1 of the 4 particle uids"):
        cs.join_on_uid(main, extra[:3])


def test_resolve_blob_path(tmp_path):
    assert cs.resolve_blob_path(b"J1/a.mrc", tmp_path) == tmp_path / "J1/a.mrc"
    assert cs.resolve_blob_path(">stacks/a.mrc", tmp_path, Path("/x/exports")) == Path("/x/exports/stacks/a.mrc")
    assert cs.resolve_blob_path("/abs/a.mrc", tmp_path) == Path("/abs/a.mrc")


def test_particle_set_groups(tmp_path):
    d = _particles(5)
    path = cs.write_cs(tmp_path / "p.cs", d)
    pt = cs.write_cs(tmp_path / "pt.cs", cs.from_columns({"uid": d["uid"], "location/center_y_frac": 0.5}))
    ps = cs.ParticleSet.load(path, base_dir=tmp_path / "proj", passthrough=[pt])
    assert len(ps) == 5 and "location/center_y_frac" in ps.data.dtype.names
    groups = ps.groups()
    assert list(groups) == [tmp_path / "proj/J3/extract/mic_0.mrc", tmp_path / "proj/J3/extract/mic_1.mrc"]
    np.testing.assert_array_equal(groups[tmp_path / "proj/J3/extract/mic_1.mrc"], [1, 3])
    assert ps.stack_paths()[3] == tmp_path / "proj/J3/extract/mic_1.mrc"
    nb = cs.write_cs(tmp_path / "nb.cs", cs.from_columns({"ctf/df1_A": [1.0]}))
    with pytest.raises(DataError, match="not a particle dataset"):
        cs.ParticleSet.load(nb)
