"""Plans for RELION projects: clear (harsh), intermediate iterations, delete to Trash/, empty the trash.

Every plan is a :class:`~cryodesk.core.deletion.DeletionPlan` of the RELION actions
(:mod:`cryodesk.core.deletion.relion_actions`), previewed with its bytes and carried out by the
one deletion service (journal, recheck under the write guard and RELION's lock).
Final jobs are never touched; ancestors of a final result are never deleted (a clear
of their bulky files is allowed when asked, as Cleanup Data allows for preprocessing).
"""

from __future__ import annotations

import os
from pathlib import Path

from ...base.errors import UsageError
from ...db.models import Job, Project
from ...io.relion_pipeline import JOB_DIR, read_pipeline
from .. import deletion
from ..deletion.build import freed_bytes
from ..graph import descendant_ids
from ..projects import get_project
from . import relion_rules
from .relion_open import PIPELINE


def _relion(project) -> Project:
    project = get_project(project)
    if project.kind != "relion":
        raise UsageError(f"{project.uid} is not a RELION project (it is {project.kind})")
    return project


def _nodes(pdir: Path) -> set[str]:
    p = read_pipeline(pdir / PIPELINE)
    return {n.name for n in p.nodes} | {e[0] for e in p.input_edges}


def _item(pdir: Path, job: Job, action: str, paths: list[str], reason: str, allow_ancestor: bool = True):
    return deletion.PlanItem(job=job.uid, action=action, paths=paths, bytes=freed_bytes(pdir, paths, job.uid),
                             reason=reason, versions={"dir": job.path, "require": {
                                 "allow_ancestor": allow_ancestor, "status_in": [job.status]}})


def _jobs(project, jobs) -> list[Job]:
    q = Job.select().where(Job.project == project).order_by(Job.number)
    if jobs is not None:
        numbers = [int(str(j.number if isinstance(j, Job) else j).lstrip("J")) for j in jobs]
        q = q.where(Job.number.in_(numbers))
    return list(q)


def plan_clear(project, jobs=None, categories=None, allow_ancestor: bool = True,
               harsh: bool = True) -> deletion.DeletionPlan:
    """RELION's harsh (or, ``harsh=False``, gentle) clean of ``jobs`` (all succeeded jobs if None;
    ``categories``: only those, e.g. motion)."""
    project = _relion(project)
    pdir = Path(project.directory)
    nodes = _nodes(pdir)
    items = []
    for job in _jobs(project, jobs):
        kind = job.path.split("/")[0]
        if job.is_final or job.status != "completed" or (job.is_ancestor_of_final and not allow_ancestor):
            continue
        if categories is not None and relion_rules.CATEGORY.get(kind) not in categories:
            continue
        paths = relion_rules.harsh_paths(pdir, job.path, kind, nodes, harsh)
        if paths:
            items.append(_item(pdir, job, "relion_clear", paths,
                               f"RELION's {'harsh' if harsh else 'gentle'} clean of {kind}", allow_ancestor))
    return deletion.DeletionPlan(project.uid, items)


def plan_intermediate(project, jobs=None) -> deletion.DeletionPlan:
    """Iterations before the last of iterative jobs, except those a pipeline node names."""
    project = _relion(project)
    pdir = Path(project.directory)
    nodes = _nodes(pdir)
    items = []
    for job in _jobs(project, jobs):
        if job.is_final or job.path.split("/")[0] not in relion_rules.ITERATIVE or job.status != "completed":
            continue
        paths = relion_rules.iteration_paths(pdir, job.path, nodes)
        if paths:
            items.append(_item(pdir, job, "relion_intermediate", paths, "intermediate iterations"))
    return deletion.DeletionPlan(project.uid, items)


def plan_delete(project, jobs=None, statuses=None) -> deletion.DeletionPlan:
    """RELION's Delete (to ``Trash/``) of ``jobs`` and the jobs that read them, children first.

    ``statuses`` (``["failed", "killed"]``): only jobs in those states.  Refused
    (UsageError) for a final job or an ancestor of one.
    """
    project = _relion(project)
    pdir = Path(project.directory)
    chosen = [j for j in _jobs(project, jobs) if statuses is None or j.status in statuses]
    ids = {j.id for j in chosen} | descendant_ids(chosen)
    todo = list(Job.select().where(Job.id.in_(sorted(ids)))) if ids else []
    for j in todo:
        if j.is_final or j.is_ancestor_of_final:
            raise UsageError(f"{j.uid} ({j.path}) is {'a final result' if j.is_final else 'an ancestor of a final result'}"
                             "; unmark it first")
    todo.sort(key=lambda j: -j.number)  # RELION numbers grow down the pipeline: children first
    items = []
    for j in todo:
        moved = freed_bytes(pdir, [j.path], j.uid)
        item = deletion.PlanItem(job=j.uid, action="relion_delete", paths=[], bytes=0,
                                 reason=f"RELION Delete: {j.path} -> Trash/{j.path} ({moved} bytes moved)",
                                 versions={"dir": j.path, "moved_bytes": moved,
                                           "require": {"allow_ancestor": False}})
        items.append(item)
    return deletion.DeletionPlan(project.uid, items)


def trash_entries(project_dir: Path) -> list[str]:
    """``Trash/<Type>/jobNNN`` entries (real directories) in RELION's trash."""
    out = []
    trash = Path(project_dir) / "Trash"
    if not trash.is_dir() or trash.is_symlink():
        return out
    for t in sorted(os.scandir(trash), key=lambda e: e.name):
        if not t.is_dir(follow_symlinks=False):
            continue
        for j in sorted(os.scandir(t.path), key=lambda e: e.name):
            if j.is_dir(follow_symlinks=False) and JOB_DIR.match(f"{t.name}/{j.name}/"):
                out.append(f"Trash/{t.name}/{j.name}")
    return out


def plan_empty_trash(project) -> deletion.DeletionPlan:
    """"Empty trash": every job entry of RELION's ``Trash/``, with its bytes."""
    project = _relion(project)
    pdir = Path(project.directory)
    items = []
    for rel in trash_entries(pdir):
        uid = f"J{int(rel.rsplit('job', 1)[1])}"
        items.append(deletion.PlanItem(job=uid, action="relion_empty_trash", paths=[rel],
                                       bytes=freed_bytes(pdir, [rel], uid), reason="RELION's trash",
                                       versions={"dir": rel}))
    return deletion.DeletionPlan(project.uid, items)


def plan_cleanup(project, preprocessing: bool = False, intermediate: bool = False, failed: bool = False,
                 trash: bool = False) -> deletion.DeletionPlan:
    """Cleanup Data for a RELION project: the chosen options in one plan."""
    project = _relion(project)
    items = []
    if preprocessing:
        items += plan_clear(project, categories={"motion", "ctf", "picking", "extraction"}).items
    if intermediate:
        items += plan_intermediate(project).items
    if failed:
        items += plan_delete(project, statuses=["failed", "killed"]).items
    if trash:
        items += plan_empty_trash(project).items
    return deletion.DeletionPlan(project.uid, items)


def execute(project, plan: deletion.DeletionPlan, progress=None, cancel=None):
    """Carry out ``plan`` through the deletion service (each item under RELION's lock);
    ``progress(fraction, text)`` per item (the GUI's running-jobs panel)."""
    return deletion.execute(_relion(project), plan, progress, cancel)
