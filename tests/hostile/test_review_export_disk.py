"""An export whose copies do not fit on the disk (a real small tmpfs): it fails naming the file it was
writing (its own copy, not the other job's stack it read), and leaves nothing of itself behind."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from mounts import small_tmpfs

from cryodesk.core import jobs, projects, runner
from cryodesk.io import cs, mrc


def test_a_copy_export_on_a_full_disk_names_its_own_file(database, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    rng = np.random.default_rng(3)
    for k in range(4):
        mrc.write_stack(raw / f"s{k}.mrc", rng.normal(size=(100, 16, 16)).astype(np.float32), voxel_size=1.1)
    n = 40
    cs.write_cs(raw / "p.cs", cs.from_columns({"uid": np.arange(n, dtype=np.uint64) + 1,
                                               "blob/path": np.array([f"s{k % 4}.mrc" for k in range(n)], "S"),
                                               "blob/idx": (np.arange(n) // 4).astype(np.uint32)}, n))
    with small_tmpfs(tmp_path, "300k") as fs:
        p = projects.create_project("Full", fs / "proj")
        projects.create_workspace(p, "main")
        imp = jobs.create_job(p, "import_particles", "W1", params={"particle_meta_path": str(raw / "p.cs")})
        assert runner.run_job(p, imp).status == "completed"
        exp = jobs.create_job(p, "export_particles", "W1", inputs=[jobs.InputSpec("particles", imp.uid)],
                              params={"format": "relion", "copy_stacks": True})  # 400 KiB of copies
        done = runner.run_job(p, exp)
        assert done.status == "failed"
        assert done.error.startswith(f"No space left on device while writing {exp.uid}/exported/stacks/s"), done.error
        assert imp.uid not in done.error
        assert sorted(q.name for q in (Path(p.directory) / exp.uid).iterdir()) == ["job.json", "job.log"]
