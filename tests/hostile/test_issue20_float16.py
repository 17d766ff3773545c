"""Issue 20, item 8: a float16 restack of pixels beyond ±65504 must fail, not write infinity.

float16 holds at most 65504; ``astype(float16)`` (and the numba conversion)
turn anything from 65520 up into ±inf, and the restack used to complete with
those infinities in its stacks.  Now the job fails with an error naming the
particle (uid, row) and its source stack and image, leaves nothing in its
directory, and ``output_f16_clip`` clips instead when asked for.
"""

from __future__ import annotations

import json
from pathlib import Path

import mrcfile
import numpy as np

from cryodesk.core import jobs, runner
from cryodesk.db.models import Job
from cryodesk.io.cs import from_columns, write_cs
from cryodesk.io.mrc import write_stack


def _particles(project_dir, big: float):
    """Two stacks of 8x8 float32; image 2 of the second has one pixel ``big``."""
    stacks = project_dir / "raw"
    stacks.mkdir()
    rng = np.random.default_rng(3)
    for k in range(2):
        x = rng.standard_normal((4, 8, 8)).astype(np.float32)
        if k == 1:
            x[2, 3, 4] = big
        write_stack(stacks / f"mic_{k}.mrc", x)
    data = from_columns({"blob/path": [f"mic_{k}.mrc" for k in (0, 0, 1, 1, 1)],
                         "blob/idx": np.array([0, 3, 0, 2, 3], np.uint32),
                         "blob/shape": np.array([[8, 8]] * 5, np.uint32),
                         "blob/psize_A": np.full(5, 1.5, np.float32)})
    write_cs(stacks / "particles.cs", data)
    return stacks / "particles.cs", data


def _import(project, meta):
    imp = jobs.create_job(project, "import_particles", "W1", params={"particle_meta_path": str(meta)})
    runner.run_job(project, imp)
    assert Job.get_by_id(imp.id).status == "completed", Job.get_by_id(imp.id).error
    return imp


def test_float16_overflow_fails_naming_the_particle_and_writes_nothing(project):
    pdir = Path(project.directory)
    meta, data = _particles(pdir, 1.0e5)
    imp = _import(project, meta)
    job = jobs.create_job(project, "restack_particles", "W1", [jobs.InputSpec("particles", imp.uid)],
                          params={"output_f16": True, "particles_per_file": 2})
    runner.run_job(project, job)
    done = Job.get_by_id(job.id)
    assert done.status == "failed"
    err = done.error
    assert f"particle uid {int(data['uid'][3])} (row 3" in err, err
    assert "image 2 of" in err and "mic_1.mrc" in err and "100000" in err and "float16" in err, err
    assert "output_f16_clip" in err, err
    job_dir = pdir / job.uid
    left = sorted(p.name for p in job_dir.rglob("*") if p.suffix in (".mrc", ".cs") or p.name.startswith("."))
    assert left == [], left  # no stack (not even the first, complete one), no .cs, no temp file


def test_clipping_to_the_float16_range_only_when_asked_for(project):
    pdir = Path(project.directory)
    meta, data = _particles(pdir, -7.0e4)
    imp = _import(project, meta)
    # clipping only when asked for
    job = jobs.create_job(project, "restack_particles", "W1", [jobs.InputSpec("particles", imp.uid)],
                          params={"output_f16": True, "output_f16_clip": True})
    runner.run_job(project, job)
    done = Job.get_by_id(job.id)
    assert done.status == "completed", done.error
    out = np.load(pdir / job.uid / "restack_particles.cs")
    row = out[3]
    with mrcfile.open(pdir / row["blob/path"].decode(), permissive=True) as m:
        img = np.array(m.data[int(row["blob/idx"])])
    assert img.dtype == np.float16 and np.isfinite(img).all()
    assert img[3, 4] == -65504.0
    results = json.loads((pdir / job.uid / "results.json").read_text())
    assert results["clipped_f16"] == 1
