"""restack_particles / downsample_particles job bodies and the gather machinery under them.

Job bodies run with a hand-built :class:`JobContext` on a throw-away project:
``P/J1/particles.cs`` is the input, ``P/J2`` the job directory.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from pathlib import Path

import mrcfile
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import cryodesk.jobs.restack as restack_mod
from cryodesk.base.errors import DataError, JobCancelled, UsageError
from cryodesk.core import registry
from cryodesk.core.context import InputRef, JobContext, OutputFileRef
from cryodesk.io import gather as gather_mod
from cryodesk.io.cs import from_columns, write_cs
from cryodesk.io.gather import SourceError, execute_plan, gather, plan_gather
from cryodesk.io.mrc import write_stack
from cryodesk.kernels.fourier import fourier_crop_numpy

REAL_MRC = "empiar_10076_7.mrc"


# -- helpers ---------------------------------------------------------------

def make_ctx(project: Path, job_type: str, params: dict | None = None, uid: str = "J2") -> JobContext:
    jt = registry.get(job_type)
    (project / uid).mkdir(parents=True, exist_ok=True)
    ref = InputRef("particles", "J1", "particles", 0,
                   [OutputFileRef("dataset", "J1/particles.cs", 0)], project)
    progress: list[tuple[float, str]] = []
    ctx = JobContext("P1", uid, job_type, project, project / uid, jt.coerce_params(params or {}),
                     {"particles": [ref]}, logging.getLogger(f"test.{job_type}"),
                     progress_cb=lambda f, m: progress.append((f, m)))
    ctx.progress_log = progress  # type: ignore[attr-defined]
    return ctx


def run_job(ctx: JobContext) -> np.ndarray:
    registry.get(ctx.type).run(ctx)
    kinds = [ref.kind for _, ref in ctx.outputs]
    assert kinds.count("dataset") == 1
    cs = [ref for _, ref in ctx.outputs if ref.kind == "dataset"][0]
    return np.load(ctx.project_dir / cs.path)


def image(project: Path, row) -> np.ndarray:
    with mrcfile.open(project / row["blob/path"].decode(), permissive=True) as m:
        # a one-image stack reads as a 2-D image
        return np.array(m.data.reshape(-1, *m.data.shape[-2:])[int(row["blob/idx"])])


@pytest.fixture
def real_project(tmp_path, realdata_dir) -> Path:
    project = tmp_path / "P1"
    (project / "J1").mkdir(parents=True)
    os.symlink(realdata_dir / REAL_MRC, project / REAL_MRC)
    shutil.copy(realdata_dir / "empiar_10076_7.cs", project / "J1" / "particles.cs")
    return project


@pytest.fixture
def synth_project(tmp_path) -> Path:
    """Three stacks of 16x16 float32 and a scattered, shuffled 12-particle selection."""
    project = tmp_path / "P1"
    (project / "J1" / "extract").mkdir(parents=True)
    rng = np.random.default_rng(7)
    paths, idx = [], []
    for k, n in enumerate((9, 5, 11)):
        rel = f"J1/extract/mic_{k}.mrc"
        write_stack(project / rel, rng.standard_normal((n, 16, 16)).astype(np.float32), 1.5)
        for i in range(n):
            paths.append(rel)
            idx.append(i)
    pick = rng.permutation(len(paths))[:12]
    data = from_columns({"blob/path": [paths[i] for i in pick], "blob/idx": np.array(idx)[pick],
                         "blob/shape": np.tile([16, 16], (12, 1)), "blob/psize_A": 1.5,
                         "ctf/df1_A": rng.uniform(1e4, 2e4, 12)}, n=12)
    write_cs(project / "J1" / "particles.cs", data)
    return project


def job_files(project: Path, uid: str = "J2") -> list[Path]:
    return sorted(p for p in (project / uid).rglob("*") if p.is_file())


# -- registry --------------------------------------------------------------

def test_job_types_are_registered():
    for name in ("restack_particles", "downsample_particles"):
        jt = registry.get(name)
        assert jt.category == "utilities" and jt.run is not None
        assert jt.input_slot("particles").type == "particle"
        assert jt.output_group("particles").type == "particle"
        assert jt.default_params()["particles_per_file"] == 10000
        assert jt.default_params()["output_f16"] is False
    # the guide's consolidation: "with no need to change any parameters" (no box: keep it)
    assert registry.get("downsample_particles").coerce_params({})["new_box_size"] is None


# -- restack on real data ----------------------------------------------------

def test_restack_real_stack_is_exact(real_project, realdata_dir):
    src = np.load(real_project / "J1" / "particles.cs")
    ctx = make_ctx(real_project, "restack_particles", {"particles_per_file": 3})
    out = run_job(ctx)
    assert out.dtype.names == src.dtype.names and len(out) == len(src)
    np.testing.assert_array_equal(out["uid"], src["uid"])
    for name in src.dtype.names:
        if name not in ("blob/path", "blob/idx"):
            np.testing.assert_array_equal(out[name], src[name], err_msg=name)
    assert [p.decode() for p in out["blob/path"]] == ["J2/restack/batch_000.mrc"] * 3 + \
        ["J2/restack/batch_001.mrc"] * 3 + ["J2/restack/batch_002.mrc"]
    assert out["blob/idx"].tolist() == [0, 1, 2, 0, 1, 2, 0]
    with mrcfile.open(realdata_dir / REAL_MRC) as m:
        ref = np.array(m.data)
    for row, orig in zip(out, src):
        assert image(real_project, row).tobytes() == ref[orig["blob/idx"]].tobytes()
    blobs = [r for _, r in ctx.outputs if r.kind == "blob"]
    assert [b.path for b in blobs] == [f"J2/restack/batch_00{k}.mrc" for k in range(3)]
    assert all(b.size_bytes > 0 for b in blobs)
    for b in blobs:
        assert mrcfile.validate(str(real_project / b.path), print_file=open(os.devnull, "w"))
        with mrcfile.open(real_project / b.path) as m:
            assert m.header.ispg == 0  # image stack (mrcfile reads a 1-image stack as 2-D)
            assert m.voxel_size.x == pytest.approx(src["blob/psize_A"][0], rel=1e-6)
    assert ctx.results["particles"] == 7 and ctx.results["nonfinite"] == 0
    assert ctx.progress_log[-1][0] == 1.0
    assert not list((real_project / "J2").rglob(".*"))  # no temp file left behind


def test_restack_float16_is_the_float16_rounding(real_project, realdata_dir):
    out = run_job(make_ctx(real_project, "restack_particles", {"output_f16": True}))
    with mrcfile.open(realdata_dir / REAL_MRC) as m:
        ref = np.array(m.data)
    with mrcfile.open(real_project / out["blob/path"][0].decode()) as m:
        assert m.header.mode == 12
        got = np.array(m.data)
    assert got.dtype == np.float16
    assert got.tobytes() == ref.astype(np.float16).tobytes()


# -- downsample ---------------------------------------------------------------

def test_downsample_matches_numpy_reference(real_project, realdata_dir):
    src = np.load(real_project / "J1" / "particles.cs")
    ctx = make_ctx(real_project, "downsample_particles", {"new_box_size": 128})
    out = run_job(ctx)
    with mrcfile.open(realdata_dir / REAL_MRC) as m:
        ref = fourier_crop_numpy(np.array(m.data), 128)
    got = np.stack([image(real_project, r) for r in out])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-5 * np.abs(ref).max())
    assert out["blob/shape"].tolist() == [[128, 128]] * 7
    np.testing.assert_allclose(out["blob/psize_A"], src["blob/psize_A"] * 320 / 128, rtol=1e-6)
    np.testing.assert_array_equal(out["ctf/df1_A"], src["ctf/df1_A"])
    np.testing.assert_array_equal(out["uid"], src["uid"])
    with mrcfile.open(real_project / out["blob/path"][0].decode()) as m:
        assert m.voxel_size.x == pytest.approx(src["blob/psize_A"][0] * 2.5, rel=1e-5)
    assert ctx.results["box"] == 128


def test_downsample_float16(real_project, realdata_dir):
    out = run_job(make_ctx(real_project, "downsample_particles",
                           {"new_box_size": 160, "output_f16": True}))
    with mrcfile.open(realdata_dir / REAL_MRC) as m:
        ref = fourier_crop_numpy(np.array(m.data), 160).astype(np.float16)
    got = np.stack([image(real_project, r) for r in out])
    assert got.dtype == np.float16
    np.testing.assert_allclose(got.astype(np.float32), ref.astype(np.float32), atol=4e-3)


def test_downsample_to_same_box_is_an_exact_consolidation(synth_project):
    src = np.load(synth_project / "J1" / "particles.cs")
    out = run_job(make_ctx(synth_project, "downsample_particles", {"new_box_size": 16}))
    for row, orig in zip(out, src):
        assert image(synth_project, row).tobytes() == image(synth_project, orig).tobytes()
    np.testing.assert_array_equal(out["blob/psize_A"], src["blob/psize_A"])
    assert len(job_files(synth_project)) == 2  # one stack holding only the subset, one .cs


def test_downsample_with_no_parameters_changed_consolidates_the_subset(synth_project):
    """Issue 12, item 3: connect particles to Downsample Particles and run it as it comes."""
    src = np.load(synth_project / "J1" / "particles.cs")
    ctx = make_ctx(synth_project, "downsample_particles", {})
    out = run_job(ctx)
    assert len(out) == len(src) == 12 and out["blob/shape"].tolist() == [[16, 16]] * 12
    for row, orig in zip(out, src):
        assert image(synth_project, row).tobytes() == image(synth_project, orig).tobytes()
    np.testing.assert_array_equal(out["uid"], src["uid"])
    np.testing.assert_array_equal(out["blob/psize_A"], src["blob/psize_A"])
    stacks = [p for p in job_files(synth_project) if p.suffix == ".mrc"]
    assert len(stacks) == 1 and stacks[0].stat().st_size == 1024 + 12 * 16 * 16 * 4  # only the 12 used
    assert ctx.results["box"] == 16
    assert any("keeping the box" in m for _, m in ctx.progress_log) or ctx.results.get("consolidated")


@pytest.mark.parametrize("box, match", [(17, "even"), (400, "between 1 and"), (0, "between 1 and")])
def test_downsample_rejects_bad_box(real_project, box, match):
    with pytest.raises(UsageError, match=match):
        registry.get("downsample_particles").run(
            make_ctx(real_project, "downsample_particles", {"new_box_size": box}))


# -- scattered subsets ------------------------------------------------------

def test_scattered_shuffled_subset_across_stacks(synth_project):
    src = np.load(synth_project / "J1" / "particles.cs")
    out = run_job(make_ctx(synth_project, "restack_particles", {"particles_per_file": 5}))
    assert sorted({p.decode() for p in out["blob/path"]}) == [
        f"J2/restack/batch_00{k}.mrc" for k in range(3)]
    for row, orig in zip(out, src):
        assert image(synth_project, row).tobytes() == image(synth_project, orig).tobytes()
    np.testing.assert_array_equal(out["ctf/df1_A"], src["ctf/df1_A"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_gather_property(tmp_path_factory, data):
    """Any selection, any file size and batch size: every image lands where the plan says."""
    root = tmp_path_factory.mktemp("g")
    sizes = data.draw(st.lists(st.integers(1, 8), min_size=1, max_size=4))
    stacks = []
    for k, n in enumerate(sizes):
        arr = (np.arange(n * 4 * 3, dtype=np.float32).reshape(n, 4, 3) + 1000 * k)
        write_stack(root / f"s{k}.mrc", arr)
        stacks.append(arr)
    items = data.draw(st.lists(st.integers(0, len(sizes) - 1).flatmap(
        lambda k: st.tuples(st.just(k), st.integers(0, sizes[k] - 1))), min_size=1, max_size=30))
    per_file = data.draw(st.integers(1, 12))
    batch_bytes = data.draw(st.integers(1, 6)) * 48
    # read-ahead of none, a little or everything; written pages dropped behind the writer or not
    plan = gather([(root / f"s{k}.mrc", i) for k, i in items], root / "out",
                  particles_per_file=per_file, batch_bytes=batch_bytes,
                  readahead_bytes=data.draw(st.sampled_from([0, 48, 1 << 20])), drop_written=data.draw(st.booleans()))
    assert len(plan.outputs) == -(-len(items) // per_file)
    for item, (k, i) in enumerate(items):
        path, j = plan.destination(item)
        with mrcfile.open(path) as m:
            assert m.data.reshape(-1, 4, 3)[j].tobytes() == stacks[k][i].tobytes()
    shutil.rmtree(root)


@pytest.mark.parametrize("f16", [False, "numpy", "numba"], ids=["float32", "float16-numpy", "float16-numba"])
def test_output_bytes_match_a_numpy_reference_restack(tmp_path, f16):
    """Every output stack is byte for byte what a plain numpy restack gives: the images in item order
    (float32 as they are, float16 as numpy's ``astype``) after a 1024-byte header; NaN, ±inf, zeros,
    subnormals, adjacent and repeated items, several batches and stacks."""
    from cryodesk.kernels.batch import ParticleTransform

    rng = np.random.default_rng(11)
    stacks = []
    for k, n in enumerate((7, 5, 9)):
        arr = rng.standard_normal((n, 12, 10)).astype(np.float32) * np.float32(10 ** k)
        stacks.append(arr)
    stacks[0][2] = 0.0
    stacks[1][1, 3, 4], stacks[1][1, 5, 5], stacks[1][1, 6, 6] = np.nan, np.inf, -np.inf
    stacks[2][4] *= np.float32(1e-9)  # float16 subnormals and zeros
    for k, arr in enumerate(stacks):
        write_stack(tmp_path / f"s{k}.mrc", arr)
    items = [(2, 8), (0, 1), (0, 2), (0, 3), (1, 1), (2, 4), (2, 5), (2, 6), (0, 0), (1, 4), (1, 4), (2, 0),
             (0, 6), (1, 0), (1, 1)]
    plan = plan_gather([(tmp_path / f"s{k}.mrc", i) for k, i in items], tmp_path / "out", particles_per_file=4)
    transform = ParticleTransform(plan.n_items, plan.in_shape, plan.in_dtype, float16=bool(f16),
                                  float16_kernel=f16 or None)
    plan = plan.with_output(out_shape=transform.out_shape, out_dtype=transform.out_dtype,
                            batch_bytes=3 * 12 * 10 * 4)
    paths = execute_plan(plan, transform)
    with np.errstate(over="ignore", invalid="ignore"):
        ref = np.stack([stacks[k][i] for k, i in items]).astype(np.float16 if f16 else np.float32)
    assert len(paths) == 4
    for s, path in enumerate(paths):
        raw = path.read_bytes()
        assert raw[1024:] == ref[4 * s: 4 * s + 4].tobytes(), path.name
        with mrcfile.open(path) as m:
            assert m.header.mode == (12 if f16 else 2) and m.data.shape[-2:] == (12, 10)
    assert transform.flagged(1).tolist() == [i for i, it in enumerate(items) if it == (1, 1)]
    assert transform.flagged(2).tolist() == [2]


_NO_NUMBA_CHILD = r"""
import logging, sys
from pathlib import Path
import numpy as np
import cryodesk.jobs.restack  # noqa: F401  (registers the job types)
from cryodesk.core import registry
from cryodesk.core.context import InputRef, JobContext, OutputFileRef
from cryodesk.kernels import batch
project = Path(sys.argv[1])
if len(sys.argv) > 2:  # as if the input were 1 GiB or more
    batch.F16_NUMBA_MIN_BYTES = 1
jt = registry.get("restack_particles")
(project / "J2").mkdir()
ref = InputRef("particles", "J1", "particles", 0, [OutputFileRef("dataset", "J1/particles.cs", 0)], project)
ctx = JobContext("P1", "J2", jt.name, project, project / "J2", jt.coerce_params({"output_f16": True}),
                 {"particles": [ref]}, logging.getLogger("child"))
jt.run(ctx)
assert ctx.results["dtype"] == "float16", ctx.results
print("numba" in sys.modules)
"""


def test_small_float16_restack_never_loads_numba(synth_project):
    """Below F16_NUMBA_MIN_BYTES a float16 restack converts with numpy: numba (~150 MB, ~1 s) stays unloaded."""
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _NO_NUMBA_CHILD, str(synth_project)], capture_output=True,
                         text=True, env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2])))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False", out.stdout + out.stderr
    with mrcfile.open(synth_project / "J2" / "restack" / "batch_000.mrc") as m:
        assert m.header.mode == 12 and m.data.shape == (12, 16, 16)


def test_big_float16_restack_loads_numba_only_without_f16c(synth_project):
    """Above F16_NUMBA_MIN_BYTES a float16 restack converts with F16C where it can (numba stays unloaded:
    ~120 MB less) and loads numba only without it; the file is the same."""
    import subprocess
    import sys

    from cryodesk.kernels.f16c import AVAILABLE

    files = {}
    for disable in ("0", "1"):
        shutil.rmtree(synth_project / "J2", ignore_errors=True)
        out = subprocess.run([sys.executable, "-c", _NO_NUMBA_CHILD, str(synth_project), "big"],
                             capture_output=True, text=True,
                             env=dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]),
                                      CRYODESK_DISABLE_F16C=disable))
        assert out.returncode == 0, out.stderr
        assert out.stdout.strip() == str(disable == "1" or not AVAILABLE), out.stdout + out.stderr
        files[disable] = (synth_project / "J2" / "restack" / "batch_000.mrc").read_bytes()
    assert files["0"] == files["1"]


def test_plan_coalesces_adjacent_reads(tmp_path):
    write_stack(tmp_path / "a.mrc", np.zeros((10, 4, 4), np.float32))
    items = [(tmp_path / "a.mrc", i) for i in (0, 1, 2, 5, 6, 9)]
    plan = plan_gather(items, tmp_path / "out")
    assert plan.n_reads == 3
    assert plan.batches[0].runs[:, 3].tolist() == [3, 2, 1]


# -- checks on the way ----------------------------------------------------

def test_bad_particles_are_reported_not_dropped(synth_project, caplog):
    src = np.load(synth_project / "J1" / "particles.cs")
    rel, idx = src["blob/path"][0].decode(), int(src["blob/idx"][0])
    with mrcfile.open(synth_project / rel, mode="r+") as m:
        m.data[idx] = 0
    rel2, idx2 = src["blob/path"][1].decode(), int(src["blob/idx"][1])
    with mrcfile.open(synth_project / rel2, mode="r+") as m:
        m.data[idx2, 3, 3] = np.nan
    ctx = make_ctx(synth_project, "restack_particles")
    with caplog.at_level(logging.WARNING):
        out = run_job(ctx)
    assert len(out) == 12
    assert ctx.results["all_zero"] == 1 and ctx.results["nonfinite"] == 1
    assert str(int(src["uid"][0])) in caplog.text and str(int(src["uid"][1])) in caplog.text


# -- failures leave nothing behind -----------------------------------------------

def _assert_clean(ctx: JobContext):
    assert ctx.outputs == []
    assert job_files(ctx.project_dir, ctx.uid) == []


def test_missing_source(synth_project):
    src = np.load(synth_project / "J1" / "particles.cs")
    victim = src["blob/path"][3].decode()
    (synth_project / victim).unlink()
    ctx = make_ctx(synth_project, "restack_particles")
    with pytest.raises(DataError) as err:
        registry.get("restack_particles").run(ctx)
    msg = str(err.value)
    assert victim in msg and "not found" in msg
    first = next(i for i, p in enumerate(src["blob/path"]) if p.decode() == victim)
    assert f"uid {int(src['uid'][first])}" in msg and f"row {first}" in msg
    _assert_clean(ctx)


def test_truncated_source(synth_project):
    src = np.load(synth_project / "J1" / "particles.cs")
    victim = synth_project / src["blob/path"][0].decode()
    os.truncate(victim, victim.stat().st_size - 100)
    ctx = make_ctx(synth_project, "restack_particles")
    with pytest.raises(DataError, match="truncated") as err:
        registry.get("restack_particles").run(ctx)
    assert victim.name in str(err.value) and "particle uid" in str(err.value)
    _assert_clean(ctx)


def test_corrupt_header(synth_project):
    src = np.load(synth_project / "J1" / "particles.cs")
    victim = synth_project / src["blob/path"][0].decode()
    with open(victim, "r+b") as fh:
        fh.seek(12)
        fh.write(np.int32(77).tobytes())  # mode 77 does not exist
    ctx = make_ctx(synth_project, "restack_particles")
    with pytest.raises(DataError, match="corrupt") as err:
        registry.get("restack_particles").run(ctx)
    assert victim.name in str(err.value)
    _assert_clean(ctx)


def test_index_out_of_range(synth_project):
    src = np.load(synth_project / "J1" / "particles.cs")
    src["blob/idx"][4] = 999
    write_cs(synth_project / "J1" / "particles.cs", src)
    ctx = make_ctx(synth_project, "restack_particles")
    with pytest.raises(DataError, match="out of range") as err:
        registry.get("restack_particles").run(ctx)
    assert "row 4" in str(err.value) and "image 999" in str(err.value)
    _assert_clean(ctx)


def test_source_truncated_during_the_copy(tmp_path):
    write_stack(tmp_path / "a.mrc", np.ones((6, 8, 8), np.float32))
    plan = plan_gather([(tmp_path / "a.mrc", i) for i in (0, 5, 3)], tmp_path / "out")
    os.truncate(tmp_path / "a.mrc", 1024 + 4 * 256)
    with pytest.raises(SourceError, match="truncated") as err:
        execute_plan(plan)
    assert err.value.index == 5 and err.value.item == 1
    assert list((tmp_path / "out").iterdir()) == []


def _many_batches(monkeypatch):
    # 16x16 float32 images are 1 KiB: two per batch gives the synthetic set 6 batches.
    orig = gather_mod.GatherPlan.with_output

    def small(self, *a, **kw):
        kw["batch_bytes"] = 2048
        return orig(self, *a, **kw)

    monkeypatch.setattr(gather_mod.GatherPlan, "with_output", small)


def _watch_pwrite(monkeypatch, before) -> list[int]:
    """Route ``os.pwrite`` through ``before(n)`` (n = 1, 2, ... per call); returns the offsets written."""
    offsets: list[int] = []
    real_pwrite = os.pwrite

    def pwrite(fd, data, offset):
        before(len(offsets) + 1)
        offsets.append(offset)
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(os, "pwrite", pwrite)
    return offsets


def test_cancel_midway_removes_partial_files(synth_project, monkeypatch):
    _many_batches(monkeypatch)
    ctx = make_ctx(synth_project, "restack_particles", {"particles_per_file": 4})

    def fourth_write(n):
        if n == 4:  # two stacks under way
            ctx.cancel_event.set()

    writes = _watch_pwrite(monkeypatch, fourth_write)
    with pytest.raises(JobCancelled):
        registry.get("restack_particles").run(ctx)
    assert len(writes) >= 4
    _assert_clean(ctx)
    assert not (synth_project / "J2" / "restack").exists()


def test_disk_full_while_writing(synth_project, monkeypatch):
    _many_batches(monkeypatch)
    ctx = make_ctx(synth_project, "restack_particles", {"particles_per_file": 5})

    def full_after_four(n):
        if n > 4:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    _watch_pwrite(monkeypatch, full_after_four)
    with pytest.raises(DataError, match="disk full while writing .*batch_00") as err:
        registry.get("restack_particles").run(ctx)
    assert "partial output was removed" in str(err.value)
    _assert_clean(ctx)


def test_not_enough_space_is_refused_before_writing(synth_project, monkeypatch):
    real = os.statvfs

    class Tiny:
        def __init__(self, st):
            self.f_frsize, self.f_bavail = st.f_frsize, 1

    monkeypatch.setattr(os, "statvfs", lambda p: Tiny(real(p)))
    ctx = make_ctx(synth_project, "restack_particles")
    with pytest.raises(DataError, match="not enough disk space"):
        registry.get("restack_particles").run(ctx)
    _assert_clean(ctx)


def test_big_endian_and_int16_sources(tmp_path):
    data = np.arange(3 * 4 * 4, dtype=np.float32).reshape(3, 4, 4)
    with mrcfile.new(tmp_path / "be.mrc") as m:
        m.set_data(data.astype(">f4"))
    plan = gather([(tmp_path / "be.mrc", i) for i in (2, 0)], tmp_path / "out")
    with mrcfile.open(plan.outputs[0].path) as m:
        np.testing.assert_array_equal(m.data, data[[2, 0]])
    write_stack(tmp_path / "i.mrc", data.astype(np.int16))
    plan = gather([(tmp_path / "i.mrc", 1)], tmp_path / "out2")
    with mrcfile.open(plan.outputs[0].path) as m:
        assert m.data.dtype == np.int16 and m.data.tolist() == data[1].tolist()


def test_mixed_box_sizes_are_refused(tmp_path):
    write_stack(tmp_path / "a.mrc", np.zeros((2, 8, 8), np.float32))
    write_stack(tmp_path / "b.mrc", np.zeros((2, 6, 6), np.float32))
    with pytest.raises(SourceError, match="one\nshape|one shape"):
        plan_gather([(tmp_path / "a.mrc", 0), (tmp_path / "b.mrc", 1)], tmp_path / "out")


def test_restack_module_exports():
    assert restack_mod.run_restack and restack_mod.run_downsample


def test_downsample_rescales_alignment_shifts_and_pixel_sizes(synth_project):
    path = synth_project / "J1" / "particles.cs"
    src = np.load(path)
    cols = {n: src[n] for n in src.dtype.names}
    rng = np.random.default_rng(3)
    cols["alignments2D/shift"] = rng.uniform(-4, 4, (len(src), 2)).astype(np.float32)
    cols["alignments3D/shift"] = rng.uniform(-4, 4, (len(src), 2)).astype(np.float32)
    cols["alignments3D/psize_A"] = np.full(len(src), 1.5, np.float32)
    write_cs(path, from_columns(cols, n=len(src)))
    out = run_job(make_ctx(synth_project, "downsample_particles", {"new_box_size": 8}))
    np.testing.assert_allclose(out["alignments2D/shift"], cols["alignments2D/shift"] / 2, rtol=1e-6)
    np.testing.assert_allclose(out["alignments3D/shift"], cols["alignments3D/shift"] / 2, rtol=1e-6)
    np.testing.assert_allclose(out["alignments3D/psize_A"], 3.0, rtol=1e-6)
    np.testing.assert_allclose(out["blob/psize_A"], 3.0, rtol=1e-6)
