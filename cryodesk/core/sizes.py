"""Sizes on disk: jobs (recorded as they change) and whole projects (scanned on request).

Definitions used everywhere (planner, CLI, GUI):

* **Job size** (``Job.size_bytes``): bytes of the regular files below
  ``J<n>/`` *except* its ``job.json`` manifest, which is the job's record (it
  is rewritten on every status change and survives a clear), not its data.
  Symlinks count 0.  Recorded on completion, clear, re-run and by
  :func:`refresh_project_size`.  Split into *intermediate results* (every
  version but the last of each output group, from the recorded output
  files) and the rest (final outputs, logs): :func:`intermediate_bytes`.
* **Project size** (``Project.size_*``): the whole project directory, split
  into jobs (``J<n>/``, manifests included), sessions (``S<n>/``) and other
  files; ``size_linked_bytes`` is what the symlinks found inside point to
  outside the project (imported raw data), reported separately and never
  part of the project's size.  It is out of date (``stale``) when any job
  changed after the last refresh.  cryodesk's reserve file
  (``.cryodesk/reserve``, room for a deletion to start on a full disk) is not counted.

The scanner is ``os.scandir`` on directory file descriptors, never follows a
symlink, and for big trees runs in a few processes (a Python walk is bound by
the interpreter, not the disk, so threads do not help: measured here).  The
database is written once per refresh, in one transaction.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import peewee as pw

from ..base.fsio import TreeStats, walk
from ..base.scanworker import apart_predicate
from ..base.trashworker import RESERVE
from ..db.models import Job, OutputFile, Project, Session, db, utcnow
from . import events
from .fsutil import require_project_dir

JOB_MANIFEST = "job.json"  # == manifest.JOB_MANIFEST (the job's record, not its data)
_JOB_DIR = re.compile(r"^J\d+$")
_SESSION_DIR = re.compile(r"^S\d+$")
#: below this many directories to walk, starting worker processes costs more than it saves
PARALLEL_MIN_TASKS = 64
_MANIFEST_APART = apart_predicate(JOB_MANIFEST)


def _walk(top: str) -> TreeStats:
    """One job-aware walk: a top-level ``job.json`` is counted apart (``apart_bytes``)."""
    return walk(top, _MANIFEST_APART)


def _walk_in_processes(chunks: list[list[str]]) -> list[list[TreeStats]]:
    import json
    import subprocess

    from ..base.scanworker import command

    procs = [subprocess.Popen(command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True) for _ in chunks]
    for proc, chunk in zip(procs, chunks):
        proc.stdin.write(json.dumps({"paths": chunk, "apart": JOB_MANIFEST}))
        proc.stdin.close()
    out = []
    for proc in procs:
        text = proc.stdout.read()
        if proc.wait() != 0:
            raise OSError(f"scan worker exited with {proc.returncode}")
        out.append([TreeStats(**d) for d in json.loads(text)])
    return out


def walk_trees(paths: list[str], workers: int | None = None) -> list[TreeStats]:
    """:class:`TreeStats` of each path in ``paths`` (directories), in parallel when worth it.

    Parallel means worker *processes* (:mod:`cryodesk.base.scanworker`): the
    walk is Python work per entry, which threads would serialise on the GIL
    (measured: 2 threads were slower than 1).  Small trees are walked here.
    """
    workers = workers if workers is not None else min(8, os.cpu_count() or 1)
    if workers <= 1 or len(paths) < PARALLEL_MIN_TASKS:
        return [_walk(p) for p in paths]
    # interleaved chunks: neighbouring job directories are often alike in size
    chunks = [paths[i::workers] for i in range(workers)]
    try:
        parts = _walk_in_processes(chunks)
    except (OSError, ValueError):  # no processes to be had: walk here, serially
        return [_walk(p) for p in paths]
    out: list[TreeStats | None] = [None] * len(paths)
    for i, part in enumerate(parts):
        for k, stats in enumerate(part):
            out[i + k * workers] = stats
    return out  # type: ignore[return-value]


def job_data_size(job_dir: Path) -> int:
    """A job's recorded size: its files except the ``job.json`` manifest (see module doc)."""
    if os.path.islink(job_dir) or not os.path.isdir(job_dir):
        return 0
    s = _walk(os.fspath(job_dir))
    return s.bytes - s.apart_bytes


def linked_bytes(links: list[str], root: Path) -> int:
    """Bytes that ``links`` point to outside ``root``, each target counted once.

    A target inside another linked directory is counted with that directory.
    """
    root_real = os.path.realpath(root)
    targets: dict[str, os.stat_result] = {}
    for link in links:
        target = os.path.realpath(link)
        if target in targets or target == root_real or target.startswith(root_real + os.sep):
            continue
        try:
            targets[target] = os.stat(target)
        except OSError:
            continue  # dangling link: points at nothing
    dirs = {t for t, st in targets.items() if stat.S_ISDIR(st.st_mode)}
    total = 0
    for target, st in targets.items():
        parent = os.path.dirname(target)
        nested = False
        while parent and parent != os.path.dirname(parent):
            if parent in dirs:
                nested = True
                break
            parent = os.path.dirname(parent)
        if nested:
            continue
        if target in dirs:
            total += _walk(target).bytes  # links inside raw data are not followed
        elif stat.S_ISREG(st.st_mode):
            total += st.st_size
    return total


# -- the database side ------------------------------------------------------------


@dataclass
class ProjectScan:
    """One scan of a project directory."""

    total: int = 0
    jobs: dict[int, int] = field(default_factory=dict)  # job number -> data bytes (no manifest)
    jobs_bytes: int = 0  # job directories, manifests included
    sessions: dict[int, int] = field(default_factory=dict)
    sessions_bytes: int = 0
    other_bytes: int = 0
    linked_bytes: int = 0
    files: int = 0
    errors: list[str] = field(default_factory=list)


def scan_project_dir(directory: Path, workers: int | None = None) -> ProjectScan:
    """Walk a project directory once: sizes of every job and session, the rest, and linked data."""
    directory = Path(directory)
    out = ProjectScan()
    keys: list[tuple[str, int]] = []
    paths: list[str] = []
    links: list[str] = []
    with os.scandir(directory) as it:
        for e in it:
            if e.is_dir(follow_symlinks=False):
                kind = "job" if _JOB_DIR.match(e.name) else "session" if _SESSION_DIR.match(e.name) else "other"
                keys.append((kind, int(e.name[1:]) if kind != "other" else 0))
                paths.append(e.path)
            elif e.is_symlink():
                links.append(e.path)
            elif e.is_file(follow_symlinks=False):
                out.other_bytes += e.stat(follow_symlinks=False).st_size
                out.files += 1
    for (kind, number), s in zip(keys, walk_trees(paths, workers)):
        out.files += s.files
        links.extend(s.links)
        out.errors.extend(s.errors)
        if kind == "job":
            out.jobs[number] = s.bytes - s.apart_bytes
            out.jobs_bytes += s.bytes
        elif kind == "session":
            out.sessions[number] = s.bytes
            out.sessions_bytes += s.bytes
        else:
            out.other_bytes += s.bytes
    # cryodesk's own reserve (room for a deletion on a full disk) is slack space, not project data
    try:
        st = os.lstat(directory.joinpath(*RESERVE))
        if stat.S_ISREG(st.st_mode):
            out.other_bytes = max(0, out.other_bytes - st.st_size)
    except OSError:
        pass
    out.total = out.jobs_bytes + out.sessions_bytes + out.other_bytes
    out.linked_bytes = linked_bytes(links, directory)
    return out


def mark_jobs_changed(project) -> None:
    """Record that some job's data changed: the project size is now out of date."""

    Project.update(jobs_changed_at=utcnow()).where(Project.id == project.id).execute()


def record_job_size(project, job) -> int:
    """Measure ``job``'s directory, store it as the job's size and mark the project size stale."""


    size = job_data_size(Path(project.directory) / job.directory)
    with db.atomic():
        Job.update(size_bytes=size).where(Job.id == job.id).execute()
        job.size_bytes = size
        mark_jobs_changed(project)
        events.record(project, "sizes", [job])
    return size


def is_stale(project) -> bool:
    """True when the project size was never measured or jobs changed since the last refresh."""
    if project.size_bytes is None or project.size_refreshed_at is None:
        return True
    return project.jobs_changed_at is not None and project.jobs_changed_at > project.size_refreshed_at


def size_summary(project) -> dict:
    """The recorded project size (no disk access), JSON-ready; ``stale`` says "refresh"."""

    jobs_recorded = (Job.select(Job.size_bytes).where(Job.project == project.id).tuples())
    n_jobs, job_sum = 0, 0
    for (b,) in jobs_recorded:
        n_jobs += 1
        job_sum += b or 0
    sessions = list(Session.select(Session.number, Session.size_bytes).where(Session.project == project.id).tuples())
    return {
        "project": project.uid, "directory": project.directory,
        "known": project.size_bytes is not None, "stale": is_stale(project),
        "size_bytes": project.size_bytes, "jobs_bytes": project.size_jobs_bytes,
        "sessions_bytes": project.size_sessions_bytes, "other_bytes": project.size_other_bytes,
        "linked_bytes": project.size_linked_bytes,
        "jobs": n_jobs, "jobs_recorded_bytes": job_sum, "sessions": len(sessions),
        "refreshed_at": project.size_refreshed_at.isoformat() if project.size_refreshed_at else None,
        "jobs_changed_at": project.jobs_changed_at.isoformat() if project.jobs_changed_at else None,
    }


def refresh_project_size(project, workers: int | None = None) -> dict:
    """Scan the project directory and store every size it measured (one transaction).

    Job and session sizes are updated too (only the rows that changed).  The
    refresh time is the *start* of the scan, so a job that changes during the
    scan leaves the size marked out of date.  Returns :func:`size_summary`
    plus ``errors`` (unreadable paths) and ``files``.
    """

    started = utcnow()
    scan = scan_project_dir(require_project_dir(project.directory), workers)
    with db.atomic():
        recorded = dict(Job.select(Job.number, Job.size_bytes).where(Job.project == project.id).tuples())
        changed = []
        for number, size in scan.jobs.items():
            if number in recorded and recorded[number] != size:
                Job.update(size_bytes=size).where((Job.project == project.id) & (Job.number == number)).execute()
                changed.append(number)
        for number in set(recorded) - set(scan.jobs):
            if recorded[number]:  # directory gone: nothing on disk
                Job.update(size_bytes=0).where((Job.project == project.id) & (Job.number == number)).execute()
                changed.append(number)
        for number, size in scan.sessions.items():
            Session.update(size_bytes=size).where((Session.project == project.id) & (Session.number == number)).execute()
        fields = dict(size_bytes=scan.total, size_jobs_bytes=scan.jobs_bytes,
                      size_sessions_bytes=scan.sessions_bytes, size_other_bytes=scan.other_bytes,
                      size_linked_bytes=scan.linked_bytes, size_refreshed_at=started)
        Project.update(**fields).where(Project.id == project.id).execute()
        for k, v in fields.items():
            setattr(project, k, v)
        events.record(project, "sizes", changed)
        events.record(project, "project")  # the measured size of the whole directory
        project.jobs_changed_at = Project.get_by_id(project.id).jobs_changed_at
    out = size_summary(project)
    out.update(files=scan.files, errors=scan.errors[:100])
    return out


def ensure_project_size(project, workers: int | None = None) -> dict:
    """Measure the project if it never was (a new project, or a database from before sizes)."""
    if project.size_bytes is None:
        return refresh_project_size(project, workers)
    return size_summary(project)


def intermediate_bytes(project) -> dict[int, int]:
    """Job id -> bytes of its intermediate results (recorded output files of non-last versions)."""
    return {jid: sum(v.values()) for jid, v in intermediate_versions(project).items()}


def version_sizes(project, job_ids=None) -> dict[tuple[int, str], dict[int, int]]:
    """(job id, output group) -> {version: recorded bytes}, for the project's jobs (or ``job_ids``)."""

    q = (OutputFile.select(OutputFile.job, OutputFile.group, OutputFile.version, pw.fn.SUM(OutputFile.size_bytes))
         .join(Job).where(Job.project == project.id))
    if job_ids is not None:
        q = q.where(OutputFile.job.in_(list(job_ids)))
    per: dict[tuple[int, str], dict[int, int]] = {}
    for jid, group, version, size in db.execute(q.group_by(OutputFile.job, OutputFile.group, OutputFile.version)):
        per.setdefault((jid, group), {})[version] = int(size or 0)
    return per


def intermediate_versions(project, job_ids=None) -> dict[int, dict[tuple[str, int], int]]:
    """Job id -> {(group, version): bytes} for every version but the last of each output group."""
    out: dict[int, dict[tuple[str, int], int]] = {}
    for (jid, group), versions in version_sizes(project, job_ids).items():
        last = max(versions)
        for v, size in versions.items():
            if v != last:
                out.setdefault(jid, {})[(group, v)] = size
    return out
