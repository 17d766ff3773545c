"""Bring another program's particles into a cryodesk project: an *Import Particles* job, then restack there.

Why into a cryodesk project (rather than an ``External/`` job inside the RELION project):
it is the one way that works for both programs (a CryoSPARC project is never written),
the RELION project stays exactly as RELION left it, and the import job validates every
stack and links — never copies — the data, so restack/export/SSD cache work on it as
on any cryodesk particles.

The source is the job's particle output: for RELION the last ``ParticlesData`` node
(3.1: node type 3; ``particles.star``, ``run_it025_data.star``...) with the RELION
project as the root of the stack paths; for CryoSPARC the latest version of the
``blob`` result's ``.cs`` file, with the CryoSPARC project as the root.
"""

from __future__ import annotations

from pathlib import Path

from ...base.errors import UsageError
from ...db.models import Job, OutputFile
from ..jobs import create_job, get_job
from ..projects import get_project


def particle_source(project, job) -> tuple[str, str]:
    """``(metadata path, stack root)`` (absolute) of the particles ``job`` of another program's ``project`` made."""
    project = get_project(project)
    job = get_job(project, job)
    kind = project.kind or "cryodesk"
    rows = list(OutputFile.select().where(OutputFile.job == job).order_by(OutputFile.version, OutputFile.id))
    pdir = Path(project.directory)
    if kind == "relion":
        parts = [r for r in rows if r.kind == "3" or r.kind.startswith("ParticlesData")]
        if not parts:
            raise UsageError(f"{project.uid} {job.uid} ({job.path}) has no particle output in the pipeline")
        return str(pdir / parts[-1].path), str(pdir)
    if kind == "cryosparc":
        blobs = [r for r in rows if r.kind == "blob" and r.path.endswith(".cs")]
        if not blobs:
            raise UsageError(f"{project.uid} {job.uid} has no particle blob result (.cs) recorded")
        return str(pdir / blobs[-1].path), str(pdir)
    raise UsageError(f"{project.uid} is a cryodesk project: use its job's outputs directly")


def import_particles(into, project, job, workspace=None) -> Job:
    """An *Import Particles* job in the cryodesk project ``into`` reading ``job``'s particles (building)."""
    dest = get_project(into)
    if (dest.kind or "cryodesk") != "cryodesk":
        raise UsageError(f"{dest.uid} is a {dest.kind} project: particles are imported into a cryodesk project")
    meta, root = particle_source(project, job)
    src = get_project(project)
    return create_job(dest, "import_particles", workspace=workspace,
                      params={"particle_meta_path": meta, "particle_blob_path": root},
                      title=f"{src.uid} {get_job(src, job).uid} particles ({src.kind})")
