"""Cache services on a job's output (database reads): warm and estimate.

``cryodesk cache warm|estimate`` and the GUI cache panel call these; the
GUI runs :func:`warm_job_output` through ``Engine.submit_task`` (it matches
the ``fn(progress, cancel_event)`` shape with ``functools.partial``).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

from cryodesk.base.errors import DataError, JobCancelled, UsageError
from cryodesk.core import registry
from cryodesk.core.jobs import get_job
from cryodesk.core.projects import get_project
from cryodesk.io.cs import ParticleSet

from .config import CacheConfig, resolve_config
from .estimate import estimate_particles
from .staging import open_stage

__all__ = ["particle_dataset", "warm_job_output", "estimate_job_output"]

_SUBSET = {"auto": "auto", "always": True, "never": False}


def particle_dataset(project, job_uid, output: str | None = None) -> tuple[object, object, ParticleSet]:
    """``(project, job, ParticleSet)`` of the latest version of ``job``'s particle output."""
    from cryodesk.db.models import OutputFile

    project = get_project(project)
    job = get_job(project, job_uid)
    jtype = registry.get(job.type)
    groups = [output] if output else [o.name for o in jtype.outputs if o.type == "particle"]
    files = [f for f in OutputFile.select().where((OutputFile.job == job) & (OutputFile.kind == "dataset"))
             if f.group in groups]
    if not files:
        raise DataError(f"{job.uid} has no particle output with a dataset file (is it completed?)")
    names = sorted({f.group for f in files})
    if len(names) > 1:
        raise UsageError(f"{job.uid} has several particle outputs ({', '.join(names)}); name one")
    latest = max(f.version for f in files)
    rel = next(f.path for f in files if f.version == latest)
    pdir = Path(project.directory)
    return project, job, ParticleSet.load(pdir / rel, base_dir=pdir)


def warm_job_output(project, job_uid, progress: Callable[[float, str], None] | None = None,
                    cancel_event: threading.Event | None = None, *, output: str | None = None,
                    subset: str = "auto", config: CacheConfig | None = None) -> dict:
    """Copy a job's particle output to the SSD cache now; returns the stage stats.

    ``progress`` and ``cancel_event`` come positionally, as ``Engine.submit_task``
    passes them: ``engine.submit_task("cache J7", partial(warm_job_output, "P1", "J7"))``.

    Raises :class:`CacheFullError` when it does not fit (nothing stays reserved).
    """
    if subset not in _SUBSET:
        raise UsageError(f"subset must be one of {', '.join(_SUBSET)}, got {subset!r}")
    project, job, pset = particle_dataset(project, job_uid, output)

    def check_cancel():
        if cancel_event is not None and cancel_event.is_set():
            raise JobCancelled(f"caching {project.uid} {job.uid} was cancelled")

    ctx = SimpleNamespace(project_uid=project.uid, project_dir=Path(project.directory), params={},
                          log=logging.getLogger("cryodesk.cache"), progress=progress,
                          check_cancel=check_cancel)
    staged = open_stage(ctx, pset, cache_on=True, config=config or resolve_config(),
                        subset=_SUBSET[subset], on_full="error",
                        progress=(lambda d, t, m: progress(d / t if t else 0.0, m)) if progress else None)
    try:
        if staged.mode == "off":
            raise DataError(staged.reason)
        return {"project": project.uid, "job": job.uid, **staged.stats()}
    finally:
        staged.release()


def estimate_job_output(project, job_uid, *, output: str | None = None,
                        config: CacheConfig | None = None) -> dict:
    """Exact SSD bytes for a job's particle output: whole stacks, packed subset, auto's choice."""
    project, job, pset = particle_dataset(project, job_uid, output)
    threshold = (config or resolve_config()).subset_threshold
    return {"project": project.uid, "job": job.uid, **estimate_particles(pset, threshold=threshold)}
