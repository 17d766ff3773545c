"""Issue 20 item 8: bad particle metadata at import is refused, through the real CLI.

Each case: ``cryodesk job run`` exits 1, the error names the metadata file and
the row or field that is wrong, no traceback, and the job directory holds
nothing (no half-written ``imported_particles.cs`` or links).  The checks are
vectorised (numpy over the whole column), so they cost nothing at 1M rows.

* ``blob/idx`` 5.5 read image 5 (a float ``.cs`` field was truncated);
  ``5.5@stack.mrc`` in a STAR file is refused too.
* Duplicate uids imported silently (every later join on uid is then wrong).
* A 0-particle set imported as "completed".
* ``blob/path`` ``>../outside/o.mrc``: the ``>`` prefix (relative to the
  metadata file) must not open a way out of the directory the user pointed
  at; neither may a ``.csg`` whose blob metafile lies outside it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from cryodesk.cli.main import main
from cryodesk.io import cs


@pytest.fixture
def env(qapp, tmp_path, monkeypatch, capsys, realdata_dir):
    # qapp: ``job run`` starts the engine, which would otherwise make a QCoreApplication that later
    # widget tests in the same process cannot replace
    monkeypatch.setenv("CRYODESK_DB", str(tmp_path / "cli.sqlite"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    data, outside = tmp_path / "data", tmp_path / "outside"
    data.mkdir()
    outside.mkdir()
    shutil.copy(realdata_dir / "empiar_10076_7.mrc", data / "e.mrc")
    shutil.copy(realdata_dir / "empiar_10076_7.mrc", outside / "o.mrc")
    orig = cs.read_cs(realdata_dir / "empiar_10076_7.cs")
    assert main(["project", "create", "--title", "X", "--dir", str(tmp_path / "proj")]) == 0
    assert main(["workspace", "create", "P1", "--title", "main"]) == 0
    capsys.readouterr()
    counter = iter(range(1, 100))

    def write(name: str, **fields) -> Path:
        cols = {n: orig[n] for n in orig.dtype.names}
        cols["blob/path"] = np.array(["e.mrc"] * len(orig))
        cols.update(fields)
        return cs.write_cs(data / name, cs.from_columns(cols, len(orig)))

    def run(meta: Path, blob: Path | None = None):
        argv = ["job", "create", "P1", "import_particles", "-p", f"particle_meta_path={meta}"]
        if blob is not None:
            argv += ["-p", f"particle_blob_path={blob}"]
        assert main(argv) == 0
        uid = f"J{next(counter)}"
        capsys.readouterr()
        code = main(["job", "run", "P1", uid])
        out, err = capsys.readouterr()
        job_dir = tmp_path / "proj" / uid
        left = [p for p in job_dir.rglob("*") if p.name not in ("job.json", "job.log")] \
            if job_dir.exists() else []
        return code, out + err, left

    return type("Env", (), {"data": data, "outside": outside, "orig": orig, "write": staticmethod(write),
                            "run": staticmethod(run), "root": tmp_path})


def _refused(env, meta: Path, *needles: str, blob: Path | None = None) -> str:
    code, text, left = env.run(meta, blob)
    assert code == 1, text
    assert "Traceback" not in text and "Error:" not in text.replace("DataError", ""), text
    assert str(meta) in text, text
    for needle in needles:
        assert needle in text, f"{needle!r} not in {text}"
    assert left == [], f"half-written files left behind: {left}"
    return text


def test_good_file_imports(env):
    """The baseline the other cases corrupt: it imports."""
    code, text, _ = env.run(env.write("good.cs"))
    assert code == 0, text


def test_float_blob_idx_is_refused(env):
    """A float ``blob/idx`` 5.5 used to read image 5."""
    idx = np.array([0, 1, 2, 3, 4, 5.5, 6], dtype=np.float32)
    meta = env.write("float.cs", **{"blob/idx": idx})
    # from_columns keeps the canonical <u4 for blob/idx: write the float column by hand
    data = cs.read_cs(meta)
    descr = [(n, "<f4" if n == "blob/idx" else data.dtype.fields[n][0]) for n in data.dtype.names]
    fl = np.empty(len(data), descr)
    for n in data.dtype.names:
        fl[n] = data[n]
    fl["blob/idx"] = idx
    cs.write_cs(meta, fl)
    _refused(env, meta, "blob/idx", "row 5", "5.5")
    # whole numbers stored as floats are fine
    fl["blob/idx"] = np.arange(7, dtype=np.float32)
    cs.write_cs(env.data / "float_ok.cs", fl)
    assert env.run(env.data / "float_ok.cs")[0] == 0


def test_negative_or_nan_float_idx_is_refused(env):
    data = cs.read_cs(env.write("nan.cs"))
    descr = [(n, "<f8" if n == "blob/idx" else data.dtype.fields[n][0]) for n in data.dtype.names]
    fl = np.empty(len(data), descr)
    for n in data.dtype.names:
        fl[n] = data[n]
    fl["blob/idx"] = [0, 1, 2, np.nan, 4, 5, 6]
    cs.write_cs(env.data / "nan.cs", fl)
    _refused(env, env.data / "nan.cs", "blob/idx", "row 3")


def test_star_fractional_index_is_refused(env):
    star = env.data / "frac.star"
    star.write_text("data_\nloop_\n_rlnImageName\n_rlnDefocusU\n1@e.mrc 1.0\n5.5@e.mrc 1.0\n")
    text = _refused(env, star, "row 2", "'5.5@e.mrc'")
    assert "np.str_" not in text


def test_duplicate_uids_are_refused(env):
    uids = np.array([11, 12, 13, 14, 13, 15, 16], dtype=np.uint64)
    _refused(env, env.write("dup.cs", uid=uids), "uid 13", "rows 2 and 4")


def test_empty_set_is_refused(env):
    meta = env.data / "empty.cs"
    cs.write_cs(meta, cs.read_cs(env.write("tmp.cs"))[:0])
    _refused(env, meta, "0 particles")
    star = env.data / "empty.star"
    star.write_text("data_particles\nloop_\n_rlnImageName\n_rlnDefocusU\n")
    _refused(env, star, "0 particles")


@pytest.mark.parametrize("raw", [">../outside/o.mrc", ">/{outside}/o.mrc", ">./../outside/o.mrc",
                                 "../outside/o.mrc", "./../outside/o.mrc"])
def test_prefix_cannot_escape(env, raw):
    raw = raw.format(outside=str(env.outside).lstrip("/"))
    meta = env.write("esc.cs", **{"blob/path": np.array([raw] * 7)})
    _refused(env, meta, "escapes", blob=env.data)
    _refused(env, meta, "escapes")


def test_star_prefix_cannot_escape(env):
    star = env.data / "esc.star"
    star.write_text("data_\nloop_\n_rlnImageName\n_rlnDefocusU\n1@>../outside/o.mrc 1.0\n")
    _refused(env, star, "escapes", blob=env.data)


def test_csg_metafile_outside_cannot_reach_outside_stacks(env):
    """A ``.csg`` whose blob metafile lies outside: its ``>o.mrc`` would be 'next to' that file."""
    cols = {n: env.orig[n] for n in env.orig.dtype.names}
    cols["blob/path"] = np.array([">o.mrc"] * 7)
    cs.write_cs(env.outside / "x.cs", cs.from_columns(cols, 7))
    csg = env.data / "trick.csg"
    csg.write_text(yaml.safe_dump({
        "created": "2024-01-01 00:00:00.000000", "version": "4.4.0",
        "group": {"name": "particles", "title": "p", "type": "particle", "description": ""},
        "results": {"blob": {"metafile": ">../outside/x.cs", "num_items": 7, "type": "particle.blob"}}}))
    _refused(env, csg, "outside", blob=env.data)
