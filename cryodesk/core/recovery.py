"""What the next command that touches a project finishes after a process died (Qt-free).

A process killed with SIGKILL (or a power cut) can leave four things behind:

* a **deletion half-done**: its journal is rolled forward (:func:`cryodesk.core.deletion.recover`);
* **jobs still "running"** whose process is gone: marked *killed*
  (:func:`cryodesk.core.lifecycle.recover_interrupted`), so they can be cleared,
  re-run or marked complete;
* **manifests an interrupted write left uncertain** (``.cryodesk/pending``): rewritten
  from the database (:func:`cryodesk.core.guard.repair`, records of :mod:`cryodesk.core.pending`);
* **unfinished writes**: cryodesk's own temp files (``.job.json.1a2b3c4d.tmp``,
  ``.results.json.….tmp``, a restack's ``.batch_000.mrc.….tmp``, a copy's
  ``.x.cryodesk-part``) in job directories and ``project.json``'s beside it.

:func:`recover_project` does all four; the CLI calls it before any command that
writes to the project (read commands never delete).  Temp files are only ever
removed when their name is one of cryodesk's (:func:`cryodesk.base.fsio.own_temp_target`),
they are regular files (a link is never followed nor removed), and their job is
not active; a temp file younger than :data:`TEMP_MIN_AGE_S` may belong to a
write in progress in another process and is left for a later command, except in
the job directories of jobs whose process was just found dead.  In job directories
they go through the deletion service (action ``discard_temp``: journaled,
rechecked under the project lock, the job's size measured again); the project's
own ``.project.json.….tmp`` through :func:`cryodesk.base.fsio.remove_own_temp`.

Walking every job directory of a big project costs seconds when its tree is not in the
page cache, so a writing command walks them all at most once per :data:`TEMP_SCAN_INTERVAL_S`
(the time of the last full walk is the mtime of ``.cryodesk/temp-scan``).  In between it walks
only where a dead process is known to have been writing: the directories of the jobs it just
found dead and of the items whose manifests a dead process's pending record named (a manifest
write always leaves that record first).  What else a death leaves is only space, found by the
next full walk.  An explicit ``min_age_s`` (a deliberate sweep) always walks everything.
"""

from __future__ import annotations

import os
import stat
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..base.errors import CryodeskError
from ..base.fsio import own_temp_target, remove_own_temp
from ..db.models import ACTIVE_STATUSES, Job
from . import deletion, guard
from .deletion import DeletionPlan, ItemResult, PlanItem, journal
from .deletion.journal import STATE_DIR
from .fsutil import check_job_dir
from .lifecycle import recover_interrupted
from .projects import get_project

#: a temp file younger than this (s) may be another process's write in progress
TEMP_MIN_AGE_S = 10.0
#: walks of job directories stop after this many entries per job (a huge job is not scanned on every command)
MAX_ENTRIES_PER_JOB = 20000
#: every job directory is walked for temp files at most this often (s) per project (see the module doc)
TEMP_SCAN_INTERVAL_S = 3600.0
#: in the project's state directory: its mtime is the time of the last full walk
SCAN_STAMP = "temp-scan"


@dataclass
class Recovery:
    """What :func:`recover_project` finished."""

    deletions: list[ItemResult] = field(default_factory=list)
    killed: list[Job] = field(default_factory=list)
    temp_files: list[str] = field(default_factory=list)  # relative to the project directory
    temp_bytes: int = 0
    errors: list[str] = field(default_factory=list)
    #: items whose manifest an interrupted write left uncertain, rewritten from the database (core.pending)
    manifests: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.deletions or self.killed or self.temp_files or self.errors or self.manifests)


def _temp_files(job_dir: Path, prefix: str, now: float, min_age: float) -> list[str]:
    """Relative paths of cryodesk temp files (regular files, old enough) below ``job_dir``; links not followed."""
    out, stack, seen = [], [(job_dir, prefix)], 0
    while stack and seen < MAX_ENTRIES_PER_JOB:
        path, rel = stack.pop()
        try:
            it = os.scandir(path)
        except OSError:
            continue
        with it:
            for e in it:
                seen += 1
                try:
                    if e.is_dir(follow_symlinks=False):
                        stack.append((e.path, f"{rel}/{e.name}"))
                        continue
                    if own_temp_target(e.name) is None:
                        continue
                    st = e.stat(follow_symlinks=False)
                except OSError:
                    continue
                if stat.S_ISREG(st.st_mode) and now - st.st_mtime >= min_age:
                    out.append(f"{rel}/{e.name}")
    return sorted(out)


def _last_full_walk(pdir: Path) -> float | None:
    """When every job directory was last walked (the stamp's mtime), or None (never, or a stamp
    that is not a regular file: a link is not trusted)."""
    try:
        st = os.stat(pdir / STATE_DIR / SCAN_STAMP, follow_symlinks=False)
    except OSError:
        return None
    return st.st_mtime if stat.S_ISREG(st.st_mode) else None


def _stamp_full_walk(pdir: Path, when: float) -> None:
    """Record a full walk that started at ``when``; a link or a failure only means walking again sooner."""
    try:
        base = journal.state_dir(pdir, create=True)
        fd = os.open(base / SCAN_STAMP, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK, 0o666)
    except (OSError, CryodeskError):
        return
    try:
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.utime(fd, (when, when))
    except OSError:
        pass
    finally:
        os.close(fd)


def collect_temp_files(project, min_age_s: float | None = None, fresh_ok=(), known=None) -> Recovery:
    """Remove the unfinished writes of dead processes from ``project`` (see the module doc).

    ``fresh_ok``: job ids whose temp files go whatever their age (their process is known dead).
    ``known``: job ids where a dead process was writing; unless the last full walk is older than
    :data:`TEMP_SCAN_INTERVAL_S` (or ``min_age_s`` is given), only those and ``fresh_ok`` are walked.
    ``known=None`` walks every job directory.
    """
    project = get_project(project)
    pdir = Path(project.directory)
    min_age = TEMP_MIN_AGE_S if min_age_s is None else float(min_age_s)
    now = time.time()
    where = Job.select().where((Job.project == project) & (Job.status.not_in(ACTIVE_STATUSES)))
    full = known is None or min_age_s is not None
    if not full:
        last = _last_full_walk(pdir)
        full = last is None or not (now - TEMP_SCAN_INTERVAL_S <= last <= now + 60)  # (a clock set back: walk)
    if not full:
        only = set(known) | set(fresh_ok)
        where = where.where(Job.id.in_(sorted(only))) if only else None
    items = []
    for job in (where if where is not None else []):
        try:
            jdir = check_job_dir(pdir, job.directory)
        except Exception:  # noqa: BLE001 - a symlinked or odd job directory: never walked
            continue
        if not jdir.is_dir() or jdir.is_symlink():
            continue
        found = _temp_files(jdir, job.directory, now, 0.0 if job.id in set(fresh_ok) else min_age)
        if found:
            items.append(PlanItem(job=job.uid, action="discard_temp", paths=found,
                                  bytes=deletion.freed_bytes(pdir, found, job.uid),
                                  reason="unfinished writes of a process that died"))
    out = Recovery()
    paths = {i.job: i.paths for i in items}
    for r in (deletion.execute(project, DeletionPlan(project.uid, items)) if items else []):
        if r.action != "discard_temp":
            out.deletions.append(r)  # a journal another process left, rolled forward first
        elif r.ok:
            out.temp_files.extend(paths.get(r.job, []))
            out.temp_bytes += r.bytes
        else:
            out.errors.append(f"{r.job}: temp files kept: {r.message}")
    try:
        with os.scandir(pdir) as it:
            for e in it:
                if own_temp_target(e.name) and e.is_file(follow_symlinks=False):
                    if now - e.stat(follow_symlinks=False).st_mtime >= min_age:
                        size = remove_own_temp(pdir, e.name)
                        if size or not os.path.lexists(e.path):
                            out.temp_files.append(e.name)
                            out.temp_bytes += size
    except OSError:
        pass
    if full:
        _stamp_full_walk(pdir, now)
    return out


def recover_project(project, min_age_s: float | None = None) -> Recovery:
    """Roll forward deletions, mark jobs of dead processes killed, collect their temp files.

    Call it before a write to the project (it deletes); cheap when there is nothing to do.
    """
    project = get_project(project)
    out = Recovery(deletions=list(deletion.recover(project)))
    out.killed = recover_interrupted(project)
    try:
        out.manifests = guard.repair(project)
    except CryodeskError as exc:  # a full disk still: the records stay, the next command tries again
        out.errors.append(f"manifests not repaired yet: {exc}")
    try:
        repaired = [int(u[1:]) for u in out.manifests if u[:1] == "J" and u[1:].isdigit()]
        known = [j.id for j in Job.select(Job.id).where((Job.project == project) & Job.number.in_(repaired))] \
            if repaired else []
        temps = collect_temp_files(project, min_age_s, fresh_ok=[j.id for j in out.killed], known=known)
    except Exception as exc:  # noqa: BLE001 - recovery is a courtesy: the command itself must still run
        out.errors.append(f"temp files not collected: {getattr(exc, 'strerror', None) or exc}")
        return out
    out.deletions += temps.deletions
    out.temp_files, out.temp_bytes, out.errors = temps.temp_files, temps.temp_bytes, out.errors + temps.errors
    return out
