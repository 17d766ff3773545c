"""A CryoSPARC project directory (v4 or v5 job documents) -> :class:`~.register.ForeignProject`, read only.

v4 ``J<n>/job.json``: ``job_type``, ``status``, ``parents``, ``input_slot_groups[].connections``,
``output_results[]`` (``versions``, ``metafiles``), ``workspace_uids``, dates as ``{"$date": ...}``.
v5: ``spec`` (``type``, ``params``, ``inputs{}.connections``, ``outputs{}.results``), ``is_final_result``,
``is_ancestor_of_final_result``, ``job_dir_size``, ``intermediate_results_size_bytes``.
Fields and job types it does not know are kept (shown), never refused.  Nothing is written.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path

from ...base import nofollow
from ...base.errors import DataError
from ...db.models import JOB_STATUSES
from .register import ForeignJob, ForeignProject

_JOB = re.compile(r"^J([1-9][0-9]*)$")
_SESSION = re.compile(r"^S([1-9][0-9]*)$")


def is_cryosparc(path: Path) -> bool:
    path = Path(path)
    if not (path / "project.json").is_file() or not (path / "workspaces.json").is_file():
        return False
    return any(_JOB.match(e.name) and (path / e.name / "job.json").is_file() for e in os.scandir(path))


def _load(path: Path):
    try:
        return json.loads(nofollow.read_regular(path))
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: unreadable CryoSPARC document ({exc})") from None


def _date(v):
    if isinstance(v, dict):
        v = v.get("$date")
    if isinstance(v, (int, float)):
        return dt.datetime.fromtimestamp(v / 1000, dt.timezone.utc).replace(tzinfo=None)
    if isinstance(v, str):
        try:
            return dt.datetime.fromisoformat(v.replace("Z", "+00:00")).astimezone(dt.timezone.utc).replace(tzinfo=None)
        except ValueError:
            return None
    return None


def _num(uid, prefix: str) -> int | None:
    m = re.match(rf"^{prefix}([1-9][0-9]*)$", str(uid))
    return int(m.group(1)) if m else None


def _inputs(d: dict) -> list[tuple[int, str, str]]:
    out = []
    spec = d.get("spec") if isinstance(d.get("spec"), dict) else None
    if spec is not None:  # v5
        for slot, inp in (spec.get("inputs") or {}).items():
            for c in (inp or {}).get("connections", []) if isinstance(inp, dict) else []:
                n = _num(c.get("job_uid"), "J")
                if n:
                    out.append((n, str(slot), str(c.get("output", ""))))
    for g in d.get("input_slot_groups") or []:  # v4
        for c in (g or {}).get("connections", []):
            n = _num(c.get("job_uid"), "J")
            if n:
                out.append((n, str(g.get("name", "input")), str(c.get("group_name", ""))))
    if not out:
        out = [(n, "input", "") for n in (_num(p, "J") for p in d.get("parents") or []) if n]
    return out


def _outputs(d: dict) -> list[tuple[str, str, int, str]]:
    out = []
    results = []
    for r in d.get("output_results") or []:  # v4
        results.append((r.get("group_name", ""), r.get("name", ""), r.get("versions") or [], r.get("metafiles") or []))
    spec = d.get("spec") if isinstance(d.get("spec"), dict) else {}
    for group, o in (spec.get("outputs") or {}).items():  # v5
        for r in (o or {}).get("results", []) if isinstance(o, dict) else []:
            results.append((group, r.get("name", ""), r.get("versions") or [], r.get("metafiles") or []))
    for group, name, versions, metafiles in results:
        for k, path in enumerate(metafiles):
            version = versions[k] if k < len(versions) and isinstance(versions[k], int) else k
            out.append((str(group), str(name), int(version), str(path)))
    return out


def read_job(job_dir: Path) -> ForeignJob:
    d = _load(job_dir / "job.json")
    if not isinstance(d, dict):
        raise DataError(f"{job_dir / 'job.json'}: not a CryoSPARC job document (not a JSON object)")
    number = int(job_dir.name[1:])
    spec = d.get("spec") if isinstance(d.get("spec"), dict) else {}
    jtype = "cryosparc." + str(d.get("job_type") or spec.get("type") or "unknown")  # (its own namespace)
    status = d.get("status", "building")
    params = spec.get("params") if isinstance(spec.get("params"), dict) else {
        k: (v.get("value") if isinstance(v, dict) else v) for k, v in (d.get("params_spec") or {}).items()}
    known = {"uid", "job_type", "status", "title", "spec", "params_spec", "parents", "children", "output_results",
             "input_slot_groups", "workspace_uids", "created_at", "is_final_result", "is_ancestor_of_final_result"}
    extra = sorted(k for k in d if k not in known)
    ws = [n for n in (_num(w, "W") for w in d.get("workspace_uids") or []) if n] or [1]
    return ForeignJob(
        number=number, path=job_dir.name, type=jtype, title=str(d.get("title") or ""),
        status=status if status in JOB_STATUSES else "failed",
        error=None if status in JOB_STATUSES else f"CryoSPARC status {status!r}",
        params={**(params or {}), **({"_cryosparc_fields": extra} if extra else {})},
        parents=_inputs(d), workspaces=ws, is_final=bool(d.get("is_final_result")),
        is_ancestor_of_final=bool(d.get("is_ancestor_of_final_result")), outputs=_outputs(d),
        created_at=_date(d.get("created_at")))


def read_project(path: Path) -> ForeignProject:
    path = Path(path)
    pdoc = _load(path / "project.json")
    wdoc = _load(path / "workspaces.json")
    if isinstance(wdoc, dict):
        wdoc = list(wdoc.values()) if all(isinstance(v, dict) for v in wdoc.values()) else [wdoc]
    workspaces = {}
    for w in wdoc if isinstance(wdoc, list) else []:
        n = _num((w or {}).get("uid"), "W")
        if n:
            workspaces[n] = str(w.get("title") or f"W{n}")
    jobs, sessions, notes = [], {}, []
    for e in sorted(os.scandir(path), key=lambda e: e.name):
        if not e.is_dir(follow_symlinks=False):
            continue
        if _JOB.match(e.name) and (Path(e.path) / "job.json").is_file():
            try:
                jobs.append(read_job(Path(e.path)))
            except DataError as exc:
                notes.append(str(exc))
        elif _SESSION.match(e.name):
            sessions[int(e.name[1:])] = f"Live session {e.name}"
    for j in jobs:
        for w in j.workspaces:
            workspaces.setdefault(w, f"W{w}")
    workspaces = workspaces or {1: "W1"}
    title = str(pdoc.get("title") or path.name) if isinstance(pdoc, dict) else path.name
    uid = pdoc.get("uid") if isinstance(pdoc, dict) else None
    return ForeignProject(kind="cryosparc", title=f"{title} (CryoSPARC {uid})" if uid else title,
                          jobs=jobs, workspaces=workspaces, sessions=sessions, notes=notes)
