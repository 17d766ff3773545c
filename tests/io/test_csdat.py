"""CryoSPARC's compressed CSDAT ``.cs`` encoding, decoded with the ``lz4`` package.

Files are built here field by field with ``lz4.block.compress`` (the layout the
reader documents), and independently by cryosparc-tools (the test oracle).
"""

from __future__ import annotations

import json
import struct

import lz4.block
import numpy as np
import pytest

from cryodesk.base.errors import DataError
from cryodesk.io import cs
from cryodesk.io.csdat import MAGIC, read_csdat

try:
    from cryosparc.dataset import CSDAT_FORMAT, Dataset
except ImportError:  # pragma: no cover - test-time oracle only
    Dataset = None
needs_tools = pytest.mark.skipif(Dataset is None, reason="cryosparc-tools (test oracle) is not installed")


def _csdat(data: np.ndarray, compress=True, compression="lz4") -> bytes:
    """``data`` in the CSDAT layout; bytes columns go to the string heap as ``|O``."""
    heap, offsets = bytearray(b"\0"), {b"": 0}
    descr, columns = [], []
    for name in data.dtype.names:
        col = data[name]
        if col.dtype.kind == "S":
            ids = []
            for v in col.tolist():
                if v not in offsets:
                    offsets[v] = len(heap)
                    heap += v + b"\0"
                ids.append(offsets[v])
            col = np.asarray(ids, dtype="<u8")
            dt = "|O"
        else:
            dt = col.dtype.str
        descr.append([name, dt, list(col.shape[1:])] if col.ndim > 1 else [name, dt])
        columns.append((name, np.ascontiguousarray(col).tobytes()))
    packed = compress if isinstance(compress, set) else ({n for n, _ in columns} if compress else set())
    header = json.dumps({"length": len(data), "dtype": descr, "compression": compression if packed else None,
                         "compressed_fields": sorted(packed)}).encode()
    out = bytearray(MAGIC + struct.pack("<I", len(header)) + header)
    for name, raw in columns if len(data) else []:
        body = lz4.block.compress(raw, store_size=False) if name in packed else raw
        out += struct.pack("<I", len(body)) + body
    return bytes(out + heap)


def _particles(n: int) -> np.ndarray:
    rng = np.random.default_rng(n)
    return cs.from_columns({
        "blob/path": [f"J3/extract/mic_{i % 7}.mrc".encode() for i in range(n)],
        "blob/idx": np.arange(n, dtype=np.uint32),
        "ctf/df1_A": rng.uniform(1e4, 2e4, n),
        "alignments2D/shift": rng.normal(size=(n, 2)).astype(np.float32),
        "ctf/type": [b""] * n,  # the empty string is heap offset 0
    }, n)


@pytest.mark.parametrize("n", [0, 1, 5000])
@pytest.mark.parametrize("compress", [True, False, {"ctf/df1_A", "blob/path"}])
def test_decode_lz4_built_file_field_by_field(tmp_path, n, compress):
    d = _particles(n)
    path = tmp_path / "p.cs"
    path.write_bytes(_csdat(d, compress))
    back = cs.read_cs(path)
    assert back.dtype.names == d.dtype.names and len(back) == n
    for f in d.dtype.names:
        assert back[f].shape == d[f].shape
        np.testing.assert_array_equal(back[f], d[f], err_msg=f)
    some = read_csdat(path, fields=["ctf/df1_A"])
    assert some.dtype.names == ("uid", "ctf/df1_A")
    np.testing.assert_array_equal(some["ctf/df1_A"], d["ctf/df1_A"])


@needs_tools
def test_tools_written_csdat_matches(tmp_path):
    d = _particles(3000)
    Dataset.load(cs.write_cs(tmp_path / "np.cs", d)).save(tmp_path / "z.cs", format=CSDAT_FORMAT)
    raw = (tmp_path / "z.cs").read_bytes()
    (hlen,) = struct.unpack_from("<I", raw, 6)
    assert json.loads(raw[10:10 + hlen])["compressed_fields"]  # lz4 really is exercised
    back = cs.read_cs(tmp_path / "z.cs")
    for f in d.dtype.names:
        np.testing.assert_array_equal(back[f], d[f], err_msg=f)


@needs_tools
def test_real_cs_still_loads_and_reencodes(realdata_dir, tmp_path):
    """The real NumPy-encoded file loads; cryosparc-tools' CSDAT of it decodes to the same fields."""
    orig = cs.read_cs(realdata_dir / "empiar_10076_7.cs")
    assert len(orig) == 7 and len(orig.dtype.names) == 24
    Dataset.load(realdata_dir / "empiar_10076_7.cs").save(tmp_path / "z.cs", format=CSDAT_FORMAT)
    back = cs.read_cs(tmp_path / "z.cs")
    assert back.dtype.names == orig.dtype.names
    for f in orig.dtype.names:
        np.testing.assert_array_equal(back[f], orig[f], err_msg=f)


def _corrupt(tmp_path, name, mutate):
    good = bytearray(_csdat(_particles(2000)))
    path = tmp_path / name
    path.write_bytes(mutate(good))
    with pytest.raises(DataError) as err:
        cs.read_cs(path)
    msg = str(err.value)
    assert msg.startswith(f"{path}: malformed CryoSPARC dataset (CSDAT encoding): ")
    assert "Traceback" not in msg and "LZ4BlockError" not in msg
    return msg


def _first_column(buf: bytearray) -> tuple[int, int]:
    (hlen,) = struct.unpack_from("<I", buf, 6)
    (csize,) = struct.unpack_from("<I", buf, 10 + hlen)
    return 10 + hlen + 4, csize


def test_corrupt_block_is_a_clear_error(tmp_path):
    def smash(buf):
        start, size = _first_column(buf)
        buf[start:start + size] = b"\xff" * size  # no valid LZ4 sequence
        return buf

    msg = _corrupt(tmp_path, "smashed.cs", smash)
    assert "column 'uid' is not a valid LZ4 block" in msg


def test_short_block_is_a_clear_error(tmp_path):
    def shorten(buf):  # a valid block of fewer bytes than the dtype promises
        start, size = _first_column(buf)
        small = lz4.block.compress(b"\0" * 8, store_size=False)
        return buf[:start - 4] + struct.pack("<I", len(small)) + small + buf[start + size:]

    msg = _corrupt(tmp_path, "short.cs", shorten)
    assert "column 'uid' has 8 bytes, expected 16000" in msg


def test_truncated_file_is_a_clear_error(tmp_path):
    msg = _corrupt(tmp_path, "trunc.cs", lambda buf: buf[:len(buf) // 2])
    assert "truncated" in msg or "LZ4 block" in msg


def test_unknown_compression_is_a_clear_error(tmp_path):
    path = tmp_path / "zstd.cs"
    path.write_bytes(_csdat(_particles(3), compression="zstd"))
    with pytest.raises(DataError, match=r"zstd\.cs: .*unsupported compression 'zstd'"):
        cs.read_cs(path)


# ---------------------------------------------------------------- writer
def _sample(n: int = 9) -> np.ndarray:
    rng = np.random.default_rng(5)
    return cs.from_columns({
        "uid": cs.new_uids(n, rng), "blob/path": [f"J1/s_{k % 3}.mrc" for k in range(n)],
        "blob/idx": np.arange(n), "blob/shape": np.tile([64, 64], (n, 1)), "blob/psize_A": 1.1,
        "ctf/type": "spline", "location/micrograph_path": [f"mic {k}.mrc" if k else "" for k in range(n)],
        "alignments3D/pose": rng.normal(size=(n, 3)).astype(np.float32), "x/f64": rng.normal(size=n),
        "x/i8": np.arange(n, dtype=np.int8) - 3,
    }, n)


@needs_tools
@pytest.mark.parametrize("compression", ["lz4", None])
@pytest.mark.parametrize("n", [0, 1, 9])
def test_written_csdat_loads_in_cryosparc_tools(tmp_path, compression, n):
    from cryodesk.io.csdat import write_csdat

    data = _sample(n)
    path = write_csdat(tmp_path / "w.cs", data, compression=compression)
    assert path.read_bytes()[:6] == MAGIC and [p.name for p in tmp_path.iterdir()] == ["w.cs"]
    ds = Dataset.load(path)  # the oracle
    assert len(ds) == n and ds.fields() == list(data.dtype.names)
    for name in data.dtype.names:
        want = data[name]
        got = np.asarray(ds[name])
        if want.dtype.kind == "S":
            want = np.char.decode(want).astype(object)
        np.testing.assert_array_equal(got, want, err_msg=name)
    back = cs.read_cs(path)  # and our reader
    assert back.dtype.names == data.dtype.names
    for name in data.dtype.names:
        np.testing.assert_array_equal(back[name], data[name], err_msg=name)


@needs_tools
def test_written_layout_matches_cryosparc_tools(tmp_path):
    """Same header and string heap as Dataset.save(format=CSDAT_FORMAT) for the same data."""
    data = _sample()
    ours = cs.write_cs(tmp_path / "ours.cs", data, format="csdat").read_bytes()
    ds = Dataset.load(cs.write_cs(tmp_path / "np.cs", data))
    ds.save(tmp_path / "theirs.cs", format=CSDAT_FORMAT)
    theirs = (tmp_path / "theirs.cs").read_bytes()

    def split(raw):
        (n,) = struct.unpack_from("<I", raw, 6)
        return json.loads(raw[10:10 + n]), raw

    (h1, _), (h2, _) = split(ours), split(theirs)
    assert h1 == h2
    heap = b"\0" + b"".join(sorted({v + b"\0" for f in ("blob/path", "ctf/type", "location/micrograph_path")
                                    for v in data[f].tolist() if v}))
    assert sorted(ours[-len(heap):].split(b"\0")) == sorted(theirs[-len(heap):].split(b"\0"))


def test_write_csdat_refuses_what_it_cannot_hold(tmp_path):
    from cryodesk.io.csdat import write_csdat

    bad = np.zeros(2, dtype=[("uid", "<u8"), ("flag", "?")])
    with pytest.raises(DataError, match=r"b\.cs: field 'flag' has dtype bool"):
        write_csdat(tmp_path / "b.cs", bad)
    with pytest.raises(DataError, match="without a 'uid' field"):
        write_csdat(tmp_path / "b.cs", np.zeros(2, dtype=[("x", "<f4")]))
    with pytest.raises(DataError, match="unknown .cs format 'zip'"):
        cs.write_cs(tmp_path / "b.cs", _sample(), format="zip")
    assert list(tmp_path.iterdir()) == []
