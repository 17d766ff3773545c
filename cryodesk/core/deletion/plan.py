"""A deletion plan: per job, the paths to remove and the database change that goes with them.

Plans are shown (``--dry-run`` prints :meth:`DeletionPlan.to_dict`), written
as journals, and read back after a crash.  A journal on disk is *input*: it
may be stale or crafted, so :meth:`DeletionPlan.from_dict` checks its shape
and :func:`path_problem` every path, before anything is done with it.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath

from ...base.errors import DataError

JOB_UID = re.compile(r"^J[1-9][0-9]{0,9}$")
SESSION_UID = re.compile(r"^S[1-9][0-9]{0,9}$")  # items of session actions (compaction) name S<n>
PLAN_ID = re.compile(r"^[0-9a-f]{8,32}$")
MANIFEST = "job.json"
LOG = "job.log"


@dataclass
class PlanItem:
    """One job's part of a plan.

    Attributes
    ----------
    job : str
        The job's uid (``"J5"``); every path lies in its directory.
    action : str
        A registered action (:mod:`cryodesk.core.deletion.actions`): ``clear``,
        ``delete``, ``clear_versions``, ``discard`` or ``discard_temp``.
    paths : list of str
        Relative to the project directory (``"J5"`` for a delete, ``"J5/x.mrc"`` otherwise).
    bytes : int
        What the item frees: the ``du -sb`` size of its paths (:mod:`cryodesk.core.sizes`).
    reason : str
        Why, for the user.
    versions : dict
        Action details: ``{"groups": {group: [versions]}}`` for ``clear_versions``,
        ``{"require": {...}}`` conditions the plan was made under (see the actions).
    """

    job: str
    action: str
    paths: list[str]
    bytes: int = 0
    reason: str = ""
    versions: dict = field(default_factory=dict)


@dataclass
class DeletionPlan:
    project: str
    items: list[PlanItem]
    id: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    @property
    def bytes(self) -> int:
        return sum(i.bytes for i in self.items)

    def to_dict(self) -> dict:
        return {"id": self.id, "project": self.project, "items": [asdict(i) for i in self.items]}

    @classmethod
    def from_dict(cls, d) -> "DeletionPlan":
        """A plan from its JSON form, its shape checked (DataError says what is wrong)."""
        if not isinstance(d, dict):
            raise DataError("not a deletion plan (not a JSON object)")
        pid, project, items = d.get("id"), d.get("project"), d.get("items")
        if not isinstance(pid, str) or not PLAN_ID.match(pid):
            raise DataError(f"deletion plan id {pid!r} is malformed")
        if not isinstance(project, str) or not re.match(r"^P[1-9][0-9]*$", project):
            raise DataError(f"deletion plan {pid} names no valid project ({project!r})")
        if not isinstance(items, list):
            raise DataError(f"deletion plan {pid} has no list of items")
        out = []
        for n, i in enumerate(items):
            if not isinstance(i, dict) or not isinstance(i.get("job"), str) or not isinstance(i.get("action"), str):
                raise DataError(f"deletion plan {pid} item {n} is malformed")
            paths = i.get("paths", [])
            if not isinstance(paths, list) or not all(isinstance(p, str) for p in paths):
                raise DataError(f"deletion plan {pid} item {n} ({i['job']}): paths are not a list of strings")
            versions = i.get("versions") or {}
            if not isinstance(versions, dict):
                raise DataError(f"deletion plan {pid} item {n} ({i['job']}): versions is not a mapping")
            size = i.get("bytes", 0)
            out.append(PlanItem(job=i["job"], action=i["action"], paths=list(paths),
                                bytes=size if isinstance(size, int) and size >= 0 else 0,
                                reason=str(i.get("reason", "")), versions=versions))
        return cls(project=project, items=out, id=pid)


@dataclass
class ItemResult:
    job: str
    action: str
    ok: bool
    message: str = ""
    bytes: int = 0
    #: the plan (journal) the item came from, when it was replayed (the CLI reports a set-aside journal once)
    plan: str = ""


def path_problem(item: PlanItem, whole_dir: bool, uid_pattern: re.Pattern = JOB_UID,
                 job_dir: str | None = None) -> str | None:
    """Why a path of ``item`` is unsafe, or None.

    A path is relative, normalised, free of ``..``, inside the item's own job
    directory (``job_dir``: ``J<n>``, or another program's ``Class2D/job008``),
    never the job's ``job.json``; ``whole_dir`` actions name exactly the job
    directory, the others only entries inside it.
    """
    if not uid_pattern.match(item.job):
        return f"{item.job!r} is not a {'job' if uid_pattern is JOB_UID else 'session'} uid"
    job_dir = job_dir or item.job
    top = tuple(job_dir.split("/"))
    if whole_dir and item.paths not in ([], [job_dir]):
        return f"a delete names only the job directory {job_dir}, not {item.paths}"
    for rel in item.paths:
        if not rel or "\0" in rel:  # (a backslash is an ordinary character in a Linux file name)
            return f"path {rel!r} is malformed"
        parts = PurePosixPath(rel).parts
        if rel.startswith("/") or ".." in parts or "." in parts or str(PurePosixPath(*parts)) != rel:
            return f"path {rel!r} is not a plain relative path"
        if parts[:len(top)] != top:
            return f"path {rel} is outside the job directory {job_dir}"
        if not whole_dir and (len(parts) <= len(top) or (len(parts) == len(top) + 1 and parts[-1] == MANIFEST
                                                         and len(top) == 1)):
            return f"path {rel} would remove the job's directory or its record"
    return None


def versions_problem(item: PlanItem) -> str | None:
    """Why the item's ``versions`` details are malformed (a crafted or corrupt journal), or None."""
    v = item.versions
    require = v.get("require", {})
    if require is not None and not isinstance(require, dict):
        return f"its conditions are {require!r}, not a mapping"
    require = require or {}
    if not isinstance(require.get("allow_ancestor", True), bool):
        return f"allow_ancestor is {require['allow_ancestor']!r}, not true or false"
    status_in = require.get("status_in")
    if status_in is not None and (not isinstance(status_in, list) or not all(isinstance(x, str) for x in status_in)):
        return f"status_in is {status_in!r}, not a list of statuses"
    groups = v.get("groups")
    if groups is not None:
        if not isinstance(groups, dict) or not all(
                isinstance(g, str) and isinstance(vs, list) and all(isinstance(x, int) and not isinstance(x, bool)
                                                                    for x in vs) for g, vs in groups.items()):
            return f"its output versions are {groups!r}, not {{group: [numbers]}}"
    if item.action == "clear_versions" and not groups:
        return "it names no output versions"
    return None
