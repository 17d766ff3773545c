"""Export links its stacks by default (either format); clearing or deleting the export never touches them.

Through the real runner and the one deletion service: the export's ``stacks/``
entries are symlinks recorded as the job's own files (as the import's links are), the
STAR names them ``stacks/<name>`` relative to itself, and a clear or delete of
the export removes the links only: the raw stacks and the import's links stay.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from cryodesk.core import actions, jobs, runner
from cryodesk.db.models import OutputFile
from cryodesk.io import cs, mrc, star


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def imported(project, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    rng = np.random.default_rng(5)
    for k in range(3):
        mrc.write_stack(raw / f"s{k}.mrc", rng.normal(size=(4, 6, 6)).astype(np.float32), voxel_size=1.1)
    n = 9
    data = cs.from_columns({"uid": cs.new_uids(n, rng),
                            "blob/path": np.array([f"s{k % 3}.mrc" for k in range(n)], dtype="S"),
                            "blob/idx": (np.arange(n) % 4).astype(np.uint32),
                            "ctf/df1_A": rng.uniform(1e4, 2e4, n).astype(np.float32)}, n)
    cs.write_cs(raw / "parts.cs", data)
    imp = jobs.create_job(project, "import_particles", params={"particle_meta_path": str(raw / "parts.cs")})
    assert runner.run_job(project, imp).status == "completed"
    return imp, raw


def _export(project, imp, **params):
    job = jobs.create_job(project, "export_particles", inputs=[jobs.InputSpec("particles", imp.uid)], params=params)
    done = runner.run_job(project, job)
    assert done.status == "completed", done.error
    return done


@pytest.mark.parametrize("fmt", ["relion", "cryosparc"])
def test_export_links_by_default_and_cleanup_keeps_the_stacks(project, imported, fmt):
    imp, raw = imported
    pdir = Path(project.directory)
    before = {p.name: _sha(p) for p in raw.glob("s*.mrc")}
    done = _export(project, imp, format=fmt)
    stacks = pdir / done.uid / "exported" / "stacks"
    links = sorted(stacks.iterdir())
    assert [p.name for p in links] == ["s0.mrc", "s1.mrc", "s2.mrc"]
    assert all(p.is_symlink() and p.resolve() == (raw / p.name).resolve() for p in links)
    rows = dict(OutputFile.select(OutputFile.path, OutputFile.size_bytes)
                .where(OutputFile.job == done.id, OutputFile.kind == "blob").tuples())
    assert rows == {f"{done.uid}/exported/stacks/{p.name}": 0 for p in links}  # as the import records its links
    if fmt == "relion":
        names = star.read_star(pdir / done.uid / "exported" / "particles.star")["particles"].columns["rlnImageName"]
        assert {str(v).split("@")[1] for v in cs.as_str(names)} == {"stacks/s0.mrc", "stacks/s1.mrc", "stacks/s2.mrc"}
    result = actions.clear_jobs(project, [done])
    assert all(o.ok for o in result.outcomes), result.outcomes
    assert not stacks.exists()
    assert {p.name: _sha(p) for p in raw.glob("s*.mrc")} == before  # the linked stacks untouched
    assert all((pdir / imp.uid / "imported" / name).is_symlink() for name in before)
    again = _export(project, imp, format=fmt)
    result = actions.delete_jobs(project, [again])
    assert all(o.ok for o in result.outcomes), result.outcomes
    assert not (pdir / again.uid).exists()
    assert {p.name: _sha(p) for p in raw.glob("s*.mrc")} == before


def test_relion_copy_stacks_copies_real_files(project, imported):
    imp, raw = imported
    pdir = Path(project.directory)
    done = _export(project, imp, format="relion", copy_stacks=True)
    stacks = pdir / done.uid / "exported" / "stacks"
    for p in stacks.iterdir():
        assert not p.is_symlink() and p.read_bytes() == (raw / p.name).read_bytes()
    rows = dict(OutputFile.select(OutputFile.path, OutputFile.size_bytes)
                .where(OutputFile.job == done.id, OutputFile.kind == "blob").tuples())
    assert rows == {f"{done.uid}/exported/stacks/{p.name}": p.stat().st_size for p in stacks.iterdir()}
    assert actions.clear_jobs(project, [done]).outcomes[0].ok
    assert all((raw / f"s{k}.mrc").is_file() for k in range(3))


def test_links_into_the_project_are_relative_so_a_moved_project_stays_whole(project, imported, tmp_path):
    """An export of a restack links the restack's stacks by a relative path: a copy of the project elsewhere
    (project move, archive, attach on another machine) still reads them; raw data keeps its absolute path."""
    import os
    import shutil

    imp, raw = imported
    pdir = Path(project.directory)
    rs = jobs.create_job(project, "restack_particles", inputs=[jobs.InputSpec("particles", imp.uid)])
    assert runner.run_job(project, rs).status == "completed"
    done = _export(project, rs, format="relion")
    links = sorted((pdir / done.uid / "exported" / "stacks").iterdir())
    assert links and all(not os.path.isabs(os.readlink(p)) for p in links)
    assert all(p.resolve().is_relative_to(pdir.resolve() / rs.uid) for p in links)
    moved = tmp_path / "elsewhere"
    shutil.copytree(pdir, moved, symlinks=True)
    for p in links:
        there = moved / done.uid / "exported" / "stacks" / p.name
        assert there.resolve().is_relative_to(moved.resolve()) and there.read_bytes() == p.read_bytes()
    assert all(os.path.isabs(os.readlink(p)) for p in (pdir / imp.uid / "imported").iterdir())  # raw: absolute
    before = {p.name: _sha(p) for p in (pdir / rs.uid / "restack").iterdir()}
    assert actions.clear_jobs(project, [done]).outcomes[0].ok  # moved to the trash as links, emptied: never followed
    assert actions.delete_jobs(project, [_export(project, rs, format="cryosparc")]).outcomes[0].ok
    assert {p.name: _sha(p) for p in (pdir / rs.uid / "restack").iterdir()} == before


def test_clearing_a_restack_warns_of_a_linked_final_export_only_and_says_how_to_keep_it(project, imported):
    """A final export that links the restack's stacks loses them: the warning says to export with copied stacks
    (a restack of the export, the advice for other finals, fails on a RELION export: it has no .cs); a final export
    that copied them loses nothing and is not named."""
    from cryodesk.core.cleanup.model import CleanupOptions
    from cryodesk.core.cleanup.planner import plan_cleanup

    imp, _ = imported
    rs = jobs.create_job(project, "restack_particles", inputs=[jobs.InputSpec("particles", imp.uid)])
    assert runner.run_job(project, rs).status == "completed"
    linked = _export(project, rs, format="relion")
    copied = _export(project, rs, format="relion", copy_stacks=True)
    from cryodesk.core import finals

    finals.set_final(project, [linked, copied], True)
    for warnings in (actions.plan_clear(project, [jobs.get_job(project, rs.uid)]).warnings,
                     plan_cleanup(project, CleanupOptions(restack=True)).warnings):
        assert len(warnings) == 1 and warnings[0].startswith(f"final result {linked.uid} loses"), warnings
        assert "copy_stacks=true" in warnings[0] and f"particles={linked.uid}" not in warnings[0], warnings


def test_a_link_that_cannot_be_made_fails_the_export_and_leaves_nothing(project, imported, monkeypatch):
    """The STAR export's links are made by the compiled loop in a thread: its failure is the job's."""
    import errno
    import os

    from cryodesk.io import symlinks

    imp, _ = imported
    real = os.symlink

    def symlink(target, name, *, dir_fd=None):  # the retry after the loop stopped: the system's error
        if name.startswith("s1"):
            raise OSError(errno.ENOSPC, "No space left on device", target, None, name)
        real(target, name, dir_fd=dir_fd)

    monkeypatch.setattr(symlinks, "_kernel", lambda buf, toff, noff, fd, start: start)  # stops at each link
    monkeypatch.setattr(symlinks.os, "symlink", symlink)
    job = jobs.create_job(project, "export_particles", inputs=[jobs.InputSpec("particles", imp.uid)],
                          params={"format": "relion"})
    done = runner.run_job(project, job)
    assert done.status == "failed" and "No space left on device" in done.error, done.error
    assert not (Path(project.directory) / job.uid / "exported").exists()
    assert not OutputFile.select().where(OutputFile.job == done.id).exists()


def test_a_large_star_export_is_the_file_the_plain_conversion_writes(project, tmp_path):
    """Through the job (coded text columns, the row kernel, the link thread): byte for byte what
    write_star of cs_to_star's plain arrays writes, on 3,000 particles with poses, CTF and locations."""
    from cryodesk.io import relion

    raw = tmp_path / "raw"
    raw.mkdir()
    rng = np.random.default_rng(8)
    for k in range(3):
        mrc.write_stack(raw / f"mic_{k}.mrc", rng.normal(size=(1000, 4, 4)).astype(np.float32), voxel_size=1.1)
    n = 3000
    data = cs.from_columns({
        "uid": cs.new_uids(n, rng), "blob/path": np.array([f"mic_{k // 1000}.mrc" for k in range(n)], dtype="S"),
        "blob/idx": (np.arange(n) % 1000).astype(np.uint32), "blob/psize_A": np.full(n, 1.1, np.float32),
        "ctf/df1_A": rng.uniform(1e4, 2e4, n).astype(np.float32), "ctf/accel_kv": np.full(n, 300.0, np.float32),
        "ctf/exp_group_id": (np.arange(n) // 1500 + 1).astype(np.uint32),
        "ctf/shift_A": np.repeat(rng.normal(size=(2, 2)), 1500, axis=0).astype(np.float32),
        "alignments3D/pose": rng.normal(size=(n, 3)).astype(np.float32),
        "alignments3D/shift": rng.normal(size=(n, 2)).astype(np.float32),
        "alignments3D/psize_A": np.full(n, 1.1, np.float32),
        "location/micrograph_path": np.array([f"J2/mic {k // 1000}.mrc" for k in range(n)], dtype="S")}, n)
    cs.write_cs(raw / "parts.cs", data)
    imp = jobs.create_job(project, "import_particles", params={"particle_meta_path": str(raw / "parts.cs")})
    assert runner.run_job(project, imp).status == "completed"
    done = _export(project, imp, format="relion")
    pdir = Path(project.directory)
    pset = cs.ParticleSet.load(pdir / imp.uid / "imported_particles.cs", pdir)
    stacks, inv = pset.stack_index()
    rel = np.array([f"stacks/{p.name}" for p in stacks], dtype=str)
    want = star.write_star(tmp_path / "plain.star", relion.cs_to_star(pset.data, (rel, inv)))
    got = pdir / done.uid / "exported" / "particles.star"
    assert got.read_bytes() == want.read_bytes()
    assert b"\n001000@stacks/mic_0.mrc 'J2/mic 0.mrc' " in got.read_bytes()  # (a blank: the name quoted)


def test_a_conversion_failing_while_links_are_made_leaves_nothing(project, imported, monkeypatch):
    """The STAR conversion runs while the link thread makes the links (held back here): it is waited for,
    then everything is removed, and the error names the file."""
    import threading

    from cryodesk.base.errors import DataError
    from cryodesk.io import stack_links
    from cryodesk.jobs import particles_io

    imp, _ = imported
    gate, real_make = threading.Event(), stack_links.make_links
    finished = []

    def slow_make(links, names, *args):
        gate.wait(10)  # still making links when the conversion fails
        real_make(links, names, *args)
        finished.append(len(list(links.iterdir())))

    def failing_convert(*args, **kwargs):
        gate.set()
        raise DataError("a value RELION cannot hold")

    monkeypatch.setattr(stack_links, "make_links", slow_make)
    monkeypatch.setattr(particles_io, "cs_to_star", failing_convert)
    job = jobs.create_job(project, "export_particles", inputs=[jobs.InputSpec("particles", imp.uid)],
                          params={"format": "relion"})
    done = runner.run_job(project, job)
    assert done.status == "failed", done.error
    assert "cannot convert to RELION STAR: a value RELION cannot hold" in done.error
    assert "imported_particles.cs" in done.error  # (the file it converted)
    assert finished == [3]  # the thread ended before the removal: no link made after it
    assert not (Path(project.directory) / job.uid / "exported").exists()
    assert not OutputFile.select().where(OutputFile.job == done.id).exists()


def test_the_link_loop_loads_once_for_threads_asking_at_once(monkeypatch):
    """The export's link thread may ask for the compiled loop while another thread is loading it: it waits for
    that load and gets the loop (never the plain one because the other was still loading)."""
    import threading
    import time

    from cryodesk.io import symlinks

    if not symlinks.HAVE_NUMBA:
        pytest.skip("numba not installed")
    real, calls = symlinks._symlink_rows, []

    def slow_load(*args):
        calls.append(threading.current_thread().name)
        time.sleep(0.3)  # a first load takes this long or more
        return real(*args)

    monkeypatch.setattr(symlinks, "_kernel", None)
    monkeypatch.setattr(symlinks, "_symlink_rows", slow_load)
    got = {}
    threads = [threading.Thread(target=lambda k=k: got.__setitem__(k, symlinks.load_kernel()), name=f"t{k}")
               for k in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == {0: True, 1: True, 2: True}
    assert len(calls) == 1 and symlinks._kernel is slow_load
