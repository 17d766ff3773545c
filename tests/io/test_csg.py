"""CryoSPARC .csg group manifests."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from cryodesk.base.errors import DataError
from cryodesk.io import cs, csg

# As CryoSPARC v4 writes them next to a job's outputs (values shortened).
REAL_CSG = """\
created: 2024-03-05 10:11:12.131415
group:
  description: All particles that were processed, including alignments
  name: particles
  title: All particles
  type: particle
results:
  alignments3D:
    metafile: '>J350_particles_exported.cs'
    num_items: 456024
    type: particle.alignments3D
  blob:
    metafile: '>J350_particles_exported.cs'
    num_items: 456024
    type: particle.blob
  ctf:
    metafile: '>J350_passthrough_particles.cs'
    num_items: 456024
    type: particle.ctf
version: v4.4.1
"""


def test_read_real_layout(tmp_path):
    path = tmp_path / "J350_particles_exported.csg"
    path.write_text(REAL_CSG)
    g = csg.read_csg(path)
    assert (g.name, g.type, g.title, g.version) == ("particles", "particle", "All particles", "v4.4.1")
    assert sorted(g.results) == ["alignments3D", "blob", "ctf"]
    assert g.results["blob"].num_items == 456024
    assert g.metafile_path("ctf", path) == tmp_path / "J350_passthrough_particles.cs"
    assert g.metafiles(path) == [tmp_path / "J350_particles_exported.cs",
                                 tmp_path / "J350_passthrough_particles.cs"]


def test_write_roundtrip(tmp_path):
    data = cs.from_columns({"blob/path": ["a.mrc"], "blob/idx": [0], "ctf/df1_A": [1.0],
                            "location/center_x_frac": [0.5]})
    g = csg.group_for_dataset("particles", "particle", "J2_particles.cs", data, title="Particles")
    path = csg.write_csg(tmp_path / "J2_particles.csg", g)
    assert [p.name for p in tmp_path.iterdir()] == ["J2_particles.csg"]
    doc = yaml.safe_load(path.read_text())
    assert set(doc) == {"created", "group", "results", "version"}
    assert doc["results"]["blob"] == {"metafile": ">J2_particles.cs", "num_items": 1, "type": "particle.blob"}
    back = csg.read_csg(path)
    assert sorted(back.results) == ["blob", "ctf", "location"]
    assert back.metafile_path("ctf", path) == tmp_path / "J2_particles.cs"


@pytest.mark.parametrize("text,what", [
    ("group: [unclosed", "malformed .csg manifest"),
    ("results: {}\n", "malformed .csg manifest (missing or bad entry 'group')"),
    ("group: {name: p, type: particle}\nresults:\n  blob: {num_items: 3}\n", "'metafile'"),
    ("just a string", "malformed .csg manifest"),
])
def test_malformed(tmp_path, text, what):
    path = tmp_path / "bad.csg"
    path.write_text(text)
    with pytest.raises(DataError, match=r"bad\.csg: .*" + __import__("re").escape(what)):
        csg.read_csg(path)


def test_missing(tmp_path):
    with pytest.raises(DataError, match="group manifest not found"):
        csg.read_csg(tmp_path / "none.csg")


def test_load_group_joins_results_from_their_metafiles(tmp_path):
    """Import Result Group: each result's fields come from the metafile the manifest names."""

    uids = cs.new_uids(4)
    main = cs.from_columns({"uid": uids, "blob/path": ["s.mrc"] * 4, "blob/idx": np.arange(4),
                            "alignments3D/pose": np.ones((4, 3), np.float32)}, 4)
    cs.write_cs(tmp_path / "J5_particles.cs", main)
    order = np.array([2, 0, 3, 1])  # a passthrough file in another row order, with extra results
    passthrough = cs.from_columns({"uid": uids[order], "ctf/df1_A": np.arange(4.0)[order] * 100,
                                   "location/micrograph_path": ["m.mrc"] * 4,
                                   "alignments3D/pose": np.zeros((4, 3), np.float32)}, 4)
    (tmp_path / "sub").mkdir()
    cs.write_cs(tmp_path / "sub" / "J5_passthrough.cs", passthrough)
    text = """group: {name: particles, type: particle}
results:
  blob: {metafile: '>J5_particles.cs', num_items: 4, type: particle.blob}
  alignments3D: {metafile: '>J5_particles.cs', num_items: 4, type: particle.alignments3D}
  ctf: {metafile: '>sub/J5_passthrough.cs', num_items: 4, type: particle.ctf}
version: v4.4.1
"""
    (tmp_path / "J5_particles.csg").write_text(text)
    data, meta = csg.load_group(tmp_path / "J5_particles.csg")
    assert meta == tmp_path / "J5_particles.cs"
    np.testing.assert_array_equal(data["uid"], uids)
    np.testing.assert_array_equal(data["ctf/df1_A"], [0, 100, 200, 300])
    np.testing.assert_array_equal(data["alignments3D/pose"], 1)  # from its own metafile, not the passthrough
    assert "location/micrograph_path" not in data.dtype.names  # not a result of this group
    (tmp_path / "J5_particles.csg").write_text(text.replace("ctf: {metafile: '>sub/J5_passthrough.cs'",
                                                            "location: {metafile: '>J5_particles.cs'"))
    with pytest.raises(DataError, match=r"J5_particles\.cs: no location/ fields, though .*csg lists it"):
        csg.load_group(tmp_path / "J5_particles.csg")
    short = cs.from_columns({"uid": uids[:2], "ctf/df1_A": [1.0, 2.0]}, 2)
    cs.write_cs(tmp_path / "sub" / "J5_passthrough.cs", short)
    (tmp_path / "J5_particles.csg").write_text(text)
    with pytest.raises(DataError, match=r"result 'ctf' from .*J5_passthrough\.cs: passthrough dataset lacks 2"):
        csg.load_group(tmp_path / "J5_particles.csg")
    (tmp_path / "nob.csg").write_text("group: {name: g, type: particle}\nresults: {}\n")
    with pytest.raises(DataError, match="has no blob result"):
        csg.load_group(tmp_path / "nob.csg")
