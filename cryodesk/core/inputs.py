"""What a job reads: its input connections resolved to the parents' files (Qt-free).

Shared by the runner (before a job starts) and the lifecycle (may a queued job
start?), so neither imports the other for it.
"""

from __future__ import annotations

from pathlib import Path

from ..base.errors import Refused
from ..db.models import Connection, Job, OutputFile
from . import registry
from .context import InputRef, OutputFileRef


def resolve_inputs(project, job: Job) -> dict[str, list[InputRef]]:
    """Each input slot's connections resolved to files; refuses when a parent cannot supply them."""
    pdir = Path(project.directory)
    out: dict[str, list[InputRef]] = {}
    conns = (Connection.select().where(Connection.child == job).order_by(Connection.slot, Connection.position))
    for c in conns:
        parent = c.parent
        if parent.status != "completed":
            raise Refused(job.uid, f"input {c.slot!r} needs {parent.uid}, which is {parent.status}; "
                          f"run (or re-run) {parent.uid} first")
        files = list(OutputFile.select().where((OutputFile.job == parent) & (OutputFile.group == c.output)))
        if not files:
            raise Refused(job.uid, f"{parent.uid} has no files in output {c.output!r} "
                          f"(was it cleared?); re-run {parent.uid} first")
        versions = sorted({f.version for f in files})
        version = versions[-1] if c.version is None else c.version
        if version not in versions:
            raise Refused(job.uid, f"{parent.uid}.{c.output} has no version {version} "
                          f"(it has {', '.join(map(str, versions))})")
        refs = [OutputFileRef(f.kind, f.path, f.version, f.size_bytes) for f in files if f.version == version]
        out.setdefault(c.slot, []).append(InputRef(c.slot, parent.uid, c.output, version, refs, pdir))
    jtype = registry.get(job.type)
    for slot in jtype.inputs:
        if slot.required and slot.name not in out:
            raise Refused(job.uid, f"required input {slot.name!r} is not connected")
    return out
