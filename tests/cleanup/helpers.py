"""Random test projects for the cleanup tests (built by really running the test job types)."""

from __future__ import annotations

import os
import random
from contextlib import contextmanager
from pathlib import Path

from throwaway import (
    disk_files,  # noqa: F401  (re-exported for the cleanup tests)
    fresh_project,  # noqa: F401  (re-exported for the tests)
)

from cryodesk import db as dbmod
from cryodesk.base.errors import Refused
from cryodesk.base.fsio import du_size
from cryodesk.core import actions, finals, jobs, projects, runner, sizes
from cryodesk.core.cleanup import set_project_setting
from cryodesk.db.models import Job

TYPES = ["c_motion", "c_ctf", "c_pick", "c_extract", "c_step", "c_iter"]


def build_random(project, seed: int, n: int = 12, with_w2: bool = True) -> list[Job]:
    """Jobs of random types on a random DAG; most are run; some end killed/failed/final/linked."""
    rng = random.Random(seed)
    if rng.random() < 0.7:  # mostly keep intermediate results, so there is something to plan
        set_project_setting(project, "delete_intermediate", False)
    w2 = projects.create_workspace(project, "second") if with_w2 else None
    made: list[Job] = []
    for i in range(n):
        ws = "W2" if (w2 and rng.random() < 0.2) else "W1"
        parents = sorted({rng.randrange(i) for _ in range(rng.randint(1, 2))}) if i and rng.random() < 0.85 else []
        if not parents:
            kind = rng.choice(["c_source", "c_iter"])
        else:
            kind = rng.choice(TYPES)
        specs = []
        for p in parents:
            par = made[p]
            version = None
            if par.type == "c_iter" and rng.random() < 0.4:
                version = rng.randrange(3)  # an explicit (maybe intermediate) version
            specs.append(jobs.InputSpec("particles", par.uid, None, version))
        params = {"iterations": str(rng.randint(2, 4))} if kind == "c_iter" else {"nbytes": str(rng.randint(50, 900))}
        job = jobs.create_job(project, kind, ws, specs, params)
        ok = all(Job.get_by_id(made[p].id).status == "completed" for p in parents)
        if ok and rng.random() < 0.85:
            try:
                runner.run_job(project, job)
            except Refused:  # reads an intermediate version that was deleted automatically
                pass
        made.append(job)
    # explicit versions may not exist (an iter with 2 iterations read @2): those children just stay building
    fresh = [Job.get_by_id(j.id) for j in made]
    completed = [j for j in fresh if j.status == "completed"]
    for j in rng.sample(completed, k=min(len(completed), rng.randint(0, 2))):
        finals.set_final(project, [Job.get_by_id(j.id)])
    for j in [Job.get_by_id(j.id) for j in made]:
        if j.status == "completed" and not j.is_final and rng.random() < 0.15:
            jobs.set_status(j, rng.choice(["killed", "failed"]), error="test")
    if w2 is not None:
        for j in rng.sample(fresh, k=min(3, len(fresh))):
            actions.link(project, [j], w2)
    link_raw_data(project, [j for j in fresh if rng.random() < 0.4])
    return [Job.get_by_id(j.id) for j in made]


def raw_dir(project) -> Path:
    """Imported raw data and a private file, both outside the project directory."""
    raw = Path(project.directory).parent / "raw"
    if not raw.exists():
        raw.mkdir()
        (raw / "movie.mrc").write_bytes(b"raw movie" * 50)
        (raw.parent / "private.txt").write_text("not the project's")
    return raw


def link_raw_data(project, js) -> None:
    """Symlink raw data (a directory and a file) and an outside file into each job's directory."""
    raw = raw_dir(project)
    for j in js:
        jd = Path(project.directory) / j.directory
        (jd / "raw").symlink_to(raw, target_is_directory=True)
        (jd / "movie.mrc").symlink_to(raw / "movie.mrc")
        (jd / "notes.txt").symlink_to(raw.parent / "private.txt")
        sizes.record_job_size(project, j)  # links count as links (du -sb): recorded as a refresh would


def raw_intact(project) -> bool:
    raw = raw_dir(project)
    return ((raw / "movie.mrc").read_bytes() == b"raw movie" * 50
            and (raw.parent / "private.txt").read_text() == "not the project's")


def job_sizes(pdir: Path) -> dict[str, tuple[int, int | None]]:
    """Per job directory: its size as ``du -sb`` counts it, and its job.json's size (None if none)."""
    out = {}
    for e in os.scandir(pdir):
        if e.name.startswith("J") and e.is_dir(follow_symlinks=False):
            try:
                manifest = os.lstat(os.path.join(e.path, "job.json")).st_size
            except FileNotFoundError:
                manifest = None
            out[e.name] = (du_size(e.path), manifest)
    return out


def bytes_gone(before: dict, after: dict) -> int:
    """What left the job directories between two :func:`job_sizes` (a job.json rewritten in place did not)."""
    total = 0
    for name, (size, manifest) in before.items():
        if name not in after:
            total += size
            continue
        size2, manifest2 = after[name]
        total += size - size2 + (manifest2 or 0) - (manifest or 0)
    return total


@contextmanager
def project_at(base: Path):
    """A database + project in ``base`` (kept after the block, closed)."""
    dbmod.open_database(str(base / "db.sqlite"))
    try:
        with dbmod.db.connection_context():
            p = projects.create_project("P", base / "proj")
            projects.create_workspace(p, "main")
            yield p
    finally:
        dbmod.close_database()


def build_mixed(project, raw: Path) -> dict[str, Job]:
    """A fixed project where one cleanup has every kind of item (and symlinks to raw data)."""
    set_project_setting(project, "delete_intermediate", False)

    def make(kind, parents=(), version=None, run=True, **params):
        specs = [jobs.InputSpec("particles", p.uid, None, version) for p in parents]
        j = jobs.create_job(project, kind, "W1", specs, {k: str(v) for k, v in params.items()})
        if run:
            runner.run_job(project, j)
        return Job.get_by_id(j.id)

    j = {}
    j["src"] = make("c_source", nbytes=3000)
    j["motion"] = make("c_motion", [j["src"]], nbytes=2000)
    j["iter_anc"] = make("c_iter", [j["motion"]], iterations=3)
    j["final"] = make("c_step", [j["iter_anc"]], nbytes=100)
    finals.set_final(project, [j["final"]])
    j["iter"] = make("c_iter", [j["src"]], iterations=4)
    j["reader"] = make("c_step", [j["iter"]], version=1, nbytes=50)
    j["killed"] = make("c_step", [j["src"]], nbytes=400)
    jobs.set_status(j["killed"], "killed", error="test")
    j["failed"] = make("c_source", nbytes=600)
    jobs.set_status(j["failed"], "failed", error="test")
    j["failed_child"] = make("c_step", [j["failed"]], run=False)
    jobs.set_status(j["failed_child"], "failed", error="test")
    pdir = Path(project.directory)
    for key in ("motion", "failed"):  # raw data symlinked into job directories, and a link out
        (pdir / j[key].directory / "raw").symlink_to(raw, target_is_directory=True)
        (pdir / j[key].directory / "movie.mrc").symlink_to(raw / "movie.mrc")
        sizes.record_job_size(project, j[key])
    return {k: Job.get_by_id(v.id) for k, v in j.items()}


def rename_source(src, kwargs) -> str:
    """The full path an ``os.rename`` call moves, also for renames relative to a directory descriptor."""
    fd = kwargs.get("src_dir_fd")
    if fd is None:
        return str(src)
    return f"{os.readlink(f'/proc/self/fd/{fd}')}/{src}"


def run_now(tmp_path, *uids) -> None:
    """Run jobs to completion in this process, without an engine (a Qt application would outlive the test)."""
    from cryodesk import db as dbmod
    from cryodesk.core import runner

    dbmod.open_database(str(tmp_path / "cli.sqlite"))
    with dbmod.db.connection_context():
        for uid in uids:
            assert runner.run_job("P1", uid).status == "completed"
