"""star_to_cs of a large table: the numbers parsed in a thread, the micrograph names copied in one, the paths
handed to ``on_paths`` early; the same dataset, report and errors as one thread gives."""

from __future__ import annotations

import numpy as np
import pytest

from cryodesk.base.errors import DataError
from cryodesk.io import relion, star, star_numbers
from cryodesk.io.conversion import ConversionReport
from cryodesk.io.runs import unique_first

pytestmark = pytest.mark.skipif(star_numbers.implementation() != "numba", reason="the threads are for the kernels")

N = 12_000


def _write(path, bad: dict | None = None) -> None:
    """A bulk-read particle table (carried uid, image names, numbers, micrographs); ``bad``: {column: (row, text)}."""
    rng = np.random.default_rng(5)
    labels = ["rlnImageName", "rlnMicrographName", "rlnAngleRot", "rlnAngleTilt", "rlnAnglePsi", "rlnOriginXAngst",
              "rlnOriginYAngst", "rlnDefocusU", "rlnClassNumber", "csparc/uid", "rlnOpticsGroup"]
    rows = []
    for k in range(N):
        vals = [f"{k % 200 + 1:06d}@Extract/job007/mic{k // 200:04d}.mrcs", f"MotionCorr/mic{k // 200:04d}.mrc",
                f"{rng.uniform(-180, 180):.6f}", f"{rng.uniform(0, 180):.6f}", f"{rng.uniform(-180, 180):.6f}",
                f"{rng.normal():.5f}", f"{rng.normal():.5f}", f"{rng.uniform(9000, 11000):.3f}", f"{k % 3 + 1}",
                f"{10**12 + 7 * k}", f"{k % 2 + 1}"]
        for lab, (row, text) in (bad or {}).items():
            if row == k:
                vals[labels.index(lab)] = text
        rows.append(" ".join(vals))
    path.write_text("\ndata_optics\n\nloop_\n_rlnOpticsGroup #1\n_rlnVoltage #2\n_rlnImagePixelSize #3\n"
                    "_rlnImageSize #4\n1 300.0 1.06 64\n2 200.0 0.9 64\n\n\ndata_particles\n\nloop_\n"
                    + "".join(f"_{lab} #{j}\n" for j, lab in enumerate(labels, 1)) + "\n".join(rows) + "\n")


def _convert(path, monkeypatch, threads: bool, **kw):
    monkeypatch.setattr(relion, "_large", (lambda cols, n: relion.star_numbers.MIN_SIZE <= n) if threads
                        else (lambda cols, n: False))
    report = ConversionReport("STAR -> .cs")
    data = relion.star_to_cs(star.read_star(path), str(path), report=report, consume=True, **kw)
    return data, report


def test_threads_give_the_same_dataset_and_report(tmp_path, monkeypatch):
    path = tmp_path / "p.star"
    _write(path)
    seen = []
    one, r1 = _convert(path, monkeypatch, threads=False)
    two, r2 = _convert(path, monkeypatch, threads=True, on_paths=seen.append)
    assert one.dtype == two.dtype and one.tobytes() == two.tobytes()  # (the uids are carried: the same)
    assert r1.as_dict() == r2.as_dict()
    assert list(r1.mapped) == list(r2.mapped) and r1.notes == r2.notes  # in the same order too
    ((table, index),) = seen  # what on_paths was given is the dataset's blob/path, as unique_first of it
    want_table, want_index = unique_first(two["blob/path"])
    assert table.dtype == want_table.dtype and np.array_equal(table, want_table)
    assert np.array_equal(index, want_index) and np.array_equal(table[index], two["blob/path"])


@pytest.mark.parametrize("bad,match", [
    # a carried column and a number column bad: the carried one is reported (as before: decoded first)
    ({"csparc/uid": (9000, "x12"), "rlnDefocusU": (100, "1.2.3")}, r"column _csparc/uid has a value that is not"),
    # a carried column and an image name: the carried one (the image names are decoded first, but their
    # error waits)
    ({"csparc/uid": (11000, "-4"), "rlnImageName": (50, "0@a.mrcs")}, r"column _csparc/uid has a value that is not"),
    # an image name and a number: the image name
    ({"rlnImageName": (50, "0.5@a.mrcs"), "rlnAngleRot": (10, "nan?")}, r"bad image name '0\.5@a\.mrcs' in row 51"),
    # a number alone: its column, worded as column_floats words it
    ({"rlnDefocusU": (7000, "1.2.3")}, r"column _rlnDefocusU has a non-numeric value '1\.2\.3'"),
])
def test_same_error_first(tmp_path, monkeypatch, bad, match):
    path = tmp_path / "p.star"
    _write(path, bad)
    for threads in (False, True):
        seen = []
        with pytest.raises(DataError, match=match):
            _convert(path, monkeypatch, threads, on_paths=seen.append)
        assert seen == [] if "rlnImageName" in bad else len(seen) == 1  # (paths handed on once they are known)
