"""The image names of a large table as ``(idx0, distinct paths, inverse)`` (``star_images.parse_image_names_coded``,
what the STAR import hands to its links and writes from): exactly ``unique_first`` of what
``parse_image_names`` gives (and its numpy reference), with the same errors; the kernel that finds where the
path changes (``_path_runs``) equals ``runs.run_starts`` of the paths; a coded column in ``cs_columns.Columns``
is the column itself."""

from __future__ import annotations

import numpy as np
import pytest

from cryodesk.base.errors import DataError
from cryodesk.io import cs, star_images, star_numbers
from cryodesk.io.cs_columns import Columns
from cryodesk.io.runs import run_starts, unique_first

pytestmark = pytest.mark.skipif(star_numbers.implementation() != "numba", reason="the kernels' path")
RNG = np.random.default_rng(4242)


@pytest.fixture(autouse=True)
def small_sizes(monkeypatch):
    monkeypatch.setattr(star_numbers, "MIN_SIZE", 1)


def _names(n: int, shuffle: bool = False) -> np.ndarray:
    stacks = [f"Extract/job{k:03d}/FoilHole_{k}_Data.mrcs" for k in range(7)] + ["a", "ab", "Extract/job000/x"]
    which = np.sort(RNG.integers(0, len(stacks), n))
    if shuffle:
        which = RNG.permutation(which)
    return np.array([f"{RNG.integers(1, 10**6):06d}@{stacks[k]}" for k in which]).astype("S")


CASES = [[], [b"single.mrc"], [b"1@a"], [b"x" * 90], [b"000000000000000012@p"], [b"007@" + b"p" * 70],
         [b"1@a", b"2@a", b"3@ab", b"4@a"], [b"1@Extract/job000/FoilHole_0_Data.mrcs"]]


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("extra", CASES)
def test_coded_names_are_unique_first_of_the_paths(extra, shuffle):
    vals = _names(300, shuffle)
    vals = np.concatenate([vals[:100], np.array(extra, dtype="S"), vals[100:]]) if extra else vals
    idx, table, inverse = star_images.parse_image_names_coded(vals)
    for ref in (star_images.parse_image_names, star_images.parse_image_names_numpy):
        want_idx, want_paths = ref(vals)
        want_table, want_inverse = unique_first(want_paths)
        assert idx.dtype == want_idx.dtype and table.dtype == want_table.dtype == want_paths.dtype
        assert np.array_equal(idx, want_idx) and np.array_equal(table, want_table)
        assert inverse.dtype == want_inverse.dtype and np.array_equal(inverse, want_inverse)
        assert np.array_equal(table[inverse], want_paths)


@pytest.mark.parametrize("bad", [b"0@a.mrcs", b"@a.mrcs", b"1@", b"5.5@a.mrcs", b"2147483648@a", b"", b"1@a\x00b"])
def test_coded_names_refuse_with_the_reference_error(bad):
    vals = np.concatenate([_names(20), np.array([bad], dtype="S"), _names(3)])
    with pytest.raises(DataError) as ref:
        star_images.parse_image_names_numpy(vals, "f.star")
    with pytest.raises(DataError) as got:
        star_images.parse_image_names_coded(vals, "f.star")
    assert str(got.value) == str(ref.value) and "row 21" in str(got.value)


def test_path_runs_kernel_equals_run_starts():
    from cryodesk.io import _star_read_kernels as rk

    for vals in (_names(500), _names(500, shuffle=True), _names(1), np.array([b"1@a", b"2@a", b"3@aa", b"1@a",
                                                                            b"9@a"], dtype="S")):
        chars = np.ascontiguousarray(vals).view(np.uint8).reshape(len(vals), vals.dtype.itemsize)
        ok, _, start, length, _ = rk._image_names(chars)
        assert ok
        paths = star_images.parse_image_names_numpy(vals)[1]
        assert np.array_equal(rk._path_runs(chars, start, length), run_starts(paths))


def test_a_coded_column_is_the_column():
    n = 500
    idx, table, inverse = star_images.parse_image_names_coded(_names(n, shuffle=True))
    cols = {"uid": cs.new_uids(n), "blob/path": table[inverse], "blob/idx": idx}
    want = cs.from_columns(cols, n)
    got = Columns({**cols, "blob/path": (table, inverse)}, n)
    assert got.dtype == want.dtype and got.to_array().tobytes() == want.tobytes()
    assert np.array_equal(got["blob/path"], want["blob/path"])
    with pytest.raises(ValueError, match="coded column"):
        Columns({**cols, "blob/path": (table, inverse[:-1])}, n)
