"""What a running job body sees: :class:`JobContext`.

A job type's ``run(ctx)`` is pure with respect to cryodesk: it reads its
params and inputs from ``ctx``, writes files only below ``ctx.job_dir``,
registers them with :meth:`JobContext.add_output`, reports progress through
:meth:`JobContext.progress` and calls :meth:`JobContext.check_cancel` often.
It never touches the database or Qt, so it is testable on its own.

Conventions shared by all job types
-----------------------------------
* Paths recorded in outputs are relative to the **project directory**
  (``J5/restack/batch_000.mrc``), like CryoSPARC's ``blob/path``.
* An output group's files are recorded with a *version*: iterative jobs write
  versions 0, 1, 2, ...; the highest version is the final output, the others
  are intermediate results.
* File ``kind`` names the role of a file in its group: ``dataset`` (the
  ``.cs`` metadata file), ``csg`` (group manifest), ``blob`` (image stacks),
  ``star``, ``volume``, ``log``...
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..base.errors import DataError, JobCancelled, UsageError
from ..base.fsio import du_size


@dataclass
class OutputFileRef:
    kind: str
    path: str  # relative to the project directory
    version: int
    size_bytes: int = 0


@dataclass
class InputRef:
    """One connection of an input slot, resolved to the parent's files."""

    slot: str
    parent_uid: str
    output: str
    version: int
    files: list[OutputFileRef]
    project_dir: Path

    def paths(self, kind: str) -> list[Path]:
        return [self.project_dir / f.path for f in self.files if f.kind == kind]

    def path(self, kind: str = "dataset") -> Path:
        """The single file of ``kind`` in this input; a clear error otherwise."""
        found = self.paths(kind)
        if len(found) != 1:
            raise DataError(
                f"input {self.slot!r} ({self.parent_uid}.{self.output} v{self.version}) "
                f"has {len(found)} files of kind {kind!r}, expected 1"
            )
        return found[0]


@dataclass
class JobContext:
    """Everything a job body may use; built by the runner."""

    project_uid: str
    uid: str
    type: str
    project_dir: Path
    job_dir: Path
    params: dict[str, Any]
    inputs: dict[str, list[InputRef]]
    log: logging.Logger
    progress_cb: Callable[[float, str], None] | None = None
    cancel_event: threading.Event = field(default_factory=threading.Event)
    outputs: list[tuple[str, OutputFileRef]] = field(default_factory=list)
    #: free-form results a job wants recorded in job.json (e.g. per-frame shifts)
    results: dict[str, Any] = field(default_factory=dict)

    # -- inputs ---------------------------------------------------------
    def input(self, slot: str) -> InputRef:
        """The single connection of ``slot``."""
        refs = self.inputs.get(slot) or []
        if len(refs) != 1:
            raise UsageError(f"{self.uid}: input {slot!r} has {len(refs)} connections, expected 1")
        return refs[0]

    # -- progress / cancel ----------------------------------------------
    def progress(self, fraction: float, message: str = "") -> None:
        if self.progress_cb is not None:
            self.progress_cb(max(0.0, min(1.0, float(fraction))), message)

    def is_cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def check_cancel(self) -> None:
        if self.cancel_event.is_set():
            raise JobCancelled(f"{self.uid} was cancelled")

    # -- outputs --------------------------------------------------------
    def rel(self, path: Path | str) -> str:
        """``path`` relative to the project directory; it must lie in the job directory.

        Only the parent is resolved: a symlink recorded as an output (imported
        raw data, say) is a file *of this job*, wherever it points.
        """
        p = Path(path)
        if not p.is_absolute():
            p = self.job_dir / p
        full = Path(os.path.realpath(p.parent)) / p.name
        try:
            inner = full.relative_to(Path(os.path.realpath(self.job_dir)))
        except ValueError:
            raise DataError(f"{self.uid}: output {p} is outside the job directory") from None
        if inner == Path("."):
            raise DataError(f"{self.uid}: an output must be a file inside the job directory, not the directory")
        return (Path(self.job_dir.name) / inner).as_posix()

    def add_output(self, group: str, path: Path | str, kind: str = "dataset", version: int = 0) -> None:
        """Record ``path`` (inside the job directory) as a file of output ``group``."""
        rel = self.rel(path)
        full = self.project_dir / rel
        size = du_size(full)  # as du -sb: a directory output counts itself and what is in it, a symlink its link
        self.outputs.append((group, OutputFileRef(kind=kind, path=rel, version=int(version), size_bytes=size)))
