"""An in-memory adjacency index of each project's job DAG, kept current by the change log.

Recursive SQL costs 20-100 ms per query at 50,000 jobs and grows with the
project; walking a Python adjacency dict costs a few ms.  The index of a
project is built once from its ``job`` and ``connection`` rows and then kept
current by the change events every core service records in the transaction
of its change (:mod:`cryodesk.core.events`): ``added``, ``removed`` and
``links`` name the jobs whose edges or workspace links changed, and only
their edges are read again.  So another process (the CLI, a worker, a second
window; SQLite or PostgreSQL) adding, connecting or deleting jobs is seen at
the next query.

Before every use the index is validated against the change log: the newest
change id, and the rows of this project above ``cursor - REREAD`` (on
PostgreSQL a transaction that took a lower id can commit after a higher one
was seen, as :class:`cryodesk.core.events.Follower` knows).  When it cannot
be sure — a change of "many" jobs, a seen row that vanished (rolled back or
pruned), a log that went backwards (a reset database), an index not checked
for longer than the log is kept — it rebuilds.  Inside a transaction that
has structural changes of its own not yet committed, the caller gets None
and uses SQL: the shared index only ever holds committed state.

Every walk keeps a visited set, so a crafted database with a cycle (a job
that is its own input) cannot make it loop.
"""

from __future__ import annotations

import json
import threading
import time
import weakref
from itertools import chain as _chain
from itertools import repeat

import numpy as np

from ..db.models import db
from .events import KEEP_SECONDS, REREAD

__all__ = ["closure", "chain", "reaches", "clear", "enabled"]

#: events that change edges or workspace links of the jobs they name
_STRUCTURAL = ("added", "removed", "links")
#: more jobs than this in one validation: rebuild instead of patching
_PATCH_LIMIT = 2000
_CHUNK = 900
#: from this many jobs with inputs, walks run compiled on arrays (numba) instead of Python sets
ARRAY_EDGES = 5000
#: the first query of a project in a process is answered by SQL, the index is built at the second
#: (a one-shot CLI command asks once; building costs a few SQL queries' worth)
SQL_FIRST = True

chain_from = _chain.from_iterable
_registry: "weakref.WeakKeyDictionary[object, dict[int, _ProjectIndex]]" = weakref.WeakKeyDictionary()
_registry_lock = threading.Lock()
enabled = True  # tests and the benchmark switch it off to compare with the SQL answers


def clear() -> None:
    """Forget every index (they are rebuilt on the next query)."""
    with _registry_lock:
        _registry.clear()


def _chunks(values):
    values = list(values)
    for i in range(0, len(values), _CHUNK):
        yield values[i:i + _CHUNK]


def _marks(n: int) -> str:
    return ", ".join([db.obj.param] * n)


def _sql(sql: str, params=()):
    return db.obj.execute_sql(sql, list(params)).fetchall()


class _ProjectIndex:
    """Adjacency of one project: ``up[child] = parents``, ``down[parent] = children`` (tuples)."""

    def __init__(self, project_id: int):
        self.project_id = project_id
        self.lock = threading.Lock()
        self.up: dict[int, tuple] = {}
        self.down: dict[int, tuple] = {}
        self.ids: dict[int, int] = {}  # job number -> id
        self.members: dict[int, set[int]] | None = None  # workspace id -> job ids (loaded when asked)
        self.ws_of: dict[int, set[int]] = {}
        self.cursor = -1  # newest change id when last validated
        self.seen: set[int] = set()  # ids of this project's change rows above cursor - REREAD
        self.checked = 0.0
        self.asked = 0
        self._edges: tuple | None = None  # (child ids, parent ids) arrays, kept with up/down
        self._fresh_arrays()

    # -- validation ------------------------------------------------------------
    def _rows(self, low: int):
        p = db.obj.param
        return _sql(f"SELECT id, project_id, kind, jobs FROM change WHERE id > {p} "
                    f"AND (project_id = {p} OR project_id IS NULL) ORDER BY id", [low, self.project_id])

    def current(self) -> bool:
        """Bring the index up to date; False if it cannot be used now (uncommitted changes of ours)."""
        in_tx = db.obj.in_transaction()
        if self.cursor < 0 and not self.asked and SQL_FIRST:
            self.asked = 1  # a one-shot process (a CLI command) asks once: SQL is cheaper than building
            return False
        top = int(_sql("SELECT MAX(id) FROM change")[0][0] or 0)
        stale = self.cursor < 0 or top < self.cursor or time.monotonic() - self.checked > KEEP_SECONDS / 2
        low = max(0, self.cursor - REREAD)
        rows = [] if stale else self._rows(low)
        if not stale:
            present = {r[0] for r in rows}
            stale = any(i not in present for i in self.seen if i > low)  # rolled back or pruned
        new = [r for r in rows if r[0] not in self.seen]
        numbers: set[int] = set()
        for _, pid, kind, jobs in new:
            jobs = json.loads(jobs) if isinstance(jobs, str) else jobs  # stored as JSON text
            if pid is None or (kind in _STRUCTURAL and jobs is None):
                stale = True  # the list of projects changed (ids may be reused) or "many jobs"
            elif kind in _STRUCTURAL:
                numbers.update(int(n) for n in (jobs or ()))
        if in_tx and (stale or numbers):
            return False  # maybe our own uncommitted changes: never cache them
        if in_tx:
            return True  # only non-structural news: the edges are current (cursor not moved)
        if stale or len(numbers) > _PATCH_LIMIT:
            self._build(top)
            return True
        if numbers:
            self._patch(numbers)
        if any(kind == "project" for _, _, kind, _ in new):
            self.members = None  # workspaces may have gone: reload links when asked
            self._masks = {}
        self.cursor = max(self.cursor, top)
        low = max(0, self.cursor - REREAD)
        self.seen = {i for i in self.seen | {r[0] for r in new} if i > low}
        self.checked = time.monotonic()
        return True

    def _build(self, top: int) -> None:
        # The change rows first, then the edges: a change committed in between is
        # both in the edges and read again next time (patching is idempotent).
        low = max(0, top - REREAD)
        seen = {r[0] for r in self._rows(low)}
        p = db.obj.param
        self.ids = dict(_sql(f"SELECT number, id FROM job WHERE project_id = {p}", [self.project_id]))
        up: dict[int, list] = {}
        down: dict[int, list] = {}
        rows = _sql(f"SELECT child_id, parent_id FROM connection WHERE project_id = {p}", [self.project_id])
        for child, parent in rows:
            up.setdefault(child, []).append(parent)
            down.setdefault(parent, []).append(child)
        pairs = np.array(rows, dtype=np.int64).reshape(-1, 2)
        self._edges = (pairs[:, 0].copy(), pairs[:, 1].copy())
        self.up = {k: tuple(v) for k, v in up.items()}
        self.down = {k: tuple(v) for k, v in down.items()}
        self.members, self.ws_of = None, {}
        self.cursor, self.seen, self.checked = top, seen, time.monotonic()
        self._fresh_arrays()

    def _patch(self, numbers: set[int]) -> None:
        """Read again the edges and links of the jobs ``numbers`` (added, removed or reconnected)."""
        p = db.obj.param
        touched = {self.ids[n] for n in numbers if n in self.ids}
        found: dict[int, int] = {}
        for part in _chunks(sorted(numbers)):
            found.update(_sql(f"SELECT number, id FROM job WHERE project_id = {p} AND number IN ({_marks(len(part))})",
                              [self.project_id, *part]))
        for n in numbers:
            if n in found:
                self.ids[n] = found[n]
            else:
                self.ids.pop(n, None)  # deleted
        touched |= set(found.values())
        self._patch_arrays(touched)
        for s in touched:
            for other in self.up.pop(s, ()):
                self._drop(self.down, other, s)
            for other in self.down.pop(s, ()):
                self._drop(self.up, other, s)
        edges = set()
        for part in _chunks(sorted(touched)):
            m = _marks(len(part))
            edges.update(_sql(f"SELECT child_id, parent_id FROM connection WHERE child_id IN ({m})", part))
            edges.update(_sql(f"SELECT child_id, parent_id FROM connection WHERE parent_id IN ({m})", part))
        for child, parent in edges:
            self.up[child] = self.up.get(child, ()) + (parent,)
            self.down[parent] = self.down.get(parent, ()) + (child,)
        if self._edges is not None and touched:  # the same change to the edge arrays
            c, pa = self._edges
            t = np.fromiter(touched, np.int64, len(touched))
            keep = ~(np.isin(c, t) | np.isin(pa, t))
            new = np.array(sorted(edges), dtype=np.int64).reshape(-1, 2)
            self._edges = (np.concatenate([c[keep], new[:, 0]]), np.concatenate([pa[keep], new[:, 1]]))
        if self.members is not None:
            for s in touched:
                for w in self.ws_of.pop(s, ()):
                    self.members.get(w, set()).discard(s)
            for part in _chunks(sorted(touched)):
                for job, ws in _sql(f"SELECT job_id, workspace_id FROM job_workspace WHERE job_id IN "
                                    f"({_marks(len(part))})", part):
                    self.members.setdefault(ws, set()).add(job)
                    self.ws_of.setdefault(job, set()).add(ws)

    @staticmethod
    def _drop(adj: dict, key: int, value: int) -> None:
        rest = tuple(v for v in adj.get(key, ()) if v != value)
        if rest:
            adj[key] = rest
        else:
            adj.pop(key, None)

    def members_of(self, workspace_id: int) -> set[int]:
        if self.members is None:
            members: dict[int, set[int]] = {}
            ws_of: dict[int, set[int]] = {}
            p = db.obj.param
            for job, ws in _sql(f"SELECT jw.job_id, jw.workspace_id FROM job_workspace jw "
                                f"JOIN job j ON j.id = jw.job_id WHERE j.project_id = {p}", [self.project_id]):
                members.setdefault(ws, set()).add(job)
                ws_of.setdefault(job, set()).add(ws)
            self.members, self.ws_of = members, ws_of
            self._masks = {}
        return self.members.get(workspace_id, set())

    # -- walks -----------------------------------------------------------------
    def _fresh_arrays(self) -> None:
        self._nodes = None
        self._lut = None
        self._csrs: dict[bool, tuple] = {}
        self._masks: dict[int, object] = {}

    def _patch_arrays(self, touched: set[int]) -> None:
        """Arrays after a patch: the node list is kept (a deleted job stays a node without edges) and
        extended by new jobs' ids; the adjacency arrays and masks are made again when next needed."""
        nodes = self._nodes
        self._csrs, self._masks, self._lut = {}, {}, None
        if nodes is None or not touched:
            return
        arr = np.fromiter(sorted(touched), np.int64, len(touched))
        pos = np.minimum(np.searchsorted(nodes, arr), nodes.size - 1) if nodes.size else np.zeros(arr.size, int)
        new = arr[nodes[pos] != arr] if nodes.size else arr
        if new.size and (not nodes.size or new[0] > nodes[-1]):
            self._nodes = np.concatenate([nodes, new])  # new jobs have the highest ids: still sorted
        elif new.size:
            self._nodes = None

    def _dense(self):
        """Sorted ids of the project's jobs and edge ends: node ``k`` of the arrays is ``nodes[k]``."""
        if self._nodes is None:
            ids = set(self.ids.values())
            ids.update(self.up)
            ids.update(self.down)
            self._nodes = np.fromiter(sorted(ids), np.int64, len(ids))
        return self._nodes

    def _to_dense(self, ids):
        """Node numbers of job ids that are nodes (a lookup table when the ids are compact)."""
        nodes = self._dense()
        if not nodes.size:
            return np.zeros(ids.size, np.int64)
        lo, hi = int(nodes[0]), int(nodes[-1])
        if hi - lo < 4 * nodes.size + 1024:
            if self._lut is None:
                self._lut = np.full(hi - lo + 1, -1, np.int64)
                self._lut[nodes - lo] = np.arange(nodes.size)
            off = ids - lo
            ok = (off >= 0) & (off <= hi - lo)
            out = np.full(ids.size, -1, np.int64)
            out[ok] = self._lut[off[ok]]
            return out
        return np.searchsorted(nodes, ids)

    def _are_nodes(self, ids) -> bool:
        nodes = self._dense()
        pos = self._to_dense(ids)
        return bool(nodes.size) and bool((pos >= 0).all() and (pos < nodes.size).all()) and \
            bool((nodes[np.clip(pos, 0, nodes.size - 1)] == ids).all())

    def _csr(self, upward: bool):
        got = self._csrs.get(upward)
        if got is None:  # once after each change: a few ms at 100,000 edges
            nodes = self._dense()
            if self._edges is None:
                pairs = [(c, p) for c, ps in self.up.items() for p in ps]
                arr = np.array(pairs, dtype=np.int64).reshape(-1, 2)
                self._edges = (arr[:, 0].copy(), arr[:, 1].copy())
            child, parent = self._edges
            rows, cols = (child, parent) if upward else (parent, child)
            if rows.size and not self._are_nodes(rows) or cols.size and not self._are_nodes(cols):
                self._nodes = self._lut = None  # an edge end the node list missed: list them again
                nodes = self._dense()
            rows = self._to_dense(rows)
            order = np.argsort(rows, kind="stable")
            indptr = np.zeros(nodes.size + 1, np.int64)
            np.cumsum(np.bincount(rows, minlength=nodes.size), out=indptr[1:])
            got = self._csrs[upward] = (indptr, self._to_dense(cols)[order])
        return got

    def _mask(self, ids):
        nodes = self._dense()
        arr = np.fromiter(ids, np.int64, len(ids))
        pos = np.searchsorted(nodes, arr)
        ok = pos < nodes.size
        pos = pos[ok][nodes[pos[ok]] == arr[ok]]
        mask = np.zeros(nodes.size, np.uint8)
        mask[pos] = 1
        return mask

    def _ws_mask(self, workspace_id: int):
        got = self._masks.get(workspace_id)
        if got is None:
            got = self._masks[workspace_id] = self._mask(self.members_of(workspace_id))
        return got

    def _use_arrays(self) -> bool:
        return len(self.up) >= ARRAY_EDGES and _kernels().IMPLEMENTATION == "numba"

    def _keep(self, workspace_id: int | None):
        if workspace_id is not None:
            return self._ws_mask(workspace_id)
        got = self._masks.get(None)
        if got is None:
            got = self._masks[None] = np.ones(self._dense().size, np.uint8)
        return got

    def walk_dense(self, start, upward: bool, keep):
        """:meth:`walk` on the arrays: node numbers (positions in :meth:`_dense`), no Python set."""
        indptr, indices = self._csr(upward)
        return _kernels().reach(indptr, indices, np.nonzero(self._mask(start))[0], keep)

    def walk(self, start, upward: bool, workspace_id: int | None = None, within: set[int] | None = None) -> set[int]:
        """Every job reachable from ``start`` (the start jobs only if on a cycle).

        Only through jobs of ``workspace_id`` and of ``within`` when given.
        """
        if self._use_arrays():
            keep = self._keep(workspace_id)
            if within is not None:
                keep = keep & self._mask(within)
            return set(self._dense()[self.walk_dense(start, upward, keep)].tolist())
        keep = self.members_of(workspace_id) if workspace_id is not None else None
        if within is not None:
            keep = within if keep is None else keep & within
        get = (self.up if upward else self.down).get
        reach: set[int] = set()
        frontier = start
        while frontier:
            # one level at a time, iterated in C
            nxt = set(chain_from(map(get, frontier, repeat(()))))
            nxt -= reach  # the visited set: a cycle ends here
            if keep is not None:
                nxt &= keep
            reach |= nxt
            frontier = nxt
        return reach


def _kernels():
    from ..kernels import graph as kernels  # numba loads only for a big project

    return kernels


def _index(project_id: int) -> _ProjectIndex:
    database = db.obj
    with _registry_lock:
        per_db = _registry.get(database)
        if per_db is None:
            per_db = _registry[database] = {}
        idx = per_db.get(project_id)
        if idx is None:
            idx = per_db[project_id] = _ProjectIndex(project_id)
        return idx


def _projects_of(ids: list[int]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for part in _chunks(sorted(set(ids))):
        for jid, pid in _sql(f"SELECT id, project_id FROM job WHERE id IN ({_marks(len(part))})", part):
            out.setdefault(pid, []).append(jid)
    return out


def closure(start: list[int], upward: bool, workspace_id: int | None = None) -> set[int] | None:
    """Ids reachable from ``start`` (up = towards parents), as the recursive SQL answers; None: use SQL."""
    if not enabled:
        return None
    out: set[int] = set()
    for pid, ids in _projects_of(start).items():
        idx = _index(pid)
        with idx.lock:
            if not idx.current():
                return None
            out |= idx.walk(ids, upward, workspace_id)
    return out


def chain(top: int, bottom: int, workspace_id: int | None = None) -> set[int] | None:
    """Descendants of ``top`` that are ancestors of ``bottom`` or ``bottom`` itself (the SQL's ``down``)."""
    if not enabled:
        return None
    by_project = _projects_of([top, bottom])
    if len(by_project) != 1:
        return set()  # different projects (or a deleted job): no chain
    idx = _index(next(iter(by_project)))
    with idx.lock:
        if not idx.current():
            return None
        if idx._use_arrays():  # all in node numbers: one conversion to ids, at the end
            keep = idx._keep(workspace_id)
            allowed = np.zeros_like(keep)
            allowed[idx.walk_dense([bottom], True, keep)] = 1
            allowed |= idx._mask([bottom])
            got = idx.walk_dense([top], False, allowed & keep)
            return set(idx._dense()[got].tolist())
        allowed = idx.walk([bottom], True, workspace_id) | {bottom}
        return idx.walk([top], False, workspace_id, allowed)


def reaches(start: int, target: int) -> bool | None:
    """Whether ``target`` is a descendant of ``start`` (None: use SQL); no set of all descendants is made."""
    if not enabled:
        return None
    by_project = _projects_of([start, target])
    if len(by_project) != 1:
        return False
    idx = _index(next(iter(by_project)))
    with idx.lock:
        if not idx.current():
            return None
        if idx._use_arrays():
            got = idx.walk_dense([start], False, idx._keep(None))
            return bool(idx._mask([target])[got].any())
        return target in idx.walk([start], False)
