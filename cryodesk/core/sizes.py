"""Sizes on disk: jobs (recorded as they change) and whole projects (scanned on request).

Definitions used everywhere (planner, deletion service, CLI, GUI):

* **Job size** (``Job.size_bytes``): the job directory ``J<n>/`` as ``du -sb``
  counts it — every entry's apparent size, the ``job.json`` record, the log
  and the directories themselves included, a symlink as the link it is (its
  target is never followed), a file with several hard links once.  Recorded
  when the job finishes, is cleared, re-run or has intermediate results
  removed, and by :func:`refresh_project_size`; every rewrite of ``job.json``
  keeps it exact (:mod:`~cryodesk.core.manifest` writes the size the job has
  with that very file in place).  *Intermediate results* are the
  recorded output files of every version but the last of each output group
  (:func:`intermediate_bytes`).
* **Bytes freed** by a deletion: the sizes (the same ``du -sb`` measure) of
  the paths it removes; a clear keeps the job directory itself and its
  ``job.json``, so it frees the job's size minus those two
  (:func:`clear_keeps_bytes`).
* **Project size**: the whole project directory as ``du -sb`` counts it, split
  into jobs (``J<n>/``), sessions (``S<n>/``) and other files (``project.json``,
  cryodesk's state, anything else, the directory itself).  The figure shown is
  *current*: the jobs' and sessions' recorded sizes plus the other files as last
  scanned (:func:`size_summary`); right after a refresh it is what
  ``du -sb <project>`` says (a file hard-linked into two jobs counts in each).
  ``size_linked_bytes`` is what symlinks inside point to outside the project
  (imported raw data): reported apart, never part of the project's size.  The
  scan is out of date (``stale``) when a job's data changed after it.

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

from ..base.fsio import TreeStats, du_size, walk
from ..db.models import Job, OutputFile, Project, Session, db, utcnow
from . import events
from .fsutil import require_project_dir

JOB_MANIFEST = "job.json"  # == manifest.JOB_MANIFEST (the job's record; part of its size, kept by a clear)
_JOB_DIR = re.compile(r"^J\d+$")
_SESSION_DIR = re.compile(r"^S\d+$")
#: below this many directories to walk, starting worker processes costs more than it saves
PARALLEL_MIN_TASKS = 64


def _walk(top: str) -> TreeStats:
    return walk(top)


def _walk_in_processes(chunks: list[list[str]]) -> list[list[TreeStats]]:
    import json
    import subprocess

    from ..base.scanworker import command

    procs = [subprocess.Popen(command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL, text=True) for _ in chunks]
    for proc, chunk in zip(procs, chunks):
        proc.stdin.write(json.dumps({"paths": chunk}))
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


def job_size(job_dir: Path) -> int:
    """A job's size: its directory as ``du -sb`` counts it (see the module doc); 0 if it is missing."""
    return du_size(job_dir)


def clear_keeps_bytes(job_dir: Path) -> int:
    """What a clear leaves of a job: the directory's own entry and its ``job.json`` (lstat, no walk)."""
    total = 0
    for p in (job_dir, Path(job_dir) / JOB_MANIFEST):
        try:
            st = os.lstat(p)
        except OSError:
            continue
        if p == job_dir and not stat.S_ISDIR(st.st_mode):
            return 0  # not a directory: a clear keeps nothing of it
        total += st.st_size
    return total


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
    jobs: dict[int, int] = field(default_factory=dict)  # job number -> its size (du -sb of J<n>)
    jobs_bytes: int = 0
    sessions: dict[int, int] = field(default_factory=dict)
    sessions_bytes: int = 0
    other_bytes: int = 0
    linked_bytes: int = 0
    files: int = 0
    errors: list[str] = field(default_factory=list)
    trash_bytes: int = 0  # another program's Trash/ (RELION's), part of other_bytes


def scan_project_dir(directory: Path, workers: int | None = None, job_dirs: dict[str, int] | None = None
                     ) -> ProjectScan:
    """Walk a project directory once: sizes (``du -sb``) of every job and session, the rest, and linked data.

    ``job_dirs`` (another program's project, issue 16): the jobs' directories
    (``{"Class2D/job008": 8}``) instead of ``J<n>/``; ``Trash/`` is reported
    apart as ``trash_bytes`` (it is part of ``other_bytes``).
    """
    directory = Path(directory)
    if job_dirs is None:
        def kind_of(rel: str) -> tuple[str, int]:
            if _JOB_DIR.match(rel):
                return "job", int(rel[1:])
            return ("session", int(rel[1:])) if _SESSION_DIR.match(rel) else ("other", 0)
        type_dirs: set[str] = set()
    else:
        def kind_of(rel: str) -> tuple[str, int]:
            return ("job" if rel in job_dirs else "trash" if rel == "Trash" else "other"), job_dirs.get(rel, 0)
        type_dirs = {rel.split("/", 1)[0] for rel in job_dirs if "/" in rel}  # (RELION: Class2D/job008)
    out = ProjectScan()
    keys: list[tuple[str, int]] = []
    paths: list[str] = []
    links: list[str] = []

    def entry(e, rel: str) -> None:
        if e.is_dir(follow_symlinks=False):
            keys.append(kind_of(rel))
            paths.append(e.path)
            return
        if e.is_symlink():
            links.append(e.path)
        elif e.is_file(follow_symlinks=False):
            out.files += 1
        out.other_bytes += e.stat(follow_symlinks=False).st_size

    out.other_bytes = os.lstat(directory).st_size  # the project directory's own entry
    with os.scandir(directory) as it:
        for e in it:
            if e.name in type_dirs and e.is_dir(follow_symlinks=False):
                out.other_bytes += e.stat(follow_symlinks=False).st_size  # the type directory's own entry
                with os.scandir(e.path) as sub:
                    for c in sub:
                        entry(c, f"{e.name}/{c.name}")
            else:
                entry(e, e.name)
    for (kind, number), s in zip(keys, walk_trees(paths, workers)):
        out.files += s.files
        links.extend(s.links)
        out.errors.extend(s.errors)
        if kind == "job":
            out.jobs[number] = s.du_bytes
            out.jobs_bytes += s.du_bytes
        elif kind == "session":
            out.sessions[number] = s.du_bytes
            out.sessions_bytes += s.du_bytes
        else:
            out.other_bytes += s.du_bytes
            if kind == "trash":
                out.trash_bytes += s.du_bytes
    out.total = out.jobs_bytes + out.sessions_bytes + out.other_bytes
    out.linked_bytes = linked_bytes(links, directory)
    return out


def mark_jobs_changed(project) -> None:
    """Record that some job's data changed: the project size is now out of date."""

    Project.update(jobs_changed_at=utcnow()).where(Project.id == project.id).execute()


def record_job_size(project, job) -> int:
    """Measure ``job``'s directory, store it as the job's size and mark the project size stale."""


    size = job_size(Path(project.directory) / job.directory)
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


def current_total(project, jobs_bytes: int, sessions_bytes: int) -> int | None:
    """The project's size now: the recorded jobs and sessions plus the other files as last scanned.

    None while the project was never measured (nothing is known of its other files).
    """
    if project.size_bytes is None:
        return None
    return int(jobs_bytes) + int(sessions_bytes) + int(project.size_other_bytes or 0)


def size_summary(project) -> dict:
    """The recorded project size (no disk access), JSON-ready; ``stale`` says "refresh".

    ``size_bytes`` is the current figure (:func:`current_total`), ``jobs_bytes``
    and ``sessions_bytes`` the recorded sizes; ``measured_bytes`` is what the
    last scan found for the whole directory.
    """
    n_jobs, job_sum = 0, 0
    for (b,) in Job.select(Job.size_bytes).where(Job.project == project.id).tuples():
        n_jobs += 1
        job_sum += b or 0
    sessions = list(Session.select(Session.number, Session.size_bytes).where(Session.project == project.id).tuples())
    sess_sum = sum(int(b or 0) for _, b in sessions)
    return {
        "project": project.uid, "directory": project.directory,
        "known": project.size_bytes is not None, "stale": is_stale(project),
        "size_bytes": current_total(project, job_sum, sess_sum), "jobs_bytes": job_sum,
        "sessions_bytes": sess_sum, "other_bytes": int(project.size_other_bytes or 0),
        "linked_bytes": project.size_linked_bytes, "measured_bytes": project.size_bytes,
        "jobs": n_jobs, "jobs_recorded_bytes": job_sum, "sessions": len(sessions),
        "refreshed_at": project.size_refreshed_at.isoformat() if project.size_refreshed_at else None,
        "jobs_changed_at": project.jobs_changed_at.isoformat() if project.jobs_changed_at else None,
    }


def size_without_manifest(job, job_dir: Path, before: int | None) -> int:
    """``job``'s size without its ``job.json`` (of ``before`` bytes), just before that is rewritten.

    From the recorded size (no walk of a big job); a new or remade directory
    (``before`` None) is measured.  :mod:`cryodesk.core.manifest` adds the new
    record's own length, so the size stays what ``du -sb`` says.
    """
    if before is None or getattr(job, "id", None) is None:
        return job_size(job_dir)
    recorded = Job.select(Job.size_bytes).where(Job.id == job.id).scalar()
    return max(0, int(recorded if recorded is not None else job.size_bytes or 0) - before)


def record_size(job, size: int, unchanged: bool = False) -> None:
    """Store ``size`` as ``job``'s size (in the caller's transaction; no event: its record changed, not its data).

    ``unchanged``: the database holds it already (only the object is updated).
    """
    if getattr(job, "id", None) is None:
        return
    if not unchanged:
        Job.update(size_bytes=size).where(Job.id == job.id).execute()
    job.size_bytes = size


def refresh_project_size(project, workers: int | None = None) -> dict:
    """Scan the project directory and store every size it measured (one transaction).

    Job and session sizes are updated too (only the rows that changed).  The
    refresh time is the *start* of the scan, so a job that changes during the
    scan leaves the size marked out of date.  Returns :func:`size_summary`
    plus ``errors`` (unreadable paths) and ``files``.
    """

    started = utcnow()
    job_dirs = None
    if (getattr(project, "kind", None) or "cryodesk") != "cryodesk":  # another program's project (issue 16)
        job_dirs = {p: n for p, n in Job.select(Job.path, Job.number).where(
            (Job.project == project.id) & Job.path.is_null(False)).tuples()}
    scan = scan_project_dir(require_project_dir(project.directory), workers, job_dirs)
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
    if job_dirs is not None:
        out["trash_bytes"] = scan.trash_bytes
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
