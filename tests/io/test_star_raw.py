"""A large STAR file read into memory that is given back as it is used (``io/star_raw.py``): the same blocks,
the same dataset and the same errors as from ``bytes``.

* ``read_raw`` gives the file's bytes (``find``, ``rfind``, ``count``, ``decode``, slicing as ``bytes``), a
  file that changes size while it is read is read again;
* ``RawText.release`` / ``release_array`` zero whole huge pages inside the range only, and only for such
  memory;
* ``read_star`` of a large body split in many parts, released as it goes, equals the ``bytes`` read, and
  ``star_to_cs(consume=True)`` (which gives the columns back) equals ``star_to_cs`` of blocks read the old way.
"""

from __future__ import annotations

import mmap

import numpy as np
import pytest

from cryodesk.base.errors import DataError
from cryodesk.io import relion, star, star_numbers, star_raw, star_split

HUGE = 1 << 21


def _body_rows(n: int, rng) -> list[str]:
    return [f"{k % 300 + 1:06d}@Extract/job007/stack_with_a_long_name_{k // 300:05d}.mrcs "
            f"MotionCorr/job002/micrograph_with_a_long_name_{k // 300:05d}.mrc "
            f"{rng.uniform(0, 4000):.3f} {rng.uniform(0, 4000):.3f} {rng.uniform(9000, 11000)!r} "
            f"{rng.uniform(-180, 180)!r} {rng.uniform(0, 180)!r} {rng.uniform(-180, 180)!r} "
            f"{rng.normal()!r} {rng.normal()!r} {k % 2 + 1} {10**15 + 3 * k} [4092,5760] {k % 2 + 1}"
            for k in range(n)]


LABELS = ["rlnImageName", "rlnMicrographName", "rlnCoordinateX", "rlnCoordinateY", "rlnDefocusU", "rlnAngleRot",
          "rlnAngleTilt", "rlnAnglePsi", "rlnOriginXAngst", "rlnOriginYAngst", "rlnRandomSubset", "csparc/uid",
          "csparc/location/micrograph_shape", "rlnOpticsGroup"]


def _write(path, n: int = 60_000, edit=None) -> bytes:
    rows = _body_rows(n, np.random.default_rng(7))
    if edit is not None:
        edit(rows)
    text = ("\n# version 30001\n\ndata_optics\n\nloop_\n_rlnOpticsGroup #1\n_rlnVoltage #2\n_rlnImagePixelSize #3\n"
            "_rlnImageSize #4\n_rlnSphericalAberration #5\n1 300.0 1.06 64 2.7\n2 200.0 0.9 64 2.7\n\n\n"
            "# version 30001\n\ndata_particles\n\nloop_\n"
            + "".join(f"_{lab} #{j}\n" for j, lab in enumerate(LABELS, 1)) + "\n".join(rows) + "\n\n# the end\n")
    path.write_bytes(text.encode())
    return text.encode()


@pytest.fixture
def small_parts(monkeypatch):
    """Thresholds of a few MB: a file of ~15 MB is read into RawText, split by threads in many parts."""
    monkeypatch.setattr(star_raw, "RAW_BYTES", 1 << 20)
    monkeypatch.setattr(star_split, "PART_BYTES", 1 << 20)
    monkeypatch.setattr(star_split, "MIN_PARALLEL", 1 << 20)
    monkeypatch.setattr(star_split, "THREADS", 2)


def test_read_raw_is_the_files_bytes(tmp_path, monkeypatch):
    path = tmp_path / "f.star"
    data = b"data_x\nloop_\n_a\n" + b"1 2\r\n3\t4\n" * 300_000
    path.write_bytes(data)
    assert type(star_raw.read_raw(path)) is bytes  # below RAW_BYTES: as before
    monkeypatch.setattr(star_raw, "RAW_BYTES", 1)
    raw = star_raw.read_raw(path)
    assert isinstance(raw, star_raw.RawText) and len(raw) == len(data) and raw[:] == data
    assert raw.find(b"_a") == data.find(b"_a") and raw.rfind(b"\n", 0, 500) == data.rfind(b"\n", 0, 500)
    assert raw.count(b"\n") == data.count(b"\n") and raw.count(b"\r\n", 7, 99_999) == data.count(b"\r\n", 7, 99_999)
    assert raw.decode("utf-8") == data.decode("utf-8")
    assert star_raw.owner_of(np.frombuffer(raw, np.uint8)[5:9]) is raw


def test_read_raw_reads_again_a_file_that_changed_size(tmp_path, monkeypatch):
    path = tmp_path / "f.star"
    path.write_bytes(b"x" * 5000)
    monkeypatch.setattr(star_raw, "RAW_BYTES", 1)
    real = star_raw.os.fstat

    class Stat:
        def __init__(self, st, delta):
            self.st_size = st.st_size + delta

    for delta in (7, -7):  # it grew (the read stops short of the size) or shrank (more to read than said)
        monkeypatch.setattr(star_raw.os, "fstat", lambda fd, d=delta: Stat(real(fd), d))
        got = star_raw.read_raw(path)
        assert type(got) is bytes and got == b"x" * 5000, delta


def test_release_zeroes_whole_huge_pages_inside_the_range_only():
    raw = star_raw._anonymous(8 * HUGE)
    arr = np.frombuffer(raw, np.uint8)
    arr[:] = 7
    base = arr.ctypes.data
    lo, hi = 3 * HUGE // 2, 6 * HUGE + 100
    raw.release(lo, hi)
    a = -(-(base + lo) // HUGE) * HUGE - base
    b = (base + hi) // HUGE * HUGE - base
    assert b > a
    assert not arr[a:b].any() and (arr[:a] == 7).all() and (arr[b:] == 7).all()
    col = arr[b:].view("S2") if (len(arr) - b) % 2 == 0 else arr[b:]
    assert star_raw.release_array(col) and not arr[-(-(base + b) // HUGE) * HUGE - base:][:HUGE].any()
    assert not star_raw.release_array(np.ones(4 * HUGE, np.uint8))  # ordinary memory: left alone
    assert not star_raw.release_array(np.zeros(0, np.uint8))


def test_zeroed_is_zeros():
    small, big = star_raw.zeroed(100), star_raw.zeroed(star_raw.RAW_BYTES)
    assert small.dtype == big.dtype == np.uint8 and not small.any() and not big.any()
    assert star_raw.owner_of(big) is not None and star_raw.owner_of(small) is None
    assert isinstance(star_raw.owner_of(big), mmap.mmap)


needs_numba = pytest.mark.skipif(star_numbers.implementation() != "numba", reason="the bulk split is the kernels'")


def _same_blocks(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for name in a:
        assert a[name].pairs == b[name].pairs and list(a[name].columns) == list(b[name].columns)
        for lab, col in a[name].columns.items():
            other = b[name].columns[lab]
            assert col.dtype == other.dtype and np.array_equal(col, other), (name, lab)


@needs_numba
def test_read_star_released_as_split_equals_the_bytes_read(tmp_path, monkeypatch):
    path = tmp_path / "p.star"
    text = _write(path)
    assert len(text) > 6 * HUGE
    monkeypatch.setattr(star_raw, "RAW_BYTES", 1 << 40)
    want = star.read_star(path)  # a bytes read, as before
    assert star_raw.owner_of(want["particles"].columns["rlnDefocusU"]) is None
    monkeypatch.setattr(star_raw, "RAW_BYTES", 1 << 20)
    monkeypatch.setattr(star_split, "PART_BYTES", 1 << 20)
    monkeypatch.setattr(star_split, "MIN_PARALLEL", 1 << 20)
    monkeypatch.setattr(star_split, "THREADS", 2)
    released = []
    real = star_raw.RawText.release
    monkeypatch.setattr(star_raw.RawText, "release", lambda self, lo, hi: (released.append((lo, hi)),
                                                                          real(self, lo, hi)))
    got = star.read_star(path)
    assert len(released) > 8  # the body given back a part at a time
    assert min(lo for lo, _ in released) >= text.find(b"000001@") and max(hi for _, hi in released) < len(text)
    _same_blocks(want, got)
    assert star_raw.owner_of(got["particles"].columns["rlnDefocusU"]) is not None  # the releasable buffer


@needs_numba
def test_consume_gives_the_columns_back_and_the_same_dataset(tmp_path, small_parts, monkeypatch):
    path = tmp_path / "p.star"
    _write(path)
    want = relion.star_to_cs(star.read_star(path), str(path))  # the blocks kept: nothing given back
    given = set()
    real = star_raw.release_array
    monkeypatch.setattr(relion, "release_array", lambda arr: real(arr) and given.add(id(arr)))
    blocks = star.read_star(path)
    columns = dict(blocks["particles"].columns)
    mics = columns["rlnMicrographName"]
    got = relion.star_to_cs(blocks, str(path), consume=True)
    assert blocks == {}
    # every column given back but the micrograph names, kept as the dataset's field
    assert {lab for lab, col in columns.items() if id(col) in given} == set(LABELS) - {"rlnMicrographName"}
    assert np.array_equal(got["location/micrograph_path"], mics)  # (not given back: still its text)
    assert got.dtype == want.dtype
    for name in got.dtype.names:
        assert np.array_equal(got[name], want[name], equal_nan=got[name].dtype.kind == "f"), name


@needs_numba
@pytest.mark.parametrize("row,col,text,match", [
    (40_000, 4, "1.5.5", r"column _rlnDefocusU has a non-numeric value '1\.5\.5'"),
    (59_999, 0, "0@x.mrcs", r"bad image name '0@x\.mrcs' in row 60000"),
    (123, 11, "12x", r"column _csparc/uid has a value that is not an unsigned integer"),
])
def test_errors_are_the_same(tmp_path, small_parts, monkeypatch, row, col, text, match):
    def edit(rows):
        vals = rows[row].split(" ")
        vals[col] = text
        rows[row] = " ".join(vals)

    path = tmp_path / "p.star"
    _write(path, edit=edit)
    with pytest.raises(DataError, match=match) as got:
        relion.star_to_cs(star.read_star(path), str(path), consume=True)
    monkeypatch.setattr(star_raw, "RAW_BYTES", 1 << 40)  # the bytes read, as before
    with pytest.raises(DataError) as want:
        relion.star_to_cs(star.read_star(path), str(path), consume=True)
    assert str(got.value) == str(want.value)


@needs_numba
def test_a_body_that_is_not_plain_falls_back_with_the_whole_text(tmp_path, small_parts, monkeypatch):
    def edit(rows):  # a quoted value near the end: the token parser reads the whole file again
        vals = rows[-10].split(" ")
        vals[1] = "'Motion Corr/x.mrc'"
        rows[-10] = " ".join(vals)

    path = tmp_path / "p.star"
    _write(path, n=30_000, edit=edit)
    got = star.read_star(path)
    assert got["particles"].columns["rlnMicrographName"][-10] == "Motion Corr/x.mrc"
    monkeypatch.setattr(star_raw, "RAW_BYTES", 1 << 40)
    _same_blocks(star.read_star(path), got)


@needs_numba
@pytest.mark.parametrize("sep,eol", [(b" ", b"\n"), (b"\t", b"\r\n"), (b" \t ", b"\n\n"), (b"  ", b" \r\n")])
def test_the_fill_copies_every_token_as_the_numpy_splitter(sep, eol):
    """``_fill_part`` copies a token while it finds its end: short and long tokens (paths of 100+ bytes), any
    blank between them, a last row without its end of line."""
    rng = np.random.default_rng(9)
    rows = []
    for k in range(3000):
        path = b"x" * int(rng.integers(1, 160))
        rows.append(sep.join([b"%d@%s" % (k + 1, path), repr(rng.normal()).encode(), b"7" * int(rng.integers(1, 40))]))
    body = eol.join(rows)
    buf = np.frombuffer(body, dtype=np.uint8)
    want = star._split_columns_numpy(buf, body, 3, 1 << 16)
    got = star_numbers.split_columns(buf, 3)
    assert want is not None and got is not None
    assert all(g.dtype == w.dtype and np.array_equal(g, w) for g, w in zip(got, want))


@needs_numba
@pytest.mark.parametrize("byte", [0, 1, 8, 11, 12, 27, 31, 127, 128, 200, 255, 33, 35, 39, 59, 95, 126])
def test_a_byte_inside_a_token_is_judged_as_the_numpy_splitter_does(byte):
    """The scan's fast test for a token's bytes (33..126: part of it) and its table for the rest (a blank
    ends it; any other control byte, DEL or non-ASCII refuses the body), against the numpy reference."""
    rows = [b"%d@stack.mrcs 1.5 %d" % (k + 1, k) for k in range(200)]
    rows[150] = b"151@sta" + bytes([byte]) + b"ck.mrcs 1.5 150"
    body = b"\n".join(rows) + b"\n"
    buf = np.frombuffer(body, dtype=np.uint8)
    want = star._split_columns_numpy(buf, body, 3, 1 << 16)
    got = star_numbers.split_columns(buf, 3)
    assert (got is None) == (want is None) and (want is None) == (byte < 33 and byte not in (9, 10, 13, 32)
                                                                  or byte >= 127)
    if want is not None:
        assert all(g.dtype == w.dtype and np.array_equal(g, w) for g, w in zip(got, want))
