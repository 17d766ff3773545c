"""Building plan items: which paths each action removes, and the bytes it frees (measured once, one way).

*Bytes freed* is the size of the paths removed as ``du -sb`` counts them (the
one definition of :mod:`cryodesk.core.sizes`: files, directories' own
entries, symlinks as links): a delete frees the job's whole size, a clear all
of it but the job directory's own entry and its ``job.json``.
"""

from __future__ import annotations

import os
from pathlib import Path

from ...base.fsio import du_size
from ...db.models import Job, OutputFile
from ..fsutil import check_job_dir
from .plan import LOG, MANIFEST, PlanItem


def freed_bytes(project_dir: Path, item_paths: list[str], job_uid: str) -> int:
    """The size (``du -sb``) of ``item_paths``: what leaves the disk when they are removed."""
    return sum(du_size(Path(project_dir) / rel) for rel in item_paths)


def _item(project_dir: Path, job: Job, action: str, paths: list[str], reason: str, **versions) -> PlanItem:
    return PlanItem(job=job.uid, action=action, paths=paths, bytes=freed_bytes(project_dir, paths, job.uid),
                    reason=reason, versions={k: v for k, v in versions.items() if v is not None})


def clear_item(project_dir: Path, job: Job, reason: str, require: dict | None = None) -> PlanItem:
    """Clear: every entry of the job directory but its ``job.json``."""
    jdir = check_job_dir(project_dir, job.directory)
    paths = sorted(f"{job.directory}/{e.name}" for e in os.scandir(jdir) if e.name != MANIFEST) \
        if jdir.is_dir() else []
    return _item(project_dir, job, "clear", paths, reason, require=require)


def delete_item(project_dir: Path, job: Job, reason: str, require: dict | None = None) -> PlanItem:
    """Delete: the job directory (if it is there) and the job's rows."""
    jdir = check_job_dir(project_dir, job.directory)
    paths = [job.directory] if os.path.lexists(jdir) else []
    return _item(project_dir, job, "delete", paths, reason, require=require)


def version_paths(job: Job, groups: dict) -> list[str]:
    """Files of ``groups`` ({group: [versions]}) not also used by a kept version, inside the job directory."""
    drop, keep = set(), set()
    for f in OutputFile.select(OutputFile.group, OutputFile.version, OutputFile.path).where(OutputFile.job == job):
        (drop if f.version in groups.get(f.group, ()) else keep).add(f.path)
    prefix = f"{job.directory}/"
    return sorted(p for p in drop - keep if p.startswith(prefix) and ".." not in Path(p).parts)


def versions_item(project_dir: Path, job: Job, groups: dict, reason: str, require: dict | None = None) -> PlanItem:
    """Clear intermediate results: the files of the given (non-last) versions."""
    check_job_dir(project_dir, job.directory)
    return _item(project_dir, job, "clear_versions", version_paths(job, groups), reason,
                 groups=groups, require=require)


def discard_item(project_dir: Path, job: Job, keep: set[str], reason: str) -> PlanItem | None:
    """Discard the partial output of a cancelled run: every entry but ``keep``, the log and the record."""
    jdir = check_job_dir(project_dir, job.directory)
    if not jdir.is_dir():
        return None
    paths = sorted(f"{job.directory}/{e.name}" for e in os.scandir(jdir)
                   if e.name not in keep and e.name not in (MANIFEST, LOG))
    return _item(project_dir, job, "discard", paths, reason) if paths else None
