"""Deletion actions for RELION projects (issue 16): each holds RELION's lock and keeps RELION's files right.

Items name the job by its uid (``J8`` for ``Class2D/job008``) and its directory in
``versions["dir"]``; that directory is checked to be a RELION job directory
(``<Type>/job<NNN>``) and, at apply time, to be the job's own.

* ``relion_clear``: what RELION's harsh clean removes (:mod:`cryodesk.core.foreign.relion_rules`),
  rechecked against the pipeline as it is now (a file that became a node is kept);
* ``relion_intermediate``: files of iterations before the last that no pipeline node names;
* ``relion_delete``: RELION's Delete — the job directory moves to ``Trash/<Type>/jobNNN/``
  with a ``deleted_pipeline.star`` (RELION's Undelete reads it), the pipeline is rewritten
  without the job in the layout it was read in, its alias link goes; frees nothing;
* ``relion_empty_trash``: removes a ``Trash/<Type>/jobNNN/`` entry (bytes freed: its size).
"""

from __future__ import annotations

import re
from pathlib import Path

from ...base import nofollow
from ...base.errors import DataError
from ...db.models import ACTIVE_STATUSES, Job
from .. import events
from ..foreign import relion_rules
from ..foreign.relion_lock import relion_lock
from ..graph import descendant_ids
from .actions import Action, register
from .plan import PlanItem

_DIR = re.compile(r"^[A-Za-z][A-Za-z0-9_]*/job[0-9]{3,}$")
PIPELINE = "default_pipeline.star"


def _node_names(project_dir: Path) -> set[str]:
    # (the STAR reader loads numpy: only when a RELION job is planned, not with every deletion)
    from ...io.relion_pipeline import read_pipeline

    p = read_pipeline(Path(project_dir) / PIPELINE)
    return {n.name for n in p.nodes} | {e[0] for e in p.input_edges}


def _not_relion(project) -> str | None:
    kind = getattr(project, "kind", None) or "cryodesk"
    return None if kind == "relion" else f"{project.uid} is not a RELION project (it is {kind}'s)"


class _RelionAction(Action):
    def item_dir(self, item: PlanItem) -> str:
        d = item.versions.get("dir")
        if not isinstance(d, str) or not _DIR.match(d):
            raise DataError(f"{item.job}: {d!r} is not a RELION job directory (Type/jobNNN)")
        return d

    def check_dir(self, project_dir: Path, item: PlanItem) -> Path:
        d = self.item_dir(item)
        path = Path(project_dir) / d
        for p in (Path(project_dir) / d.split("/")[0], path):
            if p.is_symlink():
                raise DataError(f"{p} is a symlink; cryodesk never deletes through one")
        return path

    def guard(self, project_dir: Path):
        return relion_lock(project_dir, f"{self.name} in {project_dir}")

    def rule(self, project, job, item):
        why = _not_relion(project)
        if why:
            return why
        if job.path != self.item_dir(item):
            return f"{item.job} is {job.path} in the database, not {self.item_dir(item)}"
        if job.status in ACTIVE_STATUSES:
            return f"it is {job.status} in RELION"
        return self.relion_rule(Path(project.directory), job, item)

    def relion_rule(self, project_dir: Path, job: Job, item: PlanItem) -> str | None:
        return None

    def apply(self, project, job, item):
        self._remeasure(project, job)
        events.record(project, "updated", [job])


class RelionClear(_RelionAction):
    name = "relion_clear"

    def relion_rule(self, project_dir, job, item):
        nodes = _node_names(project_dir)
        for rel in item.paths:
            if rel in nodes:
                return f"{rel} is now a node of the pipeline (another job reads it, or it is an output)"
            if rel.rsplit("/", 1)[-1] in relion_rules.KEEP:
                return f"{rel} is one of the files RELION needs to show or continue the job"
        return None


class RelionIntermediate(RelionClear):
    name = "relion_intermediate"

    def relion_rule(self, project_dir, job, item):
        why = super().relion_rule(project_dir, job, item)
        if why:
            return why
        allowed = set(relion_rules.iteration_paths(project_dir, job.path, _node_names(project_dir)))
        stray = [p for p in item.paths if p not in allowed and (project_dir / p).exists()]
        if stray:
            return f"{stray[0]} is not an intermediate iteration now (the last one, or another job reads it)"
        return None


class RelionDelete(_RelionAction):
    name = "relion_delete"

    def check(self, project, job, item):
        if item.paths:
            return "a RELION delete moves the job directory to Trash/ and names no paths"
        return super().check(project, job, item)

    def relion_rule(self, project_dir, job, item):
        left = descendant_ids([job])
        if left:
            names = sorted(f"J{n}" for (n,) in Job.select(Job.number).where(Job.id.in_(sorted(left))).tuples())
            return f"{', '.join(names)} read its outputs and are not deleted"
        if job.is_ancestor_of_final:
            return "it is an ancestor of a final result"
        return None

    def apply(self, project, job, item):
        from ...io.relion_pipeline import format_pipeline, read_pipeline, write_pipeline

        pdir = Path(project.directory)
        d = self.item_dir(item)
        kind, leaf = d.split("/")
        pipe = read_pipeline(pdir / PIPELINE)
        name = d + "/"
        proc = pipe.process(name)
        trash = pdir / "Trash" / kind
        if (pdir / d).is_dir():
            with nofollow.open_dirs(pdir, [kind], where=d) as src, \
                    nofollow.open_dirs(pdir, ["Trash", kind], create=True, where="Trash") as dst:
                if nofollow.exists(dst, leaf):
                    raise DataError(f"Trash/{d} exists already: empty it (or undelete it in RELION) first")
                nofollow.move(src, leaf, dst)
        if proc is not None:
            kept, gone = pipe.without({name})
            (trash / leaf).mkdir(parents=True, exist_ok=True)
            from ...base.fsio import atomic_write

            atomic_write(trash / leaf / "deleted_pipeline.star", format_pipeline(gone))
            if proc.alias:
                alias = pdir / proc.alias.rstrip("/")
                if alias.is_symlink():  # RELION's alias link; a real file or directory there is not ours
                    alias.unlink()
            write_pipeline(pdir / PIPELINE, kept)
        job.delete_instance()
        events.record(project, "removed", [job])


class RelionEmptyTrash(_RelionAction):
    """Remove one ``Trash/<Type>/jobNNN`` entry: RELION's trash, of a job deleted before."""

    name = "relion_empty_trash"
    jobless = True
    whole_dir = True

    def item_dir(self, item):
        d = item.versions.get("dir")
        if not isinstance(d, str) or not d.startswith("Trash/") or not _DIR.match(d[len("Trash/"):]):
            raise DataError(f"{item.job}: {d!r} is not an entry of RELION's Trash (Trash/Type/jobNNN)")
        return d

    def check_dir(self, project_dir, item):
        d = self.item_dir(item)
        for p in (Path(project_dir) / "Trash", Path(project_dir) / d.rsplit("/", 1)[0], Path(project_dir) / d):
            if p.is_symlink():
                raise DataError(f"{p} is a symlink; cryodesk never deletes through one")
        return Path(project_dir) / d

    def check(self, project, job, item):
        from .plan import path_problem

        why = _not_relion(project)
        if why:
            return why
        if item.paths != [self.item_dir(item)]:
            return f"emptying RELION's trash names exactly {self.item_dir(item)}"
        why = path_problem(item, True, job_dir=self.item_dir(item))
        if why:
            return why
        if job is not None and job.path == self.item_dir(item)[len("Trash/"):]:
            return f"{item.job} is back in the pipeline (undeleted): its directory is not trash"
        return None

    def apply(self, project, job, item):
        events.record(project, "project")


for _a in (RelionClear(), RelionIntermediate(), RelionDelete(), RelionEmptyTrash()):
    register(_a)
