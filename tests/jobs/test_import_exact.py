"""What an import of a many-stack ``.cs`` writes, to the byte, through the real runner (outputs, manifest).

The imported ``.cs`` must be ``np.save`` of the dataset built field by field
(the paths renamed, shapes and pixel sizes from the headers where the metadata
has none), the outputs a link per stack in first-seen order in the database
and in ``job.json``, and ``job.json`` the text ``json.dumps`` gives its content.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import pytest

from cryodesk.core import jobs, manifest, runner
from cryodesk.db.models import OutputFile
from cryodesk.io import cs, mrc

try:
    from cryosparc.dataset import Dataset
except ImportError:  # pragma: no cover - test-time oracle only
    Dataset = None


@pytest.fixture
def particle_set(tmp_path):
    rng = np.random.default_rng(7)
    raw = tmp_path / "csproj"
    (raw / "J3" / "extract").mkdir(parents=True)
    (raw / "J4").mkdir()
    stacks, sizes = [], []
    for k in range(45):  # two stacks of one name in two directories: de-duplicated link names
        rel = f"J{3 + (k == 44)}/{'extract/' if k < 44 else ''}s{k % 44:03d}_particles.mrc"
        nz = int(rng.integers(3, 9))
        mrc.write_stack(raw / rel, rng.normal(size=(nz, 6, 6)).astype(np.float32), voxel_size=1.25 + k % 2)
        stacks.append(rel)
        sizes.append(nz)
    n = 1500
    stack_of = np.sort(rng.integers(0, len(stacks), n))
    stack_of[700:760] = rng.permutation(stack_of[700:760])  # runs broken up, a stack seen again later
    cols = {
        "uid": cs.new_uids(n, rng),
        "blob/path": np.array(stacks, dtype="S")[stack_of],
        "blob/idx": (rng.integers(0, 1 << 20, n) % np.array(sizes)[stack_of]).astype(np.uint32),
        "blob/shape": np.where((stack_of % 5 == 0)[:, None], 0, 6).astype(np.uint32) * np.ones((n, 2), np.uint32),
        "blob/psize_A": np.where(stack_of % 3 == 0, 0.0, 1.06).astype(np.float32),
        "ctf/df1_A": rng.uniform(1e4, 2e4, n).astype(np.float32),
        "alignments3D/psize_A": np.where(stack_of % 4 == 0, 0.0, 1.1).astype(np.float32),
        "alignments3D/pose": rng.normal(size=(n, 3)).astype(np.float32),
        "location/micrograph_path": np.array([f"J2/mic_{k}.mrc" for k in range(len(stacks))], dtype="S")[stack_of],
    }
    data = cs.from_columns(cols, n)
    meta = tmp_path / "J10_particles.cs"
    with open(meta, "wb") as fh:
        np.save(fh, data)
    return meta, raw, data, stacks, stack_of


def _expected(data, stacks, stack_of, raw, uid):
    names, seen = {}, set()
    for rel in dict.fromkeys(stacks[i] for i in stack_of.tolist()):  # first-seen order, as linked
        name, k = rel.rsplit("/", 1)[1], 1
        while name in seen:
            name, k = f"{k:03d}_{rel.rsplit('/', 1)[1]}", k + 1
        seen.add(name)
        names[rel] = name
    info = {rel: mrc.read_header(raw / rel) for rel in names}
    cols = {f: data[f] for f in data.dtype.names}
    rels = [stacks[i] for i in stack_of.tolist()]
    cols["blob/path"] = np.array([f"{uid}/imported/{names[r]}" for r in rels])
    cols["blob/shape"] = np.array([info[r].shape for r in rels], dtype=np.uint32)
    header_psize = np.array([info[r].voxel_size for r in rels], dtype=np.float32)
    psize = np.where(data["blob/psize_A"] > 0, data["blob/psize_A"], header_psize)
    cols["blob/psize_A"] = psize
    cols["alignments3D/psize_A"] = np.where(data["alignments3D/psize_A"] > 0, data["alignments3D/psize_A"], psize)
    buf = io.BytesIO()
    np.save(buf, cs.from_columns(cols, len(data)))
    return buf.getvalue(), list(names.values())


def test_imported_files_exactly(project, particle_set):
    meta, raw, data, stacks, stack_of = particle_set
    job = jobs.create_job(project, "import_particles",
                          params={"particle_meta_path": str(meta), "particle_blob_path": str(raw)})
    done = runner.run_job(project, job)
    assert done.status == "completed", done.error
    jdir = Path(project.directory) / job.uid
    want_cs, link_names = _expected(data, stacks, stack_of, raw, job.uid)
    assert (jdir / "imported_particles.cs").read_bytes() == want_cs
    assert sorted(p.name for p in (jdir / "imported").iterdir()) == sorted(link_names)
    assert "001_s000_particles.mrc" in link_names
    rows = list(OutputFile.select(OutputFile.group, OutputFile.kind, OutputFile.path)
                .where(OutputFile.job == done.id).order_by(OutputFile.id).tuples())
    assert rows == ([("particles", "dataset", f"{job.uid}/imported_particles.cs"),
                     ("particles", "csg", f"{job.uid}/imported_particles.csg")]
                    + [("particles", "blob", f"{job.uid}/imported/{name}") for name in link_names])
    text = (jdir / "job.json").read_text()
    doc = json.loads(text)
    assert text == json.dumps(doc, indent=1, sort_keys=True, default=str)
    assert [o["path"] for o in doc["outputs"]] == [r[2] for r in sorted(rows, key=lambda r: r[0])]
    assert doc == manifest.job_document(done) | {"size_bytes": doc["size_bytes"]}
    assert done.size_bytes == doc["size_bytes"]
    if Dataset is not None:
        ds = Dataset.load(jdir / "imported_particles.cs")
        assert list(ds["blob/path"])[:1] == [f"{job.uid}/imported/{link_names[0]}"]
        np.testing.assert_array_equal(ds["uid"], data["uid"])


def test_link_target_is_the_resolved_stack(tmp_path, monkeypatch):
    from cryodesk.io.stack_links import link_target as _link_target

    (tmp_path / "disk" / "extract").mkdir(parents=True)
    (tmp_path / "disk" / "extract" / "a.mrc").write_bytes(b"")
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "J3").symlink_to(tmp_path / "disk")  # a job directory on another disk
    (tmp_path / "disk" / "extract" / "b.mrc").symlink_to("a.mrc")  # a linked stack
    (tmp_path / "disk" / "extract" / "up").symlink_to(tmp_path / "proj")
    (tmp_path / "disk" / "extract" / "c.mrc").symlink_to(tmp_path / "proj/J3/extract/b.mrc")  # a chain of links
    (tmp_path / "disk" / "extract" / "d.mrc").symlink_to("up/J3/../J3/extract/c.mrc")  # '..' after a link
    (tmp_path / "disk" / "extract" / "e.mrc").symlink_to(tmp_path / "disk/gone.mrc")  # dangling
    (tmp_path / "disk" / "extract" / "f.mrc").symlink_to("up/J3/extract/..")  # to a directory, by '..'
    monkeypatch.chdir(tmp_path / "proj")
    cases = [tmp_path / "proj/J3/extract/a.mrc", tmp_path / "proj/J3/extract/b.mrc", Path("J3/extract/a.mrc"),
             Path("J3/extract/../extract/b.mrc"), tmp_path / "proj/J3/extract/up/J3/extract/a.mrc",
             Path(str(tmp_path) + "//proj/J3//extract/a.mrc"), Path("J3/extract/missing.mrc"),
             Path("J3/extract/c.mrc"), Path("J3/extract/d.mrc"), Path("J3/extract/e.mrc"), Path("J3/extract/f.mrc")]
    # links to links (an export's stacks/ linked again): relative, absolute, through a linked directory,
    # with '..' after a link, a loop, a dangling one
    (tmp_path / "disk" / "extract" / "c2.mrc").symlink_to("b.mrc")
    (tmp_path / "disk" / "extract" / "d2.mrc").symlink_to(tmp_path / "proj/J3/extract/c2.mrc")
    (tmp_path / "disk" / "extract" / "e2.mrc").symlink_to("up/J3/extract/../extract/d2.mrc")
    (tmp_path / "disk" / "extract" / "loop1.mrc").symlink_to("loop2.mrc")
    (tmp_path / "disk" / "extract" / "loop2.mrc").symlink_to("loop1.mrc")
    (tmp_path / "disk" / "extract" / "dangling.mrc").symlink_to("nowhere/x.mrc")
    (tmp_path / "disk" / "extract" / "dot.mrc").symlink_to("..")
    cases += [Path(f"J3/extract/{n}.mrc") for n in ("c2", "d2", "e2", "loop1", "dangling", "dot")]
    real_dirs: dict[str, str] = {}
    for p in cases * 2:
        assert _link_target(p, real_dirs) == (os.path.realpath(p) if "loop" in p.name else str(p.resolve())), p


def _left(jdir: Path) -> list[str]:
    return sorted(p.name for p in jdir.rglob("*") if p.name not in ("job.json", "job.log", "results.json"))


def test_a_link_that_cannot_be_made_fails_the_import_and_leaves_nothing(project, particle_set, monkeypatch):
    """The links are made in a thread alongside the .cs write: its error is the job's, and all is removed."""
    import os

    from cryodesk.jobs import particles_io

    meta, raw, *_ = particle_set
    made = []
    real_symlink = os.symlink

    def symlink(target, name, *, dir_fd=None):
        if len(made) == 30:
            raise OSError(28, "No space left on device", target, None, name)
        made.append(name)
        real_symlink(target, name, dir_fd=dir_fd)

    monkeypatch.setattr(particles_io.os, "symlink", symlink)
    job = jobs.create_job(project, "import_particles",
                          params={"particle_meta_path": str(meta), "particle_blob_path": str(raw)})
    done = runner.run_job(project, job)
    assert done.status == "failed" and "No space left on device" in done.error, done.error
    assert len(made) == 30 and _left(Path(project.directory) / job.uid) == []
    assert not OutputFile.select().where(OutputFile.job == done.id).exists()


def test_a_write_failing_while_links_are_made_leaves_nothing(project, particle_set, monkeypatch):
    """The .cs write fails while the link thread runs (held back here): it is waited for, then all is removed."""
    import errno
    import threading

    from cryodesk.io import stack_links
    from cryodesk.jobs import particles_io

    meta, raw, *_ = particle_set
    gate, real_make = threading.Event(), stack_links.make_links
    finished = []

    def slow_make(links, names, *args):
        gate.wait(10)  # still making links when the write fails
        real_make(links, names, *args)
        finished.append(len(list(links.iterdir())))

    def failing_write(path, *args, **kwargs):  # (the real one's AtomicFile removes its temp file)
        gate.set()
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(stack_links, "make_links", slow_make)
    monkeypatch.setattr(particles_io, "write_cs_replacing", failing_write)
    job = jobs.create_job(project, "import_particles",
                          params={"particle_meta_path": str(meta), "particle_blob_path": str(raw)})
    done = runner.run_job(project, job)
    assert done.status == "failed" and "No space left on device" in done.error, done.error
    assert finished == [45]  # the thread had finished before the removal, so nothing was made after it
    assert _left(Path(project.directory) / job.uid) == []


def test_a_bad_stack_is_refused_before_anything_is_written(project, particle_set):
    meta, raw, data, stacks, _ = particle_set
    (raw / stacks[5]).write_bytes(b"not an MRC file")
    job = jobs.create_job(project, "import_particles",
                          params={"particle_meta_path": str(meta), "particle_blob_path": str(raw)})
    done = runner.run_job(project, job)
    assert done.status == "failed" and stacks[5].rsplit("/", 1)[1] in done.error, done.error
    assert _left(Path(project.directory) / job.uid) == []


@pytest.mark.parametrize("first_end_write_fails", [False, True])
def test_manifest_written_once_at_the_end_unless_that_write_failed(project, particle_set, monkeypatch,
                                                                   first_end_write_fails):
    """The runner's end-of-run job.json is not rewritten after it with the same size (5,000 outputs a
    megabyte each time); when that write failed (a full disk), the size step writes it."""
    from cryodesk.base.errors import DataError

    meta, raw, *_ = particle_set
    calls, real_write = [], manifest.write_job

    def write_job(job, *args, **kwargs):
        calls.append(job.status)
        if first_end_write_fails and calls.count("completed") == 1 and job.status == "completed":
            raise DataError("cannot write job.json: No space left on device (nothing was changed)")
        return real_write(job, *args, **kwargs)

    monkeypatch.setattr(manifest, "write_job", write_job)
    job = jobs.create_job(project, "import_particles",
                          params={"particle_meta_path": str(meta), "particle_blob_path": str(raw)})
    done = runner.run_job(project, job)
    assert done.status == "completed", done.error
    assert calls.count("completed") == (2 if first_end_write_fails else 1), calls
    doc = json.loads((Path(project.directory) / job.uid / "job.json").read_text())
    assert doc["status"] == "completed" and doc["size_bytes"] == done.size_bytes
    assert doc == manifest.job_document(done) | {"size_bytes": doc["size_bytes"]}


def test_a_pixel_size_that_is_not_a_positive_finite_number_is_taken_from_the_header(project, tmp_path):
    """0, a negative, NaN or infinite blob/psize_A (and alignments3D/psize_A) is unknown: the stack's header gives it
    (an infinite one was kept as it was: every shift in Å and every resolution of the particles infinite)."""
    raw = tmp_path / "raw"
    raw.mkdir()
    mrc.write_stack(raw / "s.mrc", np.ones((6, 4, 4), np.float32), voxel_size=1.5)
    odd = np.array([np.inf, np.nan, -1.0, 0.0, 2.0, np.inf], np.float32)
    data = cs.from_columns({"uid": np.arange(6, dtype=np.uint64) + 1, "blob/path": np.array(["s.mrc"] * 6, "S"),
                            "blob/idx": np.arange(6, dtype=np.uint32), "blob/psize_A": odd,
                            "alignments3D/psize_A": odd[::-1].copy()}, 6)
    cs.write_cs(raw / "p.cs", data)
    job = jobs.create_job(project, "import_particles", params={"particle_meta_path": str(raw / "p.cs")})
    done = runner.run_job(project, job)
    assert done.status == "completed", done.error
    got = cs.read_cs(Path(project.directory) / job.uid / "imported_particles.cs")
    assert got["blob/psize_A"].tolist() == [1.5, 1.5, 1.5, 1.5, 2.0, 1.5]
    assert got["alignments3D/psize_A"].tolist() == [1.5, 2.0, 1.5, 1.5, 2.0, 1.5]  # unknown: the images'
