"""import_particles / export_particles on the real files, round trips and every bad input."""

from __future__ import annotations

import hashlib
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest

from cryodesk.base.errors import DataError, JobCancelled
from cryodesk.core import registry
from cryodesk.core.context import InputRef, JobContext
from cryodesk.io import cs, csg, mrc, relion, star

try:
    from cryosparc.dataset import Dataset
except ImportError:  # pragma: no cover - test-time oracle only
    Dataset = None


def _ctx(project: Path, uid: str, params: dict, inputs: dict | None = None) -> JobContext:
    jt = registry.get("export_particles" if inputs else "import_particles")
    return JobContext("P1", uid, jt.name, project, project / uid, jt.coerce_params(params),
                      inputs or {}, logging.getLogger(f"test.{uid}"))


def _import(project: Path, uid: str, meta: Path, blob: Path | None = None) -> JobContext:
    params = {"particle_meta_path": str(meta)}
    if blob is not None:
        params["particle_blob_path"] = str(blob)
    ctx = _ctx(project, uid, params)
    registry.get("import_particles").run(ctx)
    return ctx


def _export(project: Path, uid: str, parent: JobContext, fmt: str, **extra) -> JobContext:
    files = [f for g, f in parent.outputs if g == "particles"]
    ref = InputRef("particles", parent.uid, "particles", 0, files, project)
    ctx = _ctx(project, uid, {"format": fmt, **extra}, {"particles": [ref]})
    registry.get("export_particles").run(ctx)
    return ctx


def _load(project: Path, ctx: JobContext):
    (ds,) = [f for g, f in ctx.outputs if f.kind == "dataset"]
    data = cs.read_cs(project / ds.path)
    images = np.concatenate([mrc.read_images(p, rows_idx) for p, rows_idx in _by_stack(project, data)])
    order = np.concatenate([rows for rows in _rows(data)])
    out = np.empty_like(images)
    out[order] = images
    return data, out


def _rows(data):
    paths = data["blob/path"]
    return [np.flatnonzero(paths == p) for p in dict.fromkeys(paths.tolist())]


def _by_stack(project, data):
    for rows in _rows(data):
        yield cs.resolve_blob_path(data["blob/path"][rows[0]], project), data["blob/idx"][rows]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


META_FIELDS = ["blob/idx", "blob/shape", "blob/psize_A", "ctf/accel_kv", "ctf/cs_mm", "ctf/amp_contrast",
               "ctf/df1_A", "ctf/df2_A", "ctf/df_angle_rad", "ctf/exp_group_id"]


def _same_meta(a, b, fields=META_FIELDS):
    for f in fields:
        if a.dtype[f].kind == "f":
            np.testing.assert_allclose(b[f], a[f], rtol=1e-6, err_msg=f)
        else:
            np.testing.assert_array_equal(b[f], a[f], err_msg=f)


def test_import_cs(realdata_dir, tmp_path):
    before = _sha(realdata_dir / "empiar_10076_7.mrc")
    ctx = _import(tmp_path, "J1", realdata_dir / "empiar_10076_7.cs")
    kinds = sorted((f.kind, f.path) for g, f in ctx.outputs)
    assert kinds == [("blob", "J1/imported/empiar_10076_7.mrc"), ("csg", "J1/imported_particles.csg"),
                     ("dataset", "J1/imported_particles.cs")]
    link = tmp_path / "J1/imported/empiar_10076_7.mrc"
    assert link.is_symlink() and link.resolve() == (realdata_dir / "empiar_10076_7.mrc").resolve()
    data, images = _load(tmp_path, ctx)
    orig = cs.read_cs(realdata_dir / "empiar_10076_7.cs")
    assert set(cs.as_str(data["blob/path"])) == {"J1/imported/empiar_10076_7.mrc"}
    np.testing.assert_array_equal(data["uid"], orig["uid"])
    for f in orig.dtype.names:
        if f != "blob/path":
            np.testing.assert_array_equal(data[f], orig[f], err_msg=f)
    np.testing.assert_array_equal(images, mrc.read_images(realdata_dir / "empiar_10076_7.mrc"))
    group = csg.read_csg(tmp_path / "J1/imported_particles.csg")
    assert group.type == "particle" and group.results["blob"].num_items == 7
    assert group.metafiles(tmp_path / "J1/imported_particles.csg") == [tmp_path / "J1/imported_particles.cs"]
    assert ctx.results["num_particles"] == 7
    assert _sha(realdata_dir / "empiar_10076_7.mrc") == before  # raw data untouched
    if Dataset is not None:
        assert list(Dataset.load(tmp_path / "J1/imported_particles.cs")["blob/path"])[0] == \
            "J1/imported/empiar_10076_7.mrc"


@pytest.mark.parametrize("name,stack,n", [("empiar_10076_7.star", "empiar_10076_7.mrc", 7),
                                          ("relion31.star", "relion31.mrcs", 5)])
def test_import_star(realdata_dir, tmp_path, name, stack, n):
    ctx = _import(tmp_path, "J1", realdata_dir / name)
    data, images = _load(tmp_path, ctx)
    assert len(data) == n and set(cs.as_str(data["blob/path"])) == {f"J1/imported/{stack}"}
    ref = relion.star_to_cs(star.read_star(realdata_dir / name))
    _same_meta(ref, data, [f for f in META_FIELDS if f != "blob/shape"])
    ny, nx = mrc.read_header(realdata_dir / stack).shape
    assert data["blob/shape"].tolist() == [[ny, nx]] * n  # filled from the stack headers
    np.testing.assert_array_equal(images, mrc.read_images(realdata_dir / stack))
    if name == "empiar_10076_7.star":  # same particles as the .cs: same CTF
        _same_meta(cs.read_cs(realdata_dir / "empiar_10076_7.cs"), data,
                   ["ctf/df1_A", "ctf/df2_A", "ctf/df_angle_rad", "blob/psize_A", "blob/shape"])


@pytest.mark.parametrize("source", ["empiar_10076_7.cs", "empiar_10076_7.star", "relion31.star"])
@pytest.mark.parametrize("fmt,copy", [("cryosparc", False), ("cryosparc", True), ("relion", False), ("relion", True)])
def test_export_reimport_roundtrip(realdata_dir, tmp_path, source, fmt, copy):
    first = _import(tmp_path, "J1", realdata_dir / source)
    data1, images1 = _load(tmp_path, first)
    exp = _export(tmp_path, "J2", first, fmt, copy_stacks=copy)
    out_dir = tmp_path / "J2/exported"
    stacks = list((out_dir / "stacks").iterdir())
    assert stacks and all(p.is_symlink() != copy for p in stacks)
    meta = out_dir / ("particles.star" if fmt == "relion" else "particles_exported.cs")
    assert (tmp_path / "J2" / meta.relative_to(tmp_path / "J2")).exists()
    assert {f.kind for g, f in exp.outputs} == ({"blob", "star"} if fmt == "relion" else {"blob", "dataset", "csg"})
    if fmt == "cryosparc":
        assert all(p.startswith(">stacks/") for p in cs.as_str(cs.read_cs(meta)["blob/path"]))
        if Dataset is not None:
            assert len(Dataset.load(meta)) == len(data1)
    # move the export elsewhere (as a user would) and import it again
    moved = tmp_path / "elsewhere"
    shutil.copytree(out_dir, moved, symlinks=True)
    again = _import(tmp_path, "J3", moved / meta.name)
    data3, images3 = _load(tmp_path, again)
    np.testing.assert_array_equal(images3, images1)  # pixel by pixel
    _same_meta(data1, data3)
    if fmt == "cryosparc":
        np.testing.assert_array_equal(data3["uid"], data1["uid"])
        for f in data1.dtype.names:
            if f != "blob/path":
                np.testing.assert_array_equal(data3[f], data1[f], err_msg=f)


# ---------------------------------------------------------------- bad input
@pytest.fixture()
def raw(realdata_dir, tmp_path) -> Path:
    """A writable copy of the real stack + .cs to corrupt."""
    d = tmp_path / "raw"
    d.mkdir()
    shutil.copy(realdata_dir / "empiar_10076_7.mrc", d)
    shutil.copy(realdata_dir / "empiar_10076_7.cs", d)
    return d


def _fails(project: Path, meta: Path, match: str, blob: Path | None = None) -> None:
    with pytest.raises(DataError, match=match):
        _import(project, "J9", meta, blob)
    leftovers = list((project / "J9").rglob("*")) if (project / "J9").exists() else []
    assert leftovers == [], f"half-written files left behind: {leftovers}"


def _rewrite(raw: Path, **fields) -> Path:
    data = cs.read_cs(raw / "empiar_10076_7.cs")
    cols = {n: data[n] for n in data.dtype.names}
    cols.update(fields)
    return cs.write_cs(raw / "edited.cs", cs.from_columns(cols, len(data)))


def test_truncated_stack(raw, tmp_path):
    with open(raw / "empiar_10076_7.mrc", "r+b") as fh:
        fh.truncate(1024 + 320 * 320 * 4 * 5 + 100)
    _fails(tmp_path, raw / "empiar_10076_7.cs",
           r"empiar_10076_7\.mrc: truncated particle stack.*index 5 on are incomplete")


def test_corrupt_header(raw, tmp_path):
    with open(raw / "empiar_10076_7.mrc", "r+b") as fh:
        fh.seek(12)
        fh.write(b"\x4d\x00\x00\x4d")
    _fails(tmp_path, raw / "empiar_10076_7.cs", r"empiar_10076_7\.mrc: corrupt MRC header")


def test_missing_stack(raw, tmp_path):
    (raw / "empiar_10076_7.mrc").unlink()
    _fails(tmp_path, raw / "empiar_10076_7.cs",
           r"(?s)1 problem\(s\).*empiar_10076_7\.mrc: particle stack not found \(used by 7 particle")


def test_missing_metadata(tmp_path):
    _fails(tmp_path, tmp_path / "nope.cs", r"nope\.cs: dataset file not found")
    _fails(tmp_path, tmp_path / "nope.star", r"nope\.star: STAR file not found")
    (tmp_path / "x.txt").write_text("hi")
    _fails(tmp_path, tmp_path / "x.txt", r"x\.txt: unsupported particle metadata file")


def test_index_out_of_range(raw, tmp_path):
    meta = _rewrite(raw, **{"blob/idx": np.array([0, 1, 2, 3, 4, 5, 9])})
    _fails(tmp_path, meta, r"empiar_10076_7\.mrc: particle index 9 \(row 6\) is out of range: the stack has 7")


def test_shape_disagrees(raw, tmp_path):
    meta = _rewrite(raw, **{"blob/shape": np.array([[256, 256]] * 7)})
    _fails(tmp_path, meta, r"images are 320x320 but the metadata says \(256, 256\)")
    mrc.write_stack(raw / "small.mrc", np.zeros((7, 64, 64), np.float32))
    paths = np.array(["empiar_10076_7.mrc"] * 6 + ["small.mrc"])
    meta = _rewrite(raw, **{"blob/path": paths, "blob/shape": np.zeros((7, 2))})
    _fails(tmp_path, meta, r"different image shapes: 320x320 in .*, 64x64 in .*small\.mrc")


def test_path_escaping(raw, tmp_path):
    meta = _rewrite(raw, **{"blob/path": np.array(["../empiar_10076_7.mrc"] * 7)})
    _fails(tmp_path, meta, r"stack path '\.\./empiar_10076_7\.mrc' escapes the particle data directory")


def test_malformed_cs(raw, tmp_path):
    (raw / "bad.cs").write_bytes(b"\x93NUMPY\x01\x00garbage")
    _fails(tmp_path, raw / "bad.cs", r"bad\.cs: malformed CryoSPARC dataset")
    nb = cs.write_cs(raw / "noblob.cs", cs.from_columns({"ctf/df1_A": [1.0, 2.0]}))
    _fails(tmp_path, nb, r"noblob\.cs: not a particle dataset \(no 'blob/path' field\)")


def test_malformed_star(raw, tmp_path):
    (raw / "bad.star").write_text("data_\nloop_\n_rlnImageName\n_rlnDefocusU\n1@empiar_10076_7.mrc 1.0\n2@x\n")
    _fails(tmp_path, raw / "bad.star", r"bad\.star: block data_: the loop has 3 values")
    (raw / "noimg.star").write_text("data_\nloop_\n_rlnDefocusU\n1.0\n")
    _fails(tmp_path, raw / "noimg.star", r"noimg\.star: no particle table")


def test_cancel_leaves_nothing(realdata_dir, tmp_path):
    ctx = _ctx(tmp_path, "J1", {"particle_meta_path": str(realdata_dir / "empiar_10076_7.cs")})
    ctx.cancel_event.set()
    with pytest.raises(JobCancelled):
        registry.get("import_particles").run(ctx)
    assert not (tmp_path / "J1").exists() or list((tmp_path / "J1").rglob("*")) == []


def test_registered_types():
    imp = registry.get("import_particles")
    assert imp.category == "import" and imp.output_group("particles").type == "particle"
    assert imp.param("particle_meta_path").required
    exp = registry.get("export_particles")
    assert exp.category == "utilities" and exp.input_slot("particles").type == "particle"
    assert exp.param("format").choices == ("cryosparc", "relion")
