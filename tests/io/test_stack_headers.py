"""``validate.read_stack_headers`` (all headers at once) gives exactly what ``mrc.read_header`` gives.

Every kind of good and bad stack in one call: a ``StackInfo`` equal to
``read_header``'s for a good one, ``None`` for every one that ``require_regular``
or ``read_header`` refuses (the validator then asks those for the message).
"""

from __future__ import annotations

import os

import numpy as np
from mrcfile.dtypes import HEADER_DTYPE

from cryodesk.base.errors import DataError
from cryodesk.base.nofollow import require_regular
from cryodesk.io import mrc
from cryodesk.io.validate import read_stack_headers


def _header(order="<", **values) -> bytearray:
    h = np.zeros(1, dtype=HEADER_DTYPE.newbyteorder(order))
    base = {"nx": 4, "ny": 3, "nz": 2, "mode": 2, "mx": 4, "my": 3, "mz": 2}
    base.update(values)
    for k, v in base.items():
        if k == "cella_x":
            h["cella"]["x"] = v
        else:
            h[k] = v
    if "cella_x" not in values:
        h["cella"]["x"] = 4 * 1.25
    return bytearray(h.tobytes())


def _write(path, header: bytes, payload: int) -> None:
    path.write_bytes(bytes(header) + b"\0" * payload)


def _reference(path):
    try:
        require_regular(path, "particle stack")
        return mrc.read_header(path)
    except DataError:
        return None


def test_same_answers_as_read_header(tmp_path):
    cases = {}
    for mode, dt in mrc.MODES.items():  # every mode, both byte orders
        for order in "<>":
            cases[f"m{mode}{order}"] = (_header(order, mode=mode), 4 * 3 * 2 * dt.itemsize)
    cases["ext"] = (_header(nsymbt=100), 100 + 96)
    cases["ext_too_long"] = (_header(nsymbt=10_000), 96)
    cases["neg_ext"] = (_header(nsymbt=-4), 96)
    cases["truncated"] = (_header(), 95)
    cases["longer"] = (_header(), 200)
    cases["bad_mode"] = (_header(mode=7), 96)
    cases["zero_nx"] = (_header(nx=0), 96)
    cases["neg_ny"] = (_header(ny=-3), 96)
    cases["huge_nz"] = (_header(nz=2**31 - 1, nx=2**24 - 1, ny=2**24 - 1), 96)  # the need overflows int64
    cases["neg_nz"] = (_header(nz=-1), 96)
    cases["empty_stack"] = (_header(nz=0), 0)
    cases["mx0"] = (_header(mx=0), 96)
    cases["nan_cell"] = (_header(cella_x=float("nan")), 96)
    cases["neg_cell"] = (_header(cella_x=-3.0), 96)
    cases["inf_cell"] = (_header(cella_x=float("inf")), 96)
    cases["odd_cell"] = (_header(cella_x=1.06 * 4, mx=3), 96)
    paths = []
    for name, (head, payload) in cases.items():
        p = tmp_path / f"{name}.mrc"
        _write(p, head, payload)
        paths.append(p)
    short = tmp_path / "short.mrc"
    short.write_bytes(b"\0" * 100)
    empty = tmp_path / "empty.mrc"
    empty.write_bytes(b"")
    fifo = tmp_path / "fifo.mrc"
    os.mkfifo(fifo)
    folder = tmp_path / "dir.mrc"
    folder.mkdir()
    link = tmp_path / "link.mrc"
    link.symlink_to(paths[0])
    dangling = tmp_path / "dangling.mrc"
    dangling.symlink_to(tmp_path / "nothere.mrc")
    unreadable = tmp_path / "unreadable.mrc"
    _write(unreadable, _header(), 96)
    unreadable.chmod(0)
    paths += [short, empty, fifo, folder, link, dangling, tmp_path / "missing.mrc", unreadable, paths[0]]
    got = read_stack_headers(paths)
    want = [_reference(p) for p in paths]
    assert len(got) == len(want)
    for p, g, w in zip(paths, got, want):
        assert g == w, p.name
    good = {p.name for p, w in zip(paths, want) if w is not None}
    assert {"m2<", "m12>", "ext", "longer", "empty_stack", "mx0", "link"} <= {n[:-4] for n in good}
    assert "truncated.mrc" not in good and "huge_nz.mrc" not in good and "fifo.mrc" not in good
    assert read_stack_headers([]) == []


def test_real_stacks(realdata_dir):
    paths = sorted(p for p in realdata_dir.iterdir() if p.suffix in (".mrc", ".mrcs"))
    assert paths
    assert read_stack_headers(paths) == [mrc.read_header(p) for p in paths]


def test_shape_check_same_for_cryosparc_and_other_dtypes(tmp_path):
    """blob/shape as CryoSPARC's uint32 pairs (compared as one 64-bit word) and as int64: the same problems."""
    import pytest

    from cryodesk.io import cs
    from cryodesk.io.validate import validate_stacks

    for k, (ny, nx) in enumerate([(3, 4), (3, 4), (5, 4)]):
        _write(tmp_path / f"s{k}.mrc", _header(nx=nx, ny=ny, nz=3, mx=nx), nx * ny * 3 * 4)
    n = 40
    stack = np.arange(n) % 3  # rows 3, 25, 17: one bad row in each stack
    shape = np.array([[3, 4], [3, 4], [5, 4]])[stack]
    shape[[3, 17]] = [[4, 3], [0, 0]]  # swapped: wrong; zeros: not given
    shape[25] = [3, 2**31 + 4]  # differs only in the high word
    messages = []
    for dt in ("<u4", "<i8", ">u4"):
        data = cs.from_columns({"blob/path": np.array([f"s{k}.mrc" for k in stack]), "blob/idx": stack % 3,
                                "blob/shape": np.zeros((n, 2))}, n)
        data = data.astype([(f, dt, (2,)) if f == "blob/shape" else (f, data.dtype[f]) for f in data.dtype.names])
        data["blob/shape"] = shape
        with pytest.raises(DataError) as err:
            validate_stacks(cs.ParticleSet(data, tmp_path / "x.cs", tmp_path))
        messages.append(str(err.value))
    assert messages[0] == messages[1] == messages[2]
    assert "metadata says (4, 3) (row 3)" in messages[0] and "2147483652" in messages[0]
    assert "row 17" not in messages[0] and messages[0].count("metadata says") == 2
