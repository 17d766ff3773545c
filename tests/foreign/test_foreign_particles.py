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
