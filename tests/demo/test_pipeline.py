"""The whole demo chain on the default small dataset, with its time budget."""

from __future__ import annotations

import time

import numpy as np

from cryodesk.demo import simulate_dataset
from cryodesk.demo.pipeline import run_demo_pipeline


def test_small_demo_pipeline_end_to_end(tmp_path):
    t0 = time.perf_counter()
    truth = simulate_dataset(tmp_path / "raw", "small", seed=11)
    jobs = run_demo_pipeline(tmp_path / "project", tmp_path / "raw")
    elapsed = time.perf_counter() - t0
    assert elapsed < 60, f"demo pipeline took {elapsed:.1f}s"  # budget: well under 2 minutes
    assert [c.uid for c in jobs.values()] == [f"J{i}" for i in range(1, 8)]
    n_true = sum(len(m["particles"]) for m in truth["micrographs"])
    n_extracted = jobs["extract_particles"].results["n_particles"]
    assert 0.9 * n_true <= n_extracted <= 1.2 * n_true
    assert 0 < jobs["select_2d"].results["n_selected"] <= n_extracted
    # every recorded path is project-relative and inside its own job directory
    for ctx in jobs.values():
        for _, ref in ctx.outputs:
            assert ref.path.startswith(ctx.uid + "/")
            assert (tmp_path / "project" / ref.path).exists()
    classes = np.load(tmp_path / "project" / "J6" / "class2d" / "iter_009_classes.cs")
    assert classes["class2D/size"].sum() == n_extracted
