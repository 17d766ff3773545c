"""Qt-free job-tree snapshot and its layout (numpy, cached).

The GUI draws tens of thousands of jobs, so everything here is arrays:
:func:`load_graph` reads one workspace (or a whole project) into a
:class:`GraphSnapshot` with a few bulk queries; parents of its jobs that live
in other workspaces come along as *ghosts* (drawn as ghost cards that say
where they live).  :func:`place` lays it out top-down with
:mod:`cryodesk.core.dag_layout` (edges routed around the cards for
workspaces, the batched overview layout for 10k+ jobs).  Layouts are cached
by a digest of the edge list and the viewport, so re-opening a workspace or a
refresh that changed only statuses is free.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from ..db.models import ACTIVE_STATUSES, JOB_STATUSES, Connection, Job, JobWorkspace, Workspace, db
from . import registry
from .dag_layout import CARD_H, CARD_W, GAP_X, GAP_Y, Placement, straight_segments
from .dag_layout import layout as _dag_layout
from .projects import get_project, get_workspace

__all__ = ["CARD_H", "CARD_W", "GAP_X", "GAP_Y", "GraphSnapshot", "Ghosts", "JobRows", "Placement", "breakdown",
           "job_rows", "load_graph", "place"]
STATUS_CODES = {s: i for i, s in enumerate(JOB_STATUSES)}
CATEGORY_CODES = {c: i for i, c in enumerate(registry.CATEGORIES)}


@dataclass
class GraphSnapshot:
    """The jobs of one scope as parallel arrays (index ``i`` = one job)."""

    project_uid: str
    workspace_uid: str | None
    ids: np.ndarray  # database ids
    numbers: np.ndarray
    types: list[str]
    titles: list[str]
    status: np.ndarray  # codes into JOB_STATUSES
    category: np.ndarray  # codes into registry.CATEGORIES (-1 unknown type)
    size: np.ndarray  # bytes
    is_final: np.ndarray
    is_ancestor: np.ndarray
    shared: np.ndarray  # linked into more than one workspace
    edge_parent: np.ndarray  # indices into the arrays above
    edge_child: np.ndarray
    x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    y: np.ndarray = field(default_factory=lambda: np.zeros(0))
    project_id: int | None = None  # database id: change events name projects by it
    ghosts: "Ghosts" = field(default_factory=lambda: Ghosts.empty())
    #: edge segments (x0, y0, x1, y1) as laid out; None: straight, computed on demand
    segments: np.ndarray | None = None
    layout_kind: str = "overview"
    bands: int = 1

    def __len__(self) -> int:
        return len(self.ids)

    def edge_segments(self) -> np.ndarray:
        """The ``(m, 4)`` line segments of every edge (routed, or straight when not laid out here)."""
        if self.segments is None:
            self.segments = straight_segments(self.x, self.y, self.edge_parent, self.edge_child)
        return self.segments

    def apply_placement(self, placed: Placement) -> None:
        """Take the positions of a :func:`place` result (jobs first, then ghosts)."""
        n = len(self)
        self.x, self.y = placed.x[:n].copy(), placed.y[:n].copy()
        self.ghosts.x, self.ghosts.y = placed.x[n:].copy(), placed.y[n:].copy()
        self.segments = placed.segments
        self.layout_kind = placed.kind
        self.bands = placed.bands

    def uid(self, i: int) -> str:
        return f"J{int(self.numbers[i])}"

    def index_of(self, uid: str) -> int | None:
        """Index of job ``uid`` ("J12" or 12), or None when it is not in this snapshot."""
        try:
            number = int(str(uid).strip().upper().lstrip("J"))
        except ValueError:
            return None
        hits = np.flatnonzero(self.numbers == number)
        return int(hits[0]) if len(hits) else None

    def status_name(self, i: int) -> str:
        return JOB_STATUSES[int(self.status[i])]

    @property
    def active(self) -> np.ndarray:
        codes = [STATUS_CODES[s] for s in ACTIVE_STATUSES]
        return np.isin(self.status, codes)

    def apply_rows(self, rows: "JobRows") -> np.ndarray:
        """Write ``rows`` (from :func:`job_rows`) into the arrays in place; returns the indices patched.

        Jobs of ``rows`` that are not in this snapshot are ignored; the layout,
        the edges and the order of jobs never change here (only a reload does that).
        """
        if len(self) == 0 or len(rows) == 0:
            return np.zeros(0, dtype=np.int64)
        order = np.argsort(self.numbers, kind="stable")
        sorted_numbers = self.numbers[order]
        pos = np.clip(np.searchsorted(sorted_numbers, rows.numbers), 0, len(order) - 1)
        found = sorted_numbers[pos] == rows.numbers
        idx, src = order[pos[found]], np.flatnonzero(found)
        self.status[idx] = rows.status[src]
        self.size[idx] = rows.size[src]
        self.is_final[idx] = rows.is_final[src]
        self.is_ancestor[idx] = rows.is_ancestor[src]
        self.category[idx] = rows.category[src]
        for i, k in zip(idx.tolist(), src.tolist()):
            self.titles[i] = rows.titles[k]
            self.types[i] = rows.types[k]
        return idx


@dataclass
class JobRows:
    """What a card shows of some jobs, as parallel arrays (see :func:`job_rows`)."""

    numbers: np.ndarray
    status: np.ndarray
    size: np.ndarray
    is_final: np.ndarray
    is_ancestor: np.ndarray
    category: np.ndarray
    titles: list[str]
    types: list[str]

    def __len__(self) -> int:
        return len(self.numbers)


@dataclass
class Ghosts:
    """Parents of the shown jobs that live only in other workspaces (ghost cards).

    ``edge_parent`` indexes these arrays, ``edge_child`` the snapshot's jobs.
    ``where`` names the workspaces each lives in (``"W1 Main line"``).
    """

    numbers: np.ndarray
    titles: list[str]
    types: list[str]
    status: np.ndarray
    where: list[str]
    edge_parent: np.ndarray
    edge_child: np.ndarray
    x: np.ndarray = field(default_factory=lambda: np.zeros(0))
    y: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @classmethod
    def empty(cls) -> "Ghosts":
        z = np.zeros(0, dtype=np.int64)
        return cls(z, [], [], np.zeros(0, dtype=np.int8), [], z, z)

    def __len__(self) -> int:
        return len(self.numbers)

    def uid(self, k: int) -> str:
        return f"J{int(self.numbers[k])}"

    def first_workspace(self, k: int) -> str:
        """The uid of the first workspace ghost ``k`` lives in ('' if none)."""
        return self.where[k].split()[0] if self.where[k] else ""


def _raw_rows(query) -> list[tuple]:
    """Rows of a peewee query straight from the DB cursor: no per-field Python conversion,
    which is most of the cost at 50k rows (the columns read here need none)."""
    return db.execute(query).fetchall()


def _category_codes(types) -> dict[str, int]:
    cat_of = {}
    for t in set(types):
        try:
            cat_of[t] = CATEGORY_CODES[registry.get(t).category]
        except Exception:  # a type from a plugin that is not installed: still drawn
            cat_of[t] = -1
    return cat_of


def recategorise(snap: GraphSnapshot) -> np.ndarray:
    """Fill in the categories of jobs whose type was not registered when ``snap`` was read
    (the app shows its tree before the job-type modules have loaded); returns the indices changed."""
    unknown = np.flatnonzero(snap.category < 0)
    if len(unknown) == 0:
        return unknown
    cat_of = _category_codes({snap.types[i] for i in unknown.tolist()})
    fresh = np.asarray([cat_of[snap.types[i]] for i in unknown.tolist()], dtype=np.int8)
    changed = unknown[fresh >= 0]
    snap.category[unknown] = fresh
    return changed


def job_rows(project, numbers) -> JobRows:
    """Status, size, final flags, category, title and type of jobs ``numbers`` of ``project``, now.

    The GUI re-reads only the jobs a change event names (a status, a flag, a
    size) and patches its snapshot with :meth:`GraphSnapshot.apply_rows`
    instead of reloading the tree.  Numbers of jobs that no longer exist are
    left out.

    Parameters
    ----------
    project : str, int or Project
        The project (uid like ``"P1"``).
    numbers : iterable of int
        Job numbers (``5`` for ``J5``).

    Returns
    -------
    JobRows
        Sorted by job number.
    """
    project = get_project(project)
    wanted = sorted({int(n) for n in numbers})
    rows: list[tuple] = []
    for k in range(0, len(wanted), 900):  # SQLite's bound-parameter limit
        q = (Job.select(Job.number, Job.type, Job.title, Job.status, Job.size_bytes, Job.is_final,
                        Job.is_ancestor_of_final)
             .where((Job.project == project) & Job.number.in_(wanted[k:k + 900])))
        rows += _raw_rows(q)
    rows.sort()
    cols = list(zip(*rows)) if rows else [[]] * 7
    types = list(cols[1])
    cat_of = _category_codes(types)
    return JobRows(numbers=np.asarray(cols[0], dtype=np.int64),
                   status=np.asarray([STATUS_CODES.get(s, 0) for s in cols[3]], dtype=np.int8),
                   size=np.asarray(cols[4], dtype=np.int64), is_final=np.asarray(cols[5], dtype=bool),
                   is_ancestor=np.asarray(cols[6], dtype=bool),
                   category=np.asarray([cat_of[t] for t in types], dtype=np.int8),
                   titles=list(cols[2]), types=types)


def load_graph(project, workspace=None, view: tuple[int, int] | None = None) -> GraphSnapshot:
    """Read the jobs and edges of ``workspace`` (or the whole project) and lay them out.

    ``view`` is the viewport's size in pixels: the layout wraps the tree to fit it
    (see :mod:`cryodesk.core.dag_layout`).  A workspace's jobs whose parents live
    only in other workspaces get those parents as :class:`Ghosts`.
    """
    project = get_project(project)
    ws = get_workspace(project, workspace) if workspace is not None else None
    q = Job.select(Job.id, Job.number, Job.type, Job.title, Job.status, Job.size_bytes,
                   Job.is_final, Job.is_ancestor_of_final).where(Job.project == project)
    if ws is not None:
        q = q.join(JobWorkspace).where(JobWorkspace.workspace == ws)
    rows = _raw_rows(q.order_by(Job.number))
    cols = list(zip(*rows)) if rows else [[]] * 8
    ids = np.asarray(cols[0], dtype=np.int64)
    types = list(cols[2])
    cat_of = _category_codes(types)
    counts: dict[int, int] = {}
    for jid, in _raw_rows(JobWorkspace.select(JobWorkspace.job).join(Workspace)
                          .where(Workspace.project == project)):
        counts[jid] = counts.get(jid, 0) + 1
    pos = {int(j): i for i, j in enumerate(ids)}
    all_edges = _raw_rows(Connection.select(Connection.child, Connection.parent)
                          .where(Connection.project == project.id))
    edges = sorted({(pos[p], pos[c]) for c, p in all_edges if p in pos and c in pos})
    snap = GraphSnapshot(
        project_uid=project.uid, workspace_uid=ws.uid if ws else None, ids=ids, project_id=project.id,
        numbers=np.asarray(cols[1], dtype=np.int64), types=types, titles=list(cols[3]),
        status=np.asarray([STATUS_CODES.get(s, 0) for s in cols[4]], dtype=np.int8),
        category=np.asarray([cat_of[t] for t in types], dtype=np.int8),
        size=np.asarray(cols[5], dtype=np.int64), is_final=np.asarray(cols[6], dtype=bool),
        is_ancestor=np.asarray(cols[7], dtype=bool),
        shared=np.asarray([counts.get(int(j), 0) > 1 for j in ids], dtype=bool),
        edge_parent=np.asarray([e[0] for e in edges], dtype=np.int64),
        edge_child=np.asarray([e[1] for e in edges], dtype=np.int64),
    )
    if ws is not None:
        outside = sorted({(p, pos[c]) for c, p in all_edges if c in pos and p not in pos})
        if outside:
            snap.ghosts = _ghosts(project, outside)
    snap.apply_placement(place_snapshot(snap, view))
    return snap


def _ghosts(project, outside: list[tuple[int, int]]) -> Ghosts:
    """The parents (database ids) of ``outside`` edges ``(parent id, child index)`` as ghosts."""
    pids = sorted({p for p, _ in outside})
    info: dict[int, tuple] = {}
    where: dict[int, list[str]] = {}
    for k in range(0, len(pids), 900):
        chunk = pids[k:k + 900]
        for row in _raw_rows(Job.select(Job.id, Job.number, Job.title, Job.type, Job.status)
                             .where(Job.id.in_(chunk))):
            info[row[0]] = row[1:]
        for jid, wnum, wtitle in _raw_rows(JobWorkspace.select(JobWorkspace.job, Workspace.number, Workspace.title)
                                           .join(Workspace).where(JobWorkspace.job.in_(chunk))
                                           .order_by(Workspace.number)):
            where.setdefault(jid, []).append(f"W{wnum} {wtitle}")
    pids = [p for p in pids if p in info]
    gpos = {p: k for k, p in enumerate(pids)}
    kept = [(gpos[p], c) for p, c in outside if p in gpos]
    return Ghosts(numbers=np.asarray([info[p][0] for p in pids], dtype=np.int64),
                  titles=[info[p][1] for p in pids], types=[info[p][2] for p in pids],
                  status=np.asarray([STATUS_CODES.get(info[p][3], 0) for p in pids], dtype=np.int8),
                  where=[", ".join(where.get(p, [])) for p in pids],
                  edge_parent=np.asarray([g for g, _ in kept], dtype=np.int64),
                  edge_child=np.asarray([c for _, c in kept], dtype=np.int64))


def place_snapshot(snap: GraphSnapshot, view=None) -> Placement:
    """Lay out ``snap``'s jobs and ghosts together (ghost ``k`` is node ``len(snap) + k``)."""
    n, g = len(snap), len(snap.ghosts)
    parent = np.concatenate([snap.edge_parent, snap.ghosts.edge_parent + n]).astype(np.int64)
    child = np.concatenate([snap.edge_child, snap.ghosts.edge_child]).astype(np.int64)
    ghost = np.zeros(n + g, dtype=bool)
    ghost[n:] = True
    return place(n + g, parent, child, ghost if g else None, view)


_CACHE: OrderedDict[str, Placement] = OrderedDict()
_CACHE_SIZE = 16


def _digest(n: int, parent: np.ndarray, child: np.ndarray, ghost, view) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(np.int64(n).tobytes())
    h.update(np.ascontiguousarray(parent, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(child, dtype=np.int64).tobytes())
    if ghost is not None:
        h.update(np.ascontiguousarray(ghost, dtype=bool).tobytes())
    # the viewport only matters to the routed layout; a resize by a few pixels relays nothing
    h.update(repr(None if view is None else (int(view[0]) // 50, int(view[1]) // 50)).encode())
    return h.hexdigest()


def place(n: int, parent, child, ghost=None, view=None) -> Placement:
    """Positions (top-left corners) and edge segments of ``n`` nodes; cached by the edge list.

    Parameters
    ----------
    n : int
        Number of nodes; node ``i`` is index ``i``, listed in creation order.
    parent, child : ndarray of int
        Edge list (``parent[k]`` → ``child[k]``).
    ghost : ndarray of bool, optional
        Nodes that are parents from another workspace (placed just above their children).
    view : (width, height), optional
        The viewport in pixels; the routed layout wraps the tree to fit it.

    Returns
    -------
    Placement
        A copy: callers may change it.
    """
    parent = np.asarray(parent, dtype=np.int64)
    child = np.asarray(child, dtype=np.int64)
    key = _digest(n, parent, child, ghost, view)
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit.copy()
    placed = _dag_layout(n, parent, child, ghost, view)
    _CACHE[key] = placed.copy()
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return placed


# -- the data-management sidebar ------------------------------------------------------

def breakdown(snap: GraphSnapshot) -> dict[str, dict[str, int]]:
    """Bytes of the jobs in ``snap`` grouped three ways: final flags, preprocessing, status."""
    size = snap.size
    final, anc = snap.is_final, snap.is_ancestor & ~snap.is_final
    pre_codes = [CATEGORY_CODES[c] for c in registry.PREPROCESSING_CATEGORIES]
    pre = np.isin(snap.category, pre_codes)
    by_status = {s: int(size[snap.status == code].sum()) for s, code in STATUS_CODES.items()
                 if (snap.status == code).any()}
    return {
        "final": {"final": int(size[final].sum()), "ancestor of final": int(size[anc].sum()),
                  "non-final": int(size[~final & ~anc].sum())},
        "kind": {"preprocessing": int(size[pre].sum()), "other": int(size[~pre].sum())},
        "status": by_status,
    }
