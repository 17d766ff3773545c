"""read_cs parses .npy headers under a lock (CPython 3.11's AST race, gh-106905) and reads the
data itself: the result must be what np.load gives, for every header version, mmap or not."""
import threading

import numpy as np
import pytest

from cryodesk.base.errors import DataError
from cryodesk.io import cs


def _dataset(n: int, nfields: int) -> np.ndarray:
    dt = [("uid", "<u8")] + [(f"f{i}", "<f4") for i in range(nfields)] + [("blob/path", "S12")]
    data = np.zeros(n, dtype=dt)
    data["uid"] = np.arange(n) + 10
    for i in range(nfields):
        data[f"f{i}"] = np.arange(n) * (i + 1)
    data["blob/path"] = b"J1/a.mrc"
    return data


@pytest.mark.parametrize("version", [(1, 0), (2, 0)])
@pytest.mark.parametrize("mmap", [False, True])
@pytest.mark.parametrize("n", [0, 5])
def test_same_as_np_load(tmp_path, version, mmap, n):
    data = _dataset(n, 3)
    path = tmp_path / "p.cs"
    with open(path, "wb") as fh:
        np.lib.format.write_array(fh, data, version=version)
    got = cs.read_cs(path, mmap=mmap)
    want = np.load(path, allow_pickle=False)
    assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)


def test_truncated_file_is_a_clear_error(tmp_path):
    path = tmp_path / "t.cs"
    np.save(path, _dataset(50, 2))
    (tmp_path / "t.cs.npy").rename(path)
    path.write_bytes(path.read_bytes()[:-40])
    with pytest.raises(DataError, match="t.cs"):
        cs.read_cs(path)


def test_many_threads_read_wide_headers_at_once(tmp_path):
    path = tmp_path / "w.cs"
    with open(path, "wb") as fh:
        np.lib.format.write_array(fh, _dataset(3, 300))
    errors, barrier = [], threading.Barrier(4)

    def read():
        barrier.wait()
        for _ in range(40):
            try:
                assert cs.read_cs(path)["f299"][2] == 600
            except Exception as exc:  # noqa: BLE001 - collected for the assert below
                errors.append(exc)
                return

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
