"""Small real projects for the lifecycle tests, and comparable views of a project on disk and in the database."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from cryodesk.core import finals, jobs, projects, runner
from cryodesk.db.models import Job, Project


def build(title: str, directory: Path, raw: Path, final: bool = True, nbytes: int = 2000):
    """P (W1): J1 source, J2 <- J1, J3 <- J2 (final), J4 <- J1 (building); J1 links to ``raw/movie.mrc``."""
    raw.mkdir(parents=True, exist_ok=True)
    movie = raw / "movie.mrc"
    if not movie.exists():
        movie.write_bytes(b"raw movie " * 300)
    p = projects.create_project(title, directory)
    projects.create_workspace(p, "main")
    j1 = jobs.create_job(p, "l_source", "W1", params={"nbytes": nbytes})
    j2 = jobs.create_job(p, "l_step", "W1", [jobs.InputSpec("particles", "J1")])
    j3 = jobs.create_job(p, "l_step", "W1", [jobs.InputSpec("particles", "J2")])
    j4 = jobs.create_job(p, "l_step", "W1", [jobs.InputSpec("particles", "J1")])
    for j in (j1, j2, j3):
        assert runner.run_job(p, j).status == "completed"
    os.symlink(movie, Path(p.directory) / "J1" / "movie.mrc")  # raw data, linked (as an import does)
    (Path(p.directory) / "J2" / "sub").mkdir()
    os.link(Path(p.directory) / "J2" / "step.bin", Path(p.directory) / "J2" / "sub" / "hard.bin")
    if final:
        assert finals.set_final(p, [j3]).ok
    return p, [j1, j2, j3, j4]


def tree(root: Path, skip_state: bool = True) -> dict[str, str]:
    """Every entry below ``root``: files by content hash, links by target, directories; never followed."""
    out = {}
    root = Path(root)
    for dirpath, dirnames, filenames in os.walk(root):
        rel_dir = os.path.relpath(dirpath, root)
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = os.path.normpath(os.path.join(rel_dir, name))
            if skip_state and rel.startswith(".cryodesk"):
                continue
            if os.path.islink(full):
                out[rel] = "-> " + os.readlink(full)
            elif os.path.isdir(full):
                out[rel] = "dir"
            else:
                out[rel] = hashlib.sha1(Path(full).read_bytes()).hexdigest()
    return out


def rows(project) -> dict:
    """The project's database rows, in comparable form."""
    p = Project.get_by_id(project.id)
    descs = jobs.describe_jobs(p, jobs.list_jobs(p))
    keep = ("uid", "type", "status", "is_final", "is_ancestor_of_final", "workspaces", "parents", "params",
            "outputs", "size_bytes")
    return {"directory": p.directory, "archived": p.archived_at is not None, "title": p.title,
            "workspaces": [w.title for w in projects.list_workspaces(p)],
            "jobs": [{k: d[k] for k in keep} for d in descs]}


def manifests(directory: Path) -> dict:
    d = Path(directory)
    out = {"project.json": json.loads((d / "project.json").read_text())}
    for j in sorted(d.glob("J*/job.json")):
        out[str(j.relative_to(d))] = json.loads(j.read_text())
    return out


def job_ids(project) -> list[int]:
    return [j.id for j in Job.select().where(Job.project == project.id)]
