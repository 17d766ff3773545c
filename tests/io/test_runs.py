"""``io.runs``: the word-wise run finder gives numpy's own string comparison, row for row."""

from __future__ import annotations

import numpy as np
import pytest

from cryodesk.io import cs, runs


def _numpy_starts(values):
    values = np.asarray(values)
    return np.concatenate([[True], values[1:] != values[:-1]]) if len(values) else np.zeros(0, bool)


@pytest.mark.parametrize("dtype", ["S16", "S17", "S139", "U4", "U9", "U37"])
def test_run_starts_is_numpys_compare(dtype, monkeypatch):
    monkeypatch.setattr(runs, "_CHUNK_ROWS", 64)  # many chunk boundaries, runs across them
    rng = np.random.default_rng(11)
    width = int(dtype[1:])
    for n in (0, 1, 2, 3, 64, 65, 129, 1000):
        # values that differ only in their last character, in a middle one, or by trailing NULs
        stems = ["x" * (width - 1) + c for c in "ab"] + ["", "a", "a\0b", "y" * (width // 2)]
        values = np.array([stems[i] for i in np.repeat(rng.integers(0, len(stems), n), 1)[:n]], dtype=dtype)
        values = np.repeat(values, rng.integers(1, 4, n))[:n] if n else values
        np.testing.assert_array_equal(runs.run_starts(values), _numpy_starts(values))


def test_run_starts_on_a_field_of_a_memory_map(tmp_path):
    rng = np.random.default_rng(5)
    n = 3000
    paths = np.array([f"J3/extract/{k:020d}_FoilHole_particles.mrc".encode() for k in range(40)], dtype="S70")
    data = np.zeros(n, dtype=[("uid", "<u8"), ("blob/path", "S70"), ("blob/idx", "<u4")])
    data["blob/path"] = paths[np.sort(rng.integers(0, 40, n))]
    data["blob/path"][1000:1100] = data["blob/path"][1000:1100][rng.permutation(100)]
    np.save(tmp_path / "d.npy", data)
    mapped = np.load(tmp_path / "d.npy", mmap_mode="r")["blob/path"]  # strided (a field), read-only
    np.testing.assert_array_equal(runs.run_starts(mapped), _numpy_starts(mapped))
    table, inv = cs.unique_first(mapped)
    np.testing.assert_array_equal(table[inv], data["blob/path"])
    _, first = np.unique(data["blob/path"], return_index=True)
    np.testing.assert_array_equal(table, data["blob/path"][np.sort(first)])
