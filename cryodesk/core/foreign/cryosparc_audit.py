"""CryoSPARC's Cleanup Data, previewed (read only): what its own tool would free, tab by tab.

Tabs as in CryoSPARC's Data Cleanup guide: intermediate results (each output
result's files of every version but the last), preprocessing jobs, non-final
jobs (neither final nor an ancestor of a final result, as CryoSPARC recorded the
flags), killed and failed jobs.  Bytes are measured from disk now (``du -sb``,
links never followed).  Nothing is ever deleted here: "managed by CryoSPARC — read-only".
"""

from __future__ import annotations

from pathlib import Path

from ...base.fsio import du_size
from ...db.models import Job, OutputFile
from ..projects import get_project

PREPROCESSING = {"import_movies", "import_micrographs", "patch_motion_correction_multi", "rigid_motion_correction_multi",
                 "motion_correction_motioncor2", "patch_ctf_estimation_multi", "ctf_estimation", "blob_picker_gpu",
                 "template_picker_gpu", "manual_picker_v2", "extract_micrographs_multi", "extract_micrographs_cpu_parallel",
                 "downsample_particles", "curate_exposures_v2", "inspect_picks_v2"}


def preview(project) -> dict:
    """``{tab: {"jobs": [{uid, type, bytes}], "bytes": n}}`` and the project's ``read_only`` reason."""
    project = get_project(project)
    pdir = Path(project.directory)
    jobs = list(Job.select().where(Job.project == project).order_by(Job.number))
    tabs: dict[str, dict] = {t: {"jobs": [], "bytes": 0} for t in
                             ("intermediate", "preprocessing", "non_final", "killed", "failed")}

    def add(tab: str, job: Job, size: int) -> None:
        if size:
            tabs[tab]["jobs"].append({"uid": job.uid, "type": job.type, "bytes": size})
            tabs[tab]["bytes"] += size

    files: dict[int, dict[tuple[str, str], dict[int, list[str]]]] = {}
    for jid, group, name, version, path in OutputFile.select(
            OutputFile.job, OutputFile.group, OutputFile.kind, OutputFile.version, OutputFile.path).tuples():
        files.setdefault(jid, {}).setdefault((group, name), {}).setdefault(version, []).append(path)
    for job in jobs:
        size = job.size_bytes or 0
        if not job.is_final:
            seen: set[str] = set()
            keep = {p for by_v in files.get(job.id, {}).values() for p in by_v[max(by_v)]}
            for by_v in files.get(job.id, {}).values():
                last = max(by_v)
                for v, paths in by_v.items():
                    if v != last:
                        seen.update(p for p in paths if p not in keep and p.startswith(job.directory + "/"))
            add("intermediate", job, sum(du_size(pdir / p) for p in sorted(seen)))
        if job.type.removeprefix("cryosparc.") in PREPROCESSING and not job.is_final:
            add("preprocessing", job, size)
        if not job.is_final and not job.is_ancestor_of_final:
            add("non_final", job, size)
        if job.status in ("killed", "failed") and not job.is_final:
            add(job.status, job, size)
    from ..guard import kind_refusal

    return {"project": project.uid, "read_only": kind_refusal(project), "tabs": tabs}
