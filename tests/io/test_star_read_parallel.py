"""The STAR read side's faster paths (issue 19) give exactly what the paths before them gave.

* ``star_split.split_body`` (two threads) equals ``star_numbers.split_columns``
  (one pass) on every cut of plain and non-plain bodies, and counts the newlines;
  ``find_body_end`` equals ``body_end`` wherever the end falls (either half,
  the first window, the cut).
* ``star_images.parse_image_names`` (the kernel) equals its numpy reference,
  paths' width included, and every name the reference refuses is refused with
  the reference's error.
* ``relion_numbers.parse_number_columns`` gives ``column_floats`` of each number
  column, leaves a bad one as text (so the error is the one before), and
  ``star_to_cs`` gives the same dataset with and without the threads.
"""

from __future__ import annotations

import numpy as np
import pytest

from cryodesk.base.errors import DataError
from cryodesk.io import relion, relion_numbers, star, star_images, star_numbers, star_split

pytestmark = pytest.mark.skipif(star_numbers.implementation() != "numba", reason="numba kernels not available")

RNG = np.random.default_rng(1919)


@pytest.fixture(autouse=True)
def small_sizes(monkeypatch):
    monkeypatch.setattr(star_numbers, "MIN_SIZE", 1)
    monkeypatch.setattr(star_split, "MIN_PARALLEL", 1)


def _rows(n: int) -> bytes:
    idx = RNG.integers(1, 500, n)
    vals = RNG.uniform(-1e4, 1e4, n)
    return "".join(f"{i:06d}@Extract/job{i % 7}/s.mrcs {v!r} {i % 3}\n" for i, v in zip(idx, vals)).encode()


def _bodies() -> list[bytes]:
    rows = _rows(40)
    return [rows, rows.replace(b" 1\n", b"\n 1\n"), rows.replace(b"\n", b"\r\n"), rows.replace(b" ", b"\t  "),
            rows + b"3@x 1", rows[:200] + b"'q x'" + rows[200:], rows[:-30] + b" #c\n" + rows[-30:],
            rows[:300] + b" Data_x " + rows[300:], rows[:300] + b"\x0b" + rows[300:], rows[:250] + b"_x " + rows[250:],
            rows + "ä 1 2\n".encode(), b"", b" \n\n", b"1 2 3"]


@pytest.mark.parametrize("k", range(14))
def test_split_body_equals_one_pass_on_every_cut(monkeypatch, k):
    body = _bodies()[k]
    buf = np.frombuffer(body, dtype=np.uint8)
    want = star_numbers.split_columns(buf, 3)
    for threads in (2, 3, 7):
        monkeypatch.setattr(star_split, "THREADS", threads)
        got, lines = star_split.split_body(buf, 3)
        if want is None:
            assert got is None, threads
            continue
        assert got is not None and lines == (body.count(b"\n") if body else None), threads
        assert [g.dtype for g in got] == [w.dtype for w in want]
        assert all(np.array_equal(g, w) for g, w in zip(got, want)), threads


def test_find_body_end_equals_one_search(monkeypatch):
    rows = b"1@a.mrcs 1.5\n2@b.mrcs data_x\n" * 40
    for window in (1, 64, 500, 10**6):
        monkeypatch.setattr(star_split, "MIN_PARALLEL", window)
        for at in (0, 5, 333, 600, 601, 602, 700, len(rows) - 3, len(rows)):
            for word in (b"\n_rlnX #1\n", b"\ndata_next\n", b"\nloop_\n", b"\nDATA_no\n", b"\nloop", b""):
                raw = rows[:at] + word + rows[at:]
                assert star_split.find_body_end(raw, 3) == star_numbers.body_end(raw, 3), (window, at, word)


def _names(n: int) -> np.ndarray:
    stacks = [f"Extract/job{k:03d}/FoilHole_{k}_Data.mrcs" for k in range(5)]
    return np.array([f"{RNG.integers(1, 10**6):06d}@{stacks[i % 5]}" for i in range(n)]).astype("S")


@pytest.mark.parametrize("extra", [[], [b"single.mrc"], [b"1@a"], [b"x" * 90], [b"000000000000000012@p"],
                                   [b"007@" + b"p" * 70]])
def test_image_names_kernel_equals_numpy(extra):
    vals = np.concatenate([_names(50), np.array(extra, dtype="S")]) if extra else _names(50)
    idx, paths = star_images.parse_image_names(vals)
    want_idx, want_paths = star_images.parse_image_names_numpy(vals)
    assert idx.dtype == want_idx.dtype and paths.dtype == want_paths.dtype
    np.testing.assert_array_equal(idx, want_idx)
    np.testing.assert_array_equal(paths, want_paths)


@pytest.mark.parametrize("bad", [b"0@a.mrcs", b"@a.mrcs", b"1@", b"5.5@a.mrcs", b"x1@a", b"2147483648@a", b"",
                                 b"1234567890123456789@a", b"-1@a", b"1@a\x00b"])
def test_image_names_kernel_refuses_with_the_reference_error(bad):
    vals = np.concatenate([_names(20), np.array([bad], dtype="S"), _names(3)])
    with pytest.raises(DataError) as ref:
        star_images.parse_image_names_numpy(vals, "f.star")
    with pytest.raises(DataError) as got:
        star_images.parse_image_names(vals, "f.star")
    assert str(got.value) == str(ref.value) and "row 21" in str(got.value)


def _star(tmp_path, optics_voltage: str = "300", defocus: str | None = None):
    n = 60
    rows = []
    for i in range(n):
        d = defocus if (defocus is not None and i == 40) else f"{RNG.uniform(5000, 30000):.3f}"
        rows.append(f"{i + 1:06d}@s{i % 3}.mrcs m{i % 4}.mrc {1 + i % 2} {d} {RNG.uniform(-180, 180)!r} "
                    f"{RNG.uniform(0, 180)!r} {RNG.uniform(-180, 180)!r} {RNG.uniform(-3, 3):.6f} "
                    f"{RNG.uniform(-3, 3):.6f} {1 + i % 2} {3 + i % 2}\n")
    path = tmp_path / "p.star"
    path.write_text(
        "data_optics\nloop_\n_rlnOpticsGroup\n_rlnVoltage\n_rlnImagePixelSize\n_rlnSphericalAberration\n"
        "_rlnImageSize\n_rlnMagMat00\n_rlnOpticsGroupName\n_rlnMicrographOriginalPixelSize\n"
        f"1 {optics_voltage} 1.06 2.7 64 1.001 og1 0.53\n2 200 1.2 2.7 64 0.999 og2 0.6\n\n"
        "data_particles\nloop_\n_rlnImageName\n_rlnMicrographName\n_rlnOpticsGroup\n_rlnDefocusU\n_rlnAngleRot\n"
        "_rlnAngleTilt\n_rlnAnglePsi\n_rlnOriginXAngst\n_rlnOriginYAngst\n_rlnRandomSubset\n_rlnClassNumber\n"
        + "".join(rows))
    return path


def test_number_columns_equal_column_floats(tmp_path, monkeypatch):
    monkeypatch.setattr(star, "BULK_BYTES", 16)
    blocks = star.read_star(_star(tmp_path))
    parts, optics = relion.particle_block(blocks)
    cols, rows, spread = relion.merge_optics_rows(parts, optics, "p.star", relion.ConversionReport("t"))
    got = relion_numbers.parse_number_columns(cols, rows, spread)
    assert {"rlnVoltage", "rlnDefocusU", "rlnAngleRot", "rlnClassNumber", "rlnMagMat00"} <= set(got)
    for lab, values in got.items():
        np.testing.assert_array_equal(values, star.column_floats(cols[lab], lab), err_msg=lab)
    assert "rlnImageName" not in got and "rlnMicrographName" not in got


def _as_before(monkeypatch):
    """star_to_cs as it was: every optics column spread as text, every number parsed where it is used."""
    eager = relion.merge_optics_rows
    monkeypatch.setattr(relion, "merge_optics_rows", lambda *a, lazy=False: eager(*a))
    monkeypatch.setattr(relion, "parse_number_columns", lambda cols, rows, spread: {})
    monkeypatch.setattr(relion_numbers, "THREADS", 1)


def test_star_to_cs_same_with_and_without_threads(tmp_path, monkeypatch):
    monkeypatch.setattr(star, "BULK_BYTES", 16)
    blocks = star.read_star(_star(tmp_path))
    fast = relion.star_to_cs(blocks, "p.star")
    _as_before(monkeypatch)
    slow = relion.star_to_cs(blocks, "p.star")
    assert {"relion/rlnOpticsGroupName", "relion/rlnMicrographOriginalPixelSize"} <= set(fast.dtype.names)
    assert fast.dtype == slow.dtype
    for f in fast.dtype.names:
        if f != "uid":  # new random uids (no _csparc/uid here)
            assert fast[f].tobytes() == slow[f].tobytes(), f
    # the class numbers 3, 4 are not RELION classes of a 3D refinement... they are: class 2, 3 (0-based)
    assert fast["alignments3D/class"].tolist()[:2] == [2, 3]


@pytest.mark.parametrize("where", ["optics", "particles"])
def test_a_bad_number_gives_the_error_it_gave(tmp_path, monkeypatch, where):
    monkeypatch.setattr(star, "BULK_BYTES", 16)
    path = _star(tmp_path, optics_voltage="3OO") if where == "optics" else _star(tmp_path, defocus="12x4")
    blocks = star.read_star(path)
    with pytest.raises(DataError) as fast:
        relion.star_to_cs(blocks, str(path))
    _as_before(monkeypatch)
    with pytest.raises(DataError) as slow:
        relion.star_to_cs(blocks, str(path))
    assert str(fast.value) == str(slow.value)
    assert ("'3OO'" if where == "optics" else "'12x4'") in str(fast.value)


HEAD = "data_optics\nloop_\n_rlnOpticsGroup\n_rlnVoltage\n1 300\n\n# version 30001\n\ndata_particles\n\nloop_\n" \
       "_rlnImageName #1\n_rlnDefocusU #2\n# a comment line\n_rlnX #3\n"


def _layouts() -> list[str]:
    rows = _rows(30).decode()
    return [rows, rows + "\n\n", rows + "\n# version 30001\n\ndata_next\n_rlnA 1\n", rows + "\n# c\n" + rows,
            rows + "_rlnPair after\n", rows + "data_second\n_rlnA 1\n", rows + "loop_\n_rlnB\n1\n",
            rows + "\n  # indented comment\n", rows.replace(" 1\n", " 1 # c\n", 1), rows + "\n_rlnPair\n'unclosed\n",
            rows + "DATA_upper\n", rows[:-1], rows + "3@x 1\n", rows + "\n# c\n\n_rlnPair 1\n_bad\n"]


@pytest.mark.parametrize("k", range(14))
def test_read_star_with_the_prescan_equals_without(tmp_path, monkeypatch, k):
    """The body's end found while it is checked: the same blocks, or the same error (its line number too)."""
    monkeypatch.setattr(star, "BULK_BYTES", 16)
    path = tmp_path / "p.star"
    path.write_text(HEAD + _layouts()[k])

    def read():
        try:
            return star.read_star(path), None
        except DataError as exc:
            return None, str(exc)

    results = []
    for window, threads in ((1, 2), (40, 3), (700, 2), (10**6, 2)):
        monkeypatch.setattr(star_split, "MIN_PARALLEL", window)
        monkeypatch.setattr(star_split, "THREADS", threads)
        results.append(read())
    monkeypatch.setattr(star, "prescan", lambda raw, pos, ncols: None)
    want_blocks, want_error = read()
    for blocks, error in results:
        assert error == want_error
        if want_blocks is not None:
            assert list(blocks) == list(want_blocks)
            for name, b in want_blocks.items():
                assert blocks[name].pairs == b.pairs and list(blocks[name].columns) == list(b.columns)
                for lab, col in b.columns.items():
                    assert blocks[name].columns[lab].dtype == col.dtype and np.array_equal(blocks[name].columns[lab], col)


def test_warm_loads_what_the_reader_calls(tmp_path, monkeypatch):
    """The head start loads the kernels with the reader's argument types: no second compilation."""
    from cryodesk.io import _star_read_kernels as rk

    thread = star_split.warm(10)
    assert thread is not None
    thread.join(60)
    assert not thread.is_alive()
    kernels = (rk._scan_part, rk._fill_part, rk._image_names, rk._copy_paths)
    # (other tests in this process may have called them with other types, e.g. a read-only buffer)
    warmed = [set(k.signatures) for k in kernels]
    assert all(warmed)
    monkeypatch.setattr(star, "BULK_BYTES", 16)
    star.read_star(_star(tmp_path))
    relion.star_to_cs(star.read_star(_star(tmp_path)))
    for kernel, before in zip(kernels, warmed):
        assert set(kernel.signatures) == before, (kernel, kernel.signatures)
    monkeypatch.setattr(star_split, "MIN_PARALLEL", 1 << 22)
    assert star_split.warm(1000) is None  # a small file: nothing started
