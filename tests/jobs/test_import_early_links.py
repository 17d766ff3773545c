"""A large STAR import makes its links while the file is converted (particles_io._EarlyLinks).

The early way must give the same files and links as the ordinary way (links after the validation), the
same error at the same place when anything is wrong, and leave nothing behind when it fails or is
cancelled after its links were begun (the thread waited for first).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from cryodesk.base.errors import DataError, JobCancelled
from cryodesk.core import registry
from cryodesk.core.context import JobContext
from cryodesk.io import cs, mrc, symlinks
from cryodesk.jobs import particles_io

pytestmark = pytest.mark.skipif(not symlinks.HAVE_NUMBA, reason="the early links need the compiled loop")

N_STACKS, PER_STACK = 6, 5


def _write_set(d: Path, defocus: str = "15301.1", rows: int | None = None) -> Path:
    """``N_STACKS`` small stacks and a RELION 3.1 STAR file of their images."""
    d.mkdir(parents=True, exist_ok=True)
    for k in range(N_STACKS):
        mrc.write_stack(d / f"stack_{k:02d}_with_a_name_long_enough_for_a_slow_symlink.mrcs",
                        np.full((PER_STACK, 8, 8), k, np.float32), voxel_size=1.5)
    lines = ["", "data_optics", "", "loop_", "_rlnOpticsGroup", "_rlnOpticsGroupName", "_rlnVoltage",
             "_rlnSphericalAberration", "_rlnAmplitudeContrast", "_rlnImagePixelSize", "_rlnImageSize",
             "1 opticsGroup1 300.0 2.7 0.1 1.5 8", "", "data_particles", "", "loop_", "_rlnImageName",
             "_rlnDefocusU", "_rlnDefocusV", "_rlnAngleRot", "_rlnAngleTilt", "_rlnAnglePsi", "_rlnOpticsGroup"]
    n = 0
    for k in range(N_STACKS):
        for i in range(PER_STACK):
            value = defocus if n == 7 else f"{15000 + n}.5"
            lines.append(f"{i + 1:06d}@stack_{k:02d}_with_a_name_long_enough_for_a_slow_symlink.mrcs "
                         f"{value} 14916.4 {n % 360}.25 {n % 180}.5 {n % 90}.125 1")
            n += 1
    path = d / "particles.star"
    path.write_text("\n".join(lines) + "\n")
    return path


def _ctx(project: Path, uid: str, meta: Path) -> JobContext:
    jt = registry.get("import_particles")
    return JobContext("P1", uid, jt.name, project, project / uid, jt.coerce_params({"particle_meta_path": str(meta)}),
                      {}, logging.getLogger(f"test.{uid}"))


def _run(project: Path, uid: str, meta: Path) -> JobContext:
    ctx = _ctx(project, uid, meta)
    registry.get("import_particles").run(ctx)
    return ctx


@pytest.fixture()
def early(monkeypatch):
    """Every STAR import the early way; counts the link batches begun early."""
    monkeypatch.setattr(particles_io, "EARLY_LINK_BYTES", 0)
    begun = []
    real = particles_io._EarlyLinks.__call__

    def spy(self, paths):
        real(self, paths)
        if self.begun is not None:  # (begun in a thread of its own: wait for it to see what it did)
            self.begun.join()
        begun.append(self.linker is not None)

    monkeypatch.setattr(particles_io._EarlyLinks, "__call__", spy)
    return begun


def _files(job: Path) -> tuple[str, dict[str, str]]:
    cs_sha = hashlib.sha256((job / "imported_particles.cs").read_bytes()).hexdigest()
    links = {p.name: os.readlink(p) for p in sorted((job / "imported").iterdir())}
    return cs_sha, links


def _nothing_left(job: Path) -> None:
    left = list(job.rglob("*")) if job.exists() else []
    assert left == [], f"left behind: {left}"


def test_early_links_same_files_as_the_ordinary_way(tmp_path, monkeypatch, early):
    meta = _write_set(tmp_path / "raw")
    ctx = _run(tmp_path, "J1", meta)
    assert early == [True]
    monkeypatch.setattr(particles_io, "EARLY_LINK_BYTES", 1 << 60)  # the ordinary way
    ordinary = _run(tmp_path, "J2", meta)
    assert early == [True, False]  # (not begun for the second)
    sha1, links1 = _files(tmp_path / "J1")
    sha2, links2 = _files(tmp_path / "J2")
    assert links1 == links2 and len(links1) == N_STACKS
    # the .cs differs only in the job directory's name inside blob/path (and the uids: new ones, random)
    a = cs.read_cs(tmp_path / "J1/imported_particles.cs")
    b = cs.read_cs(tmp_path / "J2/imported_particles.cs")
    assert a.dtype == b.dtype
    for f in a.dtype.names:
        if f == "blob/path":
            np.testing.assert_array_equal(np.char.replace(a[f], b"J1/", b"J2/"), b[f])
        elif f != "uid":
            np.testing.assert_array_equal(a[f], b[f], err_msg=f)
    assert sorted(f.path for _, f in ctx.outputs) == sorted(f.path.replace("J2/", "J1/") for _, f in ordinary.outputs)
    for name, target in links1.items():
        assert (tmp_path / "J1/imported" / target).resolve() == (tmp_path / "raw" / name).resolve()


def test_links_inside_the_project_are_relative(tmp_path, early):
    meta = _write_set(tmp_path / "J5" / "exported")  # another job's stacks: linked relative to the project
    _run(tmp_path, "J1", meta)
    assert early == [True]
    _, links = _files(tmp_path / "J1")
    assert all(t.startswith("../../J5/exported/") for t in links.values())


def test_validation_failure_after_early_links_leaves_nothing(tmp_path, early):
    meta = _write_set(tmp_path / "raw")
    stack = next((tmp_path / "raw").glob("stack_03_*"))
    with open(stack, "r+b") as fh:
        fh.truncate(1024 + 8 * 8 * 4 * 2)
    with pytest.raises(DataError, match=r"stack_03_.*truncated particle stack"):
        _run(tmp_path, "J9", meta)
    assert early == [True]
    _nothing_left(tmp_path / "J9")


def test_conversion_failure_after_early_links_leaves_nothing(tmp_path, early):
    meta = _write_set(tmp_path / "raw", defocus="1e39")  # beyond float32: refused once the paths are known
    with pytest.raises(DataError, match=r"_rlnDefocusU of particle 8 is 1e\+39"):
        _run(tmp_path, "J9", meta)
    assert early == [True]
    _nothing_left(tmp_path / "J9")


def test_cancel_after_early_links_waits_and_leaves_nothing(tmp_path, monkeypatch, early):
    meta = _write_set(tmp_path / "raw")
    real = symlinks.symlink_all
    started, done = threading.Event(), threading.Event()

    def slow(fd, batch):  # still making links when the cancel arrives
        started.set()
        time.sleep(0.3)
        try:
            real(fd, batch)
        finally:
            done.set()

    monkeypatch.setattr(symlinks, "symlink_all", slow)
    ctx = _ctx(tmp_path, "J9", meta)
    real_validate = particles_io.validate_stacks

    def validate(pset, check_cancel, progress):
        assert started.wait(5)
        ctx.cancel_event.set()
        return real_validate(pset, check_cancel, progress)

    monkeypatch.setattr(particles_io, "validate_stacks", validate)
    with pytest.raises(JobCancelled):
        registry.get("import_particles").run(ctx)
    assert done.is_set()  # the thread was waited for (before the removal)
    assert early == [True]
    _nothing_left(tmp_path / "J9")
    time.sleep(0.4)  # nothing made after the removal either
    _nothing_left(tmp_path / "J9")


def test_missing_stack_same_error_no_links(tmp_path, early):
    meta = _write_set(tmp_path / "raw")
    next((tmp_path / "raw").glob("stack_02_*")).unlink()
    with pytest.raises(DataError, match=r"(?s)stack_02_.*particle stack not found \(used by 5 particle"):
        _run(tmp_path, "J9", meta)
    _nothing_left(tmp_path / "J9")


def test_escaping_path_is_not_linked_early(tmp_path, early):
    meta = _write_set(tmp_path / "raw")
    meta.write_text(meta.read_text().replace("000001@stack_00", "000001@../stack_00"))
    with pytest.raises(DataError, match=r"escapes the particle data directory"):
        _run(tmp_path, "J9", meta)
    assert early == [False]
    _nothing_left(tmp_path / "J9")


def test_existing_links_directory_same_error(tmp_path, early):
    meta = _write_set(tmp_path / "raw")
    (tmp_path / "J9" / "imported").mkdir(parents=True)
    with pytest.raises(FileExistsError):
        _run(tmp_path, "J9", meta)
    assert early == [False]
    assert list((tmp_path / "J9").iterdir()) == [tmp_path / "J9" / "imported"]  # not ours: left as it was
    shutil.rmtree(tmp_path / "J9")


def test_link_failure_in_the_thread_is_raised_and_cleaned(tmp_path, monkeypatch, early):
    meta = _write_set(tmp_path / "raw")

    def failing(fd, batch):
        os.symlink(batch.pairs[0][0], batch.pairs[0][1], dir_fd=fd)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(symlinks, "symlink_all", failing)
    with pytest.raises(OSError, match="No space left"):
        _run(tmp_path, "J9", meta)
    assert early == [True]
    _nothing_left(tmp_path / "J9")


def test_the_links_begun_in_a_thread_raise_in_the_import(tmp_path, monkeypatch):
    """The stacks are located and the links begun in a thread (the conversion goes on meanwhile): what fails
    there unexpectedly is raised by the import (as when it ran in the import's own thread), and nothing is
    left."""
    monkeypatch.setattr(particles_io, "EARLY_LINK_BYTES", 0)
    meta = _write_set(tmp_path / "raw")
    seen = []

    def broken(stacks):
        seen.append(threading.current_thread().name)
        raise MemoryError("out of memory")

    monkeypatch.setattr(particles_io, "link_names", broken)
    with pytest.raises(MemoryError, match="out of memory"):
        _run(tmp_path, "J9", meta)
    assert seen == ["import-links-begin"]
    _nothing_left(tmp_path / "J9")
