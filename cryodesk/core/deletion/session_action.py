"""The ``compact_session`` action: remove a completed live session's preprocessing data.

One item per session (``job`` is the session's uid, ``S<n>``); its paths are
the micrographs, thumbnails, CTF spectra and particle stacks its exposures
recorded under ``S<n>/``.  The rule rechecked at apply time, in the write
transaction that holds the project's row:

* every path lies inside ``S<n>/`` (no ``..``, no symlinked session directory)
  and is a recorded output of one of the session's exposures — never a movie,
  never the session's picks, parameters or metadata (those are rows);
* the session is still being compacted (``compacting``: made so by
  :func:`cryodesk.core.sessions.compaction.compact` while it holds the
  session's runner lock, so no runner writes meanwhile).

Applying it marks every exposure *compacted* (its picks, manual picks, CTF
fit and results stay) and the session *compacted*.
"""

from __future__ import annotations

from pathlib import Path

from ...db.models import Exposure, Session
from .. import events
from ..fsutil import check_session_dir
from ..sizes import job_size
from .actions import Action, register
from .plan import SESSION_UID, path_problem


class CompactSession(Action):
    name = "compact_session"
    uid_pattern = SESSION_UID

    def target(self, project, uid):
        return Session.get_or_none((Session.project == project) & (Session.number == int(uid[1:])))

    def directory(self, project_dir: Path, uid: str) -> Path:
        return check_session_dir(project_dir, uid)

    def locked_job_ids(self, target) -> list[int]:
        return []  # the project's row is locked: every session write takes it

    def check(self, project, session, item):
        why = path_problem(item, False, SESSION_UID)
        if why:
            return why
        if session.status != "compacting":
            return f"it is {session.status} now (compaction needs a completed session)"
        recorded = set()
        for (outputs,) in Exposure.select(Exposure.outputs).where(Exposure.session == session.id).tuples():
            recorded.update(v["path"] for v in (outputs or {}).values() if isinstance(v, dict) and "path" in v)
        for rel in item.paths:
            if rel not in recorded:
                return f"{rel} is not a recorded output of an exposure of {session.uid}"
        return None

    def apply(self, project, session, item):
        removed = set(item.paths)
        for e in Exposure.select().where(Exposure.session == session.id):
            kept, gone = {}, {}
            for kind, out in (e.outputs or {}).items():
                (gone if out.get("path") in removed else kept)[kind] = out
            results = dict(e.results or {})
            results["compacted_outputs"] = {**results.get("compacted_outputs", {}), **gone}
            Exposure.update(outputs=kept, results=results, stage="compacted", failed_stage=None, error=None) \
                .where(Exposure.id == e.id).execute()
        size = job_size(Path(project.directory) / session.directory)
        Session.update(status="compacted", size_bytes=size, error=None).where(Session.id == session.id).execute()
        events.record(project, "project")


class DiscardSessionTemp(CompactSession):
    """Remove the unfinished writes a killed runner left in ``S<n>/`` (cryodesk's own temp names only).

    Planned by a runner as it starts, while it holds the session's runner
    lock (so no other runner's writes are live); never a recorded output.
    """

    name = "discard_session_temp"

    def check(self, project, session, item):
        from ...base.fsio import own_temp_target

        why = path_problem(item, False, SESSION_UID)
        if why:
            return why
        recorded = set()
        for (outputs,) in Exposure.select(Exposure.outputs).where(Exposure.session == session.id).tuples():
            recorded.update(v.get("path") for v in (outputs or {}).values() if isinstance(v, dict))
        for rel in item.paths:
            if own_temp_target(rel.rsplit("/", 1)[-1]) is None:
                return f"{rel} is not a temp file of cryodesk"
            if rel in recorded:
                return f"{rel} is a recorded output of an exposure of {session.uid}"
        return None

    def apply(self, project, session, item):
        size = job_size(Path(project.directory) / session.directory)
        Session.update(size_bytes=size).where(Session.id == session.id).execute()


register(CompactSession())
register(DiscardSessionTemp())
