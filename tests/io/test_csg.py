"""CryoSPARC .csg group manifests."""

from __future__ import annotations

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
