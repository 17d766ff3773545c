"""One bulk read of everything the planner needs (a handful of queries, no disk access)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

from ...base.errors import CryodeskError
from ...db.models import ACTIVE_STATUSES, Connection, Job, JobWorkspace, Workspace, db
from .. import registry
from ..sizes import version_sizes


class JobRow(NamedTuple):
    id: int
    number: int
    type: str
    status: str
    size: int
    is_final: bool
    is_ancestor: bool

    @property
    def uid(self) -> str:
        return f"J{self.number}"

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES


@dataclass
class Snapshot:
    jobs: dict[int, JobRow]
    category: dict[int, str]
    children: dict[int, list[int]]
    workspaces: dict[int, list[int]]  # job id -> workspace numbers
    #: job id -> {(group, version)} that other jobs read with an explicit version
    used_versions: dict[int, set[tuple[str, int]]]
    #: job id -> {(group, version): bytes} for every version but the last
    intermediate: dict[int, dict[tuple[str, int], int]]
    #: job id -> {group: last (kept) version}
    last_version: dict[int, dict[str, int]] = field(default_factory=dict)
    #: particle exports that copied their stacks (their images are their own, not their parents')
    copied_stacks: set[int] = field(default_factory=set)
    _readers: dict | None = field(default=None, repr=False)

    def uid(self, jid: int) -> str:
        return self.jobs[jid].uid

    def active_readers(self) -> dict[int, tuple[int, int | None]]:
        """Job id -> (an active job reading what it made, the child it reads through; None: directly).

        At any depth: every ancestor of a queued or running job (computed once per snapshot).
        """
        if self._readers is None:
            parents: dict[int, list[int]] = defaultdict(list)
            for p, kids in self.children.items():
                for k in kids:
                    parents[k].append(p)
            readers: dict[int, tuple[int, int | None]] = {}
            for a in sorted(j for j, row in self.jobs.items() if row.active):
                stack, seen = [(p, None) for p in parents.get(a, ())], {a}
                while stack:  # (a cycle in crafted edges ends here too)
                    jid, via = stack.pop()
                    if jid in seen:
                        continue
                    seen.add(jid)
                    if jid not in readers or (via is None and readers[jid][1] is not None):
                        readers[jid] = (a, via)
                    stack.extend((p, jid) for p in parents.get(jid, ()))
            self._readers = readers
        return self._readers


def _category(type_name: str, cache: dict) -> str:
    if type_name not in cache:
        try:
            cache[type_name] = registry.get(type_name).category
        except CryodeskError:  # a type from a newer cryodesk or a removed plugin
            cache[type_name] = "unknown"
    return cache[type_name]


def load(project) -> Snapshot:
    """Read jobs, edges, workspace links and output versions of ``project`` in bulk."""
    pid = project.id
    jobs: dict[int, JobRow] = {}
    cats: dict[str, str] = {}
    category: dict[int, str] = {}
    # raw cursor rows: peewee's per-value conversion costs more than the query here
    q = db.execute(Job.select(Job.id, Job.number, Job.type, Job.status, Job.size_bytes, Job.is_final,
                              Job.is_ancestor_of_final).where(Job.project == pid))
    for jid, number, type_, status, size, fin, anc in q:
        jobs[jid] = JobRow(jid, number, type_, status, int(size or 0), bool(fin), bool(anc))
        category[jid] = _category(type_, cats)
    children: dict[int, list[int]] = defaultdict(list)
    used: dict[int, set] = defaultdict(set)
    for child, parent, output, version in db.execute(
        Connection.select(Connection.child, Connection.parent, Connection.output, Connection.version)
        .where(Connection.project == pid)
    ):
        children[parent].append(child)
        if version is not None:
            used[parent].add((output, version))
    workspaces: dict[int, list[int]] = defaultdict(list)
    for jid, wnum in db.execute(JobWorkspace.select(JobWorkspace.job, Workspace.number).join(Workspace)
                                .where(Workspace.project == pid).order_by(Workspace.number)):
        workspaces[jid].append(wnum)
    inter: dict[int, dict[tuple[str, int], int]] = {}
    last: dict[int, dict[str, int]] = {}
    for (jid, group), versions in version_sizes(project).items():
        top = max(versions)
        last.setdefault(jid, {})[group] = top
        for v, size in versions.items():
            if v != top:
                inter.setdefault(jid, {})[(group, v)] = size
    return Snapshot(jobs, category, dict(children), dict(workspaces), dict(used), inter, last,
                    copied_stacks(pid))


#: job types whose ``copy_stacks`` parameter makes their particle images copies of their own
COPYING_TYPES = ("export_particles",)


def copied_stacks(project_id: int, ids=None) -> set[int]:
    """The export jobs of the project (of ``ids``, if given) that copy their stacks (a few rows: exports only)."""
    q = Job.select(Job.id, Job.params).where(Job.project == project_id, Job.type.in_(COPYING_TYPES))
    if ids is not None:
        q = q.where(Job.id.in_(list(ids)))
    return {jid for jid, params in q.tuples() if isinstance(params, dict) and params.get("copy_stacks") is True}


def deletable(snap: Snapshot, wanted: set[int]) -> set[int]:
    """The jobs of ``wanted`` whose every descendant (project-wide) is in ``wanted`` too."""
    ok: dict[int, bool] = {}
    opened: set[int] = set()  # expanded, not yet judged: met again, it is on a cycle (a damaged database)
    for start in wanted:
        if start in ok:
            continue
        stack = [(start, False)]
        while stack:  # iterative post-order: children are judged before their parent
            jid, expanded = stack.pop()
            if jid in ok or (not expanded and jid in opened):
                continue  # a job on a cycle is judged not deletable: ok.get(k, False) below
            kids = snap.children.get(jid, ())
            if not expanded:
                opened.add(jid)
                stack.append((jid, True))
                stack.extend((k, False) for k in kids if k not in ok and k in wanted and k not in opened)
                continue
            ok[jid] = jid in wanted and all(k in wanted and ok.get(k, False) for k in kids)
    return {j for j, good in ok.items() if good}
