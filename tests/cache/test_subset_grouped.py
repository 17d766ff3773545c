"""The grouped (per-stack) subset API gives exactly what the per-particle one gives."""

from __future__ import annotations

import numpy as np

from cryodesk.cache.subset import SubsetMap, subset_spec, subset_spec_grouped
from cryodesk.io.mrc import write_stack


def test_grouped_spec_and_locate_match_the_per_particle_ones(tmp_path):
    rng = np.random.default_rng(5)
    stacks = []
    for k in range(6):  # more than 4 stacks: the one-file-system-sync path of the subset writer
        path = tmp_path / f"s{k}.mrc"
        write_stack(path, rng.standard_normal((20, 8, 8)).astype(np.float32), 1.0)
        stacks.append(str(path))
    n = 50
    inv = rng.integers(0, len(stacks), n)
    idx = rng.integers(0, 20, n)
    # duplicates in the short list of sources are allowed
    sources = stacks + [stacks[2]]
    inv_dup = np.where(inv == 2, len(stacks), inv)
    per_particle = subset_spec(np.asarray(stacks)[inv], idx, per_file=16)
    grouped = subset_spec_grouped(sources, inv_dup, idx, per_file=16)
    assert grouped.key == per_particle.key and grouped.sources == per_particle.sources
    for a, b in zip(grouped.idx, per_particle.idx):
        np.testing.assert_array_equal(a, b)
    smap = SubsetMap(per_particle, tmp_path / "packed")
    p1, i1 = smap.locate_many(np.asarray(stacks)[inv], idx)
    p2, i2 = smap.locate_grouped(sources, inv_dup, idx)
    assert [str(p) for p in p1] == [str(p) for p in p2]
    np.testing.assert_array_equal(i1, i2)
