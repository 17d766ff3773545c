"""``open_project(DIR)``: recognise what a directory is and register it with its kind.

* RELION: ``default_pipeline.star`` (any of the 3.1/4.0/5.0 layouts) — read-write;
* CryoSPARC: ``project.json`` + ``workspaces.json`` + ``J<n>/job.json`` — read only;
* cryodesk: ``project.json`` of cryodesk's own — attached (:func:`cryodesk.core.attach.attach_project`).

Opening writes nothing into the directory.  The sizes are measured from disk
(links never followed; RELION's ``Movies`` link and other links out of the project
counted apart as linked/raw data; ``Trash/`` reported with its size).
"""

from __future__ import annotations

import json
from pathlib import Path

from ...base.errors import DataError, UsageError
from ...db.models import Project
from .. import finals, sizes
from . import cryosparc_open, relion_open
from .register import register


def detect(directory: str | Path) -> str:
    """``"relion"``, ``"cryosparc"`` or ``"cryodesk"``; UsageError naming what is missing."""
    path = Path(directory).expanduser()
    if not path.is_dir():
        raise UsageError(f"{path} is not a directory")
    if relion_open.is_relion(path):
        return "relion"
    if cryosparc_open.is_cryosparc(path):
        return "cryosparc"
    doc = path / "project.json"
    if doc.is_file():
        try:
            d = json.loads(doc.read_text())
        except (OSError, ValueError) as exc:
            raise DataError(f"{doc}: unreadable ({exc})") from None
        if isinstance(d, dict) and "format" in d and "next_job_number" in d:
            return "cryodesk"
    raise UsageError(f"{path} is not a project cryodesk knows: no default_pipeline.star (RELION), no "
                     "project.json + workspaces.json + J<n>/job.json (CryoSPARC), no cryodesk project.json")


def open_project(directory: str | Path) -> tuple[Project, dict]:
    """Register (or re-read) the project in ``directory``; returns it and a summary of what was read."""
    path = Path(directory).expanduser().resolve()
    kind = detect(path)
    if kind == "cryodesk":
        from ..attach import attach_project

        project = attach_project(path)
        return project, {"kind": "cryodesk", "project": project.uid}
    doc = relion_open.read_project(path) if kind == "relion" else cryosparc_open.read_project(path)
    project = register(path, doc)
    if kind == "relion":  # RELION has no ancestor flags: derived from cryodesk's final flags, as everywhere
        finals.recompute_ancestor_flags(project, write_manifests=False)
    summary = sizes.refresh_project_size(project)
    return project, {"kind": kind, "project": project.uid, "title": project.title, "jobs": len(doc.jobs),
                     "workspaces": len(doc.workspaces), "sessions": len(doc.sessions), "notes": doc.notes,
                     "read_only": kind == "cryosparc", "size": summary}


def kind_label(project: Project) -> str:
    """What the browser shows beside a project: '' for cryodesk's own."""
    return {"relion": "RELION", "cryosparc": "CryoSPARC — read-only"}.get(project.kind or "cryodesk", "")
