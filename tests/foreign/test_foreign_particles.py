"""A RELION job's particles imported into a cryodesk project (stacks validated and linked), then restackable."""

from __future__ import annotations

import shutil

import pytest

from cryodesk.base.errors import UsageError
from cryodesk.core import jobs, projects, runner
from cryodesk.core.foreign.particles import import_particles, particle_source
from cryodesk.core.foreign.service import open_project

from .relion_fixtures import build_project


def test_relion_particles_into_a_cryodesk_project(database, tmp_path, realdata_dir):
    import cryodesk.jobs  # noqa: F401  (registers the built-in job types)

    root = build_project(tmp_path / "rel", "4.0")
    # real particles where the Extract job's particles.star points
    text = (realdata_dir / "relion31.star").read_text().replace("relion31.mrcs", "Extract/job004/Movies/relion31.mrcs")
    (root / "Extract/job004/particles.star").write_text(text)
    shutil.copy(realdata_dir / "relion31.mrcs", root / "Extract/job004/Movies/relion31.mrcs")
    rel, _ = open_project(root)
    meta, base = particle_source(rel, "J4")
    assert meta.endswith("Extract/job004/particles.star") and base == str(root.resolve())
    dest = projects.create_project("mine", tmp_path / "mine")
    projects.create_workspace(dest, "main")
    with pytest.raises(UsageError, match="into a cryodesk project"):
        import_particles(rel, rel, "J4")
    job = import_particles(dest, rel, "J4")
    done = runner.run_job(dest, job)
    assert done.status == "completed", done.error
    assert jobs.get_job(dest, job.uid).title.startswith("P1 J4 particles")
    import numpy as np

    cs = [f for f in (tmp_path / "mine" / job.directory).rglob("*.cs")]
    assert cs and len(np.load(cs[0])) == 5  # the 5 real particles, their stacks linked
    assert not list(root.rglob("job.json"))  # nothing written into the RELION project


def _tree_state(root):
    import hashlib

    return {str(p.relative_to(root)): (p.lstat().st_size, p.lstat().st_mtime_ns,
                                        hashlib.sha1(p.read_bytes()).hexdigest() if p.is_file() else "")
            for p in sorted(root.rglob("*"))}


def test_cryosparc_particles_into_a_cryodesk_project_then_restack(database, tmp_path, realdata_dir):
    """A CryoSPARC extraction's particles (the real 7-particle EMPIAR-10076 .cs and stack, paths relative to
    the CryoSPARC project) are imported, restacked, and the CryoSPARC directory keeps every byte."""
    import json

    import numpy as np

    import cryodesk.jobs  # noqa: F401  (registers the built-in job types)
    from cryodesk.io.cs import read_cs
    from cryodesk.io.mrc import read_images

    from .cryosparc_fixtures import build

    root = build(tmp_path / "cs", realdata_dir / "cryosparc_job_docs")
    j4 = root / "J4"
    (j4 / "extract").mkdir(parents=True)
    shutil.copy(realdata_dir / "empiar_10076_7.mrc", j4 / "extract" / "empiar_10076_7.mrc")
    data = read_cs(realdata_dir / "empiar_10076_7.cs")
    data = data.copy()
    data["blob/path"] = np.array([b"J4/extract/empiar_10076_7.mrc"] * len(data), dtype=data.dtype["blob/path"])
    with open(j4 / "J4_particles.cs", "wb") as fh:
        np.save(fh, data)
    (j4 / "job.json").write_text(json.dumps({
        "uid": "J4", "project_uid": "P1", "job_type": "extract_micrographs_multi", "status": "completed",
        "workspace_uids": ["W1"], "title": "Extract",
        "output_results": [{"group_name": "particles", "name": "blob", "versions": [0],
                            "metafiles": ["J4/J4_particles.cs"], "num_items": [7]}]}))
    before = _tree_state(root)
    src, _ = open_project(root)
    meta, base = particle_source(src, "J4")
    assert meta == str(root.resolve() / "J4/J4_particles.cs") and base == str(root.resolve())
    dest = projects.create_project("mine", tmp_path / "mine")
    projects.create_workspace(dest, "main")
    imp = import_particles(dest, src, "J4")
    assert runner.run_job(dest, imp).status == "completed"
    rs = jobs.create_job(dest, "restack_particles", "W1", [jobs.InputSpec("particles", imp.uid)],
                         {"particles_per_file": 3})
    done = runner.run_job(dest, rs)
    assert done.status == "completed", done.error
    out = sorted((tmp_path / "mine" / rs.directory).rglob("*.cs"))
    restacked = read_cs(out[-1])
    assert len(restacked) == 7
    # the restacked images are the original ones, in order (read back through the stacks written)
    originals = read_images(realdata_dir / "empiar_10076_7.mrc")
    got = np.concatenate([read_images(tmp_path / "mine" / p.decode(), [int(i)])
                          for p, i in zip(restacked["blob/path"], restacked["blob/idx"])])
    assert np.array_equal(got, originals)
    assert _tree_state(root) == before  # not a byte written into the CryoSPARC project
