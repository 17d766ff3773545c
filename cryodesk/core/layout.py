"""Qt-free job-tree snapshot and layered left-to-right DAG layout (numpy, cached).

The GUI draws tens of thousands of jobs, so everything here is arrays:
:func:`load_graph` reads one workspace (or a whole project) into a
:class:`GraphSnapshot` with three bulk queries, and :func:`layered_layout`
places the nodes in columns (longest-path layering) ordered by a barycentre
key, in O(nodes + edges).  Layouts are cached by a digest of the edge list,
so re-opening a workspace or a refresh that changed only statuses is free.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from ..db.models import ACTIVE_STATUSES, JOB_STATUSES, Connection, Job, JobWorkspace, Workspace, db
from . import registry
from .projects import get_project, get_workspace

#: card geometry in scene units; the GUI draws cards of exactly this size
CARD_W, CARD_H = 180.0, 64.0
GAP_X, GAP_Y = 70.0, 18.0
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

    def __len__(self) -> int:
        return len(self.ids)

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


def load_graph(project, workspace=None) -> GraphSnapshot:
    """Read the jobs and edges of ``workspace`` (or the whole project) and lay them out."""
    project = get_project(project)
    ws = get_workspace(project, workspace) if workspace is not None else None
    q = Job.select(Job.id, Job.number, Job.type, Job.title, Job.status, Job.size_bytes,
                   Job.is_final, Job.is_ancestor_of_final).where(Job.project == project)
    if ws is not None:
        q = q.join(JobWorkspace).where(JobWorkspace.workspace == ws)
    rows = _raw_rows(q.order_by(Job.number))
    n = len(rows)
    cols = list(zip(*rows)) if rows else [[]] * 8
    ids = np.asarray(cols[0], dtype=np.int64)
    types = list(cols[2])
    cat_of = _category_codes(types)
    counts: dict[int, int] = {}
    for jid, in _raw_rows(JobWorkspace.select(JobWorkspace.job).join(Workspace)
                          .where(Workspace.project == project)):
        counts[jid] = counts.get(jid, 0) + 1
    pos = {int(j): i for i, j in enumerate(ids)}
    edges = [(pos[p], pos[c]) for c, p in _raw_rows(Connection.select(Connection.child, Connection.parent)
             .where(Connection.project == project.id)) if p in pos and c in pos]
    edges = sorted(set(edges))
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
    snap.x, snap.y = layered_layout(n, snap.edge_parent, snap.edge_child)
    return snap


_CACHE: OrderedDict[str, tuple[np.ndarray, np.ndarray]] = OrderedDict()
_CACHE_SIZE = 16


def _digest(n: int, parent: np.ndarray, child: np.ndarray) -> str:
    h = hashlib.blake2b(digest_size=16)
    h.update(np.int64(n).tobytes())
    h.update(np.ascontiguousarray(parent, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(child, dtype=np.int64).tobytes())
    return h.hexdigest()


def layered_layout(n: int, parent: np.ndarray, child: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Scene positions (top-left corners) of ``n`` nodes in a left-to-right layered layout.

    Parameters
    ----------
    n : int
        Number of nodes; node ``i`` is index ``i``, listed in creation order.
    parent, child : ndarray of int
        Edge list (``parent[k]`` → ``child[k]``).

    Returns
    -------
    x, y : ndarray of float
        Column ``layer * (CARD_W + GAP_X)``; rows ordered within each column by
        the mean position of the node's parents, columns centred vertically.
    """
    key = _digest(n, parent, child)
    hit = _CACHE.get(key)
    if hit is not None:
        _CACHE.move_to_end(key)
        return hit[0].copy(), hit[1].copy()
    layer, bary = _layers_and_barycentres(n, np.asarray(parent), np.asarray(child))
    order = np.lexsort((np.arange(n), bary, layer))
    sorted_layers = layer[order]
    starts = np.searchsorted(sorted_layers, sorted_layers, side="left")
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n) - starts
    counts = np.bincount(layer, minlength=1) if n else np.zeros(1, dtype=np.int64)
    tallest = counts.max() if n else 0
    offset = (tallest - counts) / 2.0  # centre every column on the tallest one
    x = layer * (CARD_W + GAP_X)
    y = (rank + offset[layer] if n else rank) * (CARD_H + GAP_Y)
    x, y = x.astype(float), np.asarray(y, dtype=float)
    _CACHE[key] = (x.copy(), y.copy())
    if len(_CACHE) > _CACHE_SIZE:
        _CACHE.popitem(last=False)
    return x, y


def _topological_order(n: int, parent: np.ndarray, child: np.ndarray) -> list[int]:
    """Kahn's order; nodes on a cycle (corrupt data) are appended in index order."""
    indeg = np.bincount(child, minlength=n).tolist() if n else []
    starts, targets = _csr(n, parent, child)
    ready = [i for i in range(n) if indeg[i] == 0]
    order: list[int] = []
    while ready:
        nxt: list[int] = []
        for u in ready:
            order.append(u)
            for v in targets[starts[u]:starts[u + 1]]:
                indeg[v] -= 1
                if indeg[v] == 0:
                    nxt.append(v)
        ready = nxt
    if len(order) < n:
        seen = set(order)
        order.extend(i for i in range(n) if i not in seen)
    return order


def _csr(n: int, src: np.ndarray, dst: np.ndarray) -> tuple[list[int], list[int]]:
    idx = np.argsort(src, kind="stable")
    starts = np.searchsorted(src[idx], np.arange(n + 1)).tolist()
    return starts, dst[idx].tolist()


def _layers_and_barycentres(n: int, parent: np.ndarray, child: np.ndarray):
    """Longest-path layer of each node, and a sort key that keeps children near their parents."""
    if n == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    order = _topological_order(n, parent, child)
    pstarts, plist = _csr(n, child, parent)  # parents of each node
    layer = [0] * n
    bary = [0.0] * n
    source_rank = 0
    for u in order:  # plain lists: ~10x faster than per-node numpy calls
        ps = plist[pstarts[u]:pstarts[u + 1]]
        if ps:
            layer[u] = 1 + max(layer[p] for p in ps)
            bary[u] = sum(bary[p] for p in ps) / len(ps)
        else:
            bary[u] = float(source_rank)
            source_rank += 1
    return np.asarray(layer, dtype=np.int64), np.asarray(bary)


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
