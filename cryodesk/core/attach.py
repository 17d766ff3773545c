"""Attach a project directory: rebuild its database rows from its manifests.

Attach also decides who owns the directory (:mod:`cryodesk.core.ownership`):

* a directory whose lock file names another database is refused, naming it,
  unless ``force`` — which takes it over (the lock then records the previous
  owner);
* a project this database already knows (by the id in its ``project.json``)
  is never attached twice: the same directory is "already attached", a copy
  of it is refused, and a known project found at a new place is pointed
  there by ``project move`` (or ``project unarchive --path``), which keep its
  rows.  With ``force`` a known project whose recorded directory no longer
  holds it is rebuilt from the manifests at the new place, keeping its
  ``P<n>``.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import re
from pathlib import Path

from ..base import hooks
from ..base.errors import DataError, UsageError
from ..base.nofollow import read_regular
from ..db import lock_rows, write_transaction
from ..db.models import (
    JOB_STATUSES,
    Connection,
    Exposure,
    Job,
    JobWorkspace,
    OutputFile,
    Project,
    Session,
    Workspace,
    db,
)
from . import events, manifest, ownership, pending, registry
from .finals import recompute_ancestor_flags
from .projects import _next_number, _refuse_nested, _resolve_dir
from .sessions import params as session_params
from .sessions.service import KINDS, STAGES, STATUSES, TODO_STAGES
from .uids import MAX_NUMBER, parse_uid

_PROJECT_ID = re.compile(r"^[0-9a-f]{32}$")


def _parse_dt(text):
    return _dt.datetime.fromisoformat(text) if text else None


class _Checker:
    """Schema checks of one manifest: every problem is a DataError ``<file>: <field>: <what is wrong>``."""

    def __init__(self, where: Path, advice: str):
        self.where, self.advice = where, advice

    def bad(self, why: str, field: str = "") -> DataError:
        return DataError(f"{self.where}: {field + ': ' if field else ''}{why}; {self.advice}")

    def kind(self, d: dict, key: str, types, default=None, what: str = "", at: str = ""):
        value = d.get(key, default)
        if value is not None and (not isinstance(value, types) or isinstance(value, bool) and bool not in (
                types if isinstance(types, tuple) else (types,))):
            raise self.bad(f"is not {what or getattr(types, '__name__', types)} (it is {_short(value)})", at + key)
        return value

    def count(self, d: dict, key: str, default: int = 1, at: str = "") -> int:
        value = self.kind(d, key, int, default, "a whole number", at)
        if value is None or not 0 <= value <= MAX_NUMBER:
            raise self.bad(f"is {_short(value)}, not a number from 0 to {MAX_NUMBER}", at + key)
        return value

    def date(self, d: dict, key: str, at: str = ""):
        value = self.kind(d, key, str, None, "a date", at)
        try:
            return _parse_dt(value)
        except ValueError:
            raise self.bad(f"is {_short(value)}, not a date (YYYY-MM-DDTHH:MM:SS)", at + key) from None

    def uid(self, value, prefix: str, what: str) -> int:
        try:
            number = parse_uid(value if isinstance(value, str) else "", prefix)
        except UsageError:
            raise self.bad(f"{_short(value)} is not a {prefix}<number> identifier", what) from None
        if value != f"{prefix}{number}":  # "J09" or "j9": two spellings of one job would both attach
            raise self.bad(f"{value!r} is not written as cryodesk writes it ({prefix}{number})", what)
        return number

    def entries(self, d: dict, key: str, required: set[str]) -> list[dict]:
        value = self.kind(d, key, list, [], "a list")
        for n, e in enumerate(value):
            if not isinstance(e, dict):
                raise self.bad(f"is not a mapping (it is {_short(e)})", f"{key}[{n}]")
            missing = sorted(required - set(e))
            if missing:
                raise self.bad(f"lacks {', '.join(missing)}", f"{key}[{n}]")
        return value


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _checked_project_doc(path: Path) -> dict:
    where = path / manifest.PROJECT_MANIFEST
    d = manifest.read_json(where)
    c = _Checker(where, "fix it, then attach again")
    c.kind(d, "title", str)
    c.kind(d, "settings", dict, {}, "a mapping")
    pid = c.kind(d, "id", str, None, "a project id")
    if pid is not None and not _PROJECT_ID.match(pid):
        raise c.bad(f"{_short(pid)} is not a project id (32 hexadecimal digits)", "id")
    c.date(d, "archived_at")
    for key in ("next_job_number", "next_workspace_number", "next_session_number"):
        c.count(d, key)
    _unique(c, [(c.uid(w["uid"], "W", f"workspaces[{n}].uid"), f"workspaces[{n}].uid")
                for n, w in enumerate(c.entries(d, "workspaces", {"uid"}))])
    for n, w in enumerate(d.get("workspaces", [])):
        c.kind(w, "title", str, at=f"workspaces[{n}].")
    _unique(c, [(c.uid(s_["uid"], "S", f"sessions[{n}].uid"), f"sessions[{n}].uid")
                for n, s_ in enumerate(c.entries(d, "sessions", {"uid"}))])
    for n, s_ in enumerate(d.get("sessions", [])):
        c.kind(s_, "title", str, at=f"sessions[{n}].")
        c.kind(s_, "status", str, at=f"sessions[{n}].")
    return d


def _unique(c: _Checker, numbers: list[tuple[int, str]]) -> None:
    seen: dict[int, str] = {}
    for number, field in numbers:
        if number in seen:
            raise c.bad(f"the same identifier as {seen[number]}", field)
        seen[number] = field


def _checked_job_doc(job_dir: Path) -> dict:
    """A job manifest, validated enough that attaching it cannot corrupt the database."""
    where = job_dir / manifest.JOB_MANIFEST
    d = manifest.read_json(where)
    c = _Checker(where, "fix or move that job directory, then attach again")
    bad = c.bad
    if d.get("uid") != job_dir.name:
        raise bad(f"{_short(d.get('uid'))} does not match its directory {job_dir.name}", "uid")
    c.uid(d["uid"], "J", "uid")
    try:
        registry.get(str(d.get("type")))
    except UsageError:
        raise bad(f"unknown job type {_short(d.get('type'))}", "type") from None
    c.kind(d, "params", dict, {}, "a mapping")
    c.kind(d, "settings", dict, {}, "a mapping")
    c.kind(d, "title", str)
    c.kind(d, "error", str)
    c.kind(d, "status_history", list, [], "a list")
    c.kind(d, "workspaces", list, [], "a list")
    c.count(d, "size_bytes", 0)
    if not isinstance(d.get("is_final", False), bool):
        raise bad(f"is {_short(d.get('is_final'))}, not true or false", "is_final")
    status = d.get("status", "building")
    if status not in JOB_STATUSES:
        raise bad(f"unknown status {_short(status)} (one of {', '.join(JOB_STATUSES)})", "status")
    if d.get("is_final") and status != "completed":  # what 'job final' refuses (rules.why_not_mark_final)
        raise bad(f"is true but the job is {status}: only a completed job can be a final result", "is_final")
    for key in ("created_at", "queued_at", "started_at", "completed_at"):
        c.date(d, key)
    for n, i in enumerate(c.entries(d, "inputs", {"slot", "parent", "output"})):
        c.uid(i["parent"], "J", f"inputs[{n}].parent")
        for key in ("slot", "output"):
            c.kind(i, key, str, at=f"inputs[{n}].")
        if i.get("version") is not None:
            c.count(i, "version", 0, at=f"inputs[{n}].")
    for n, o in enumerate(c.entries(d, "outputs", {"group", "kind", "path"})):
        for key in ("group", "kind", "path"):
            if not isinstance(o[key], str) or not o[key]:
                raise bad(f"is {_short(o[key])}, not a name", f"outputs[{n}].{key}")
        why = _outside_job(o["path"], job_dir.name)
        if why:
            raise bad(why, f"outputs[{n}].path")
        c.count(o, "version", 0, at=f"outputs[{n}].")
        c.count(o, "size_bytes", 0, at=f"outputs[{n}].")
    return d


def _outside_job(rel: str, uid: str) -> str | None:
    """Why the output path ``rel`` is not a file inside the job's own directory (None: it is)."""
    parts = rel.split("/")
    if "\0" in rel or rel.startswith("/") or parts[0] != uid or len(parts) < 2 or \
            any(p in ("", ".", "..") for p in parts[1:]):
        return (f"{_short(rel)} is not a file inside {uid}/ (cleanup and clear would act on what it names "
                "outside the job's directory)")
    return None


def _check_graph(path: Path, job_docs: list[dict]) -> None:
    """Refuse a set of job manifests whose inputs form a cycle (a job that is its own input, or a loop).

    Every DAG walk assumes none; a cycle in the database made the cleanup planner loop forever.
    """
    parents = {d["uid"]: [i["parent"] for i in d.get("inputs", [])] for d in job_docs}
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for start in sorted(parents, key=lambda u: int(u[1:])):
        if state.get(start):
            continue
        stack = [(start, iter(parents[start]))]
        state[start] = 1
        while stack:
            uid, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[uid] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                on_path = [u for u, _ in stack]
                loop = on_path[on_path.index(nxt):] + [nxt]  # loop[i] reads loop[i + 1]
                # blame the edge to the same or a newer job: a job is made after those it reads, so that
                # one is the crafted (or damaged) input
                child, parent = next(((a, b) for a, b in zip(loop, loop[1:]) if int(b[1:]) >= int(a[1:])),
                                     (uid, nxt))
                pos = parents[child].index(parent)
                raise DataError(f"{path / child / manifest.JOB_MANIFEST}: inputs[{pos}].parent: {child} reads "
                                f"from {parent}, which closes a cycle ({' <- '.join(loop)}); job inputs must not "
                                "loop; remove that input (or move that job directory away), then attach again")
            elif nxt in parents and not state.get(nxt):
                state[nxt] = 1
                stack.append((nxt, iter(parents[nxt])))


def _checked_session_doc(sdir: Path) -> dict:
    """A session manifest (``S<n>/session.json``), validated so that attaching it cannot corrupt the database,
    nor make anything later write or delete outside ``S<n>/`` (outputs) — movies are references only."""
    where = sdir / manifest.SESSION_MANIFEST
    c = _Checker(where, "fix or remove it, then attach again")
    try:
        d = json.loads(read_regular(where))
    except (OSError, DataError) as exc:
        raise c.bad(f"cannot be read ({getattr(exc, 'strerror', None) or exc})") from None
    except ValueError as exc:
        raise c.bad(f"is not valid JSON ({exc})") from None
    if not isinstance(d, dict):
        raise c.bad("is not a JSON object")
    if d.get("uid") != sdir.name:
        raise c.bad(f"uid {d.get('uid')!r} does not match its directory {sdir.name}")
    c.uid(d["uid"], "S", "uid")
    c.kind(d, "title", str)
    c.kind(d, "error", str)
    c.count(d, "size_bytes", 0)
    c.date(d, "created_at")
    if d.get("status", "paused") not in STATUSES:
        raise c.bad(f"unknown status {d.get('status')!r} (one of {', '.join(STATUSES)})")
    lane = c.kind(d, "lane", str, "local")
    if not lane or len(lane) > 64:
        raise c.bad(f"lane {lane!r} is not a lane name")
    why = session_params.problem(d.get("params", {}))
    if why:
        raise c.bad(why)
    prefix = f"{sdir.name}/"
    numbers, movies = set(), set()
    for e in c.entries(d, "exposures", {"uid", "movie"}):
        number = c.uid(e["uid"], "E", "exposure")
        if number in numbers:
            raise c.bad(f"exposure {e['uid']} appears twice")
        numbers.add(number)
        movie = e["movie"]
        if not isinstance(movie, str) or not movie.startswith("/") or "\0" in movie:
            raise c.bad(f"{e['uid']}: movie {movie!r} is not an absolute path")
        if movie in movies:
            raise c.bad(f"{e['uid']}: movie {movie} belongs to two exposures")
        movies.add(movie)
        c.count(e, "movie_bytes", 0)
        if e.get("stage", "found") not in STAGES:
            raise c.bad(f"{e['uid']}: unknown stage {e.get('stage')!r}")
        if e.get("failed_stage") is not None and e["failed_stage"] not in TODO_STAGES:
            raise c.bad(f"{e['uid']}: unknown failed_stage {e['failed_stage']!r}")
        if e.get("manual_status") not in (None, "accept", "reject"):
            raise c.bad(f"{e['uid']}: manual_status {e['manual_status']!r} is not accept, reject or null")
        c.kind(e, "error", str)
        _check_results(c, e["uid"], c.kind(e, "results", dict, {}, "a mapping") or {})
        c.date(e, "found_at")
        c.date(e, "ready_at")
        for kind, out in c.kind(e, "outputs", dict, {}, "a mapping").items():
            rel = out.get("path") if isinstance(out, dict) else None
            parts = rel.split("/") if isinstance(rel, str) else []
            if kind not in KINDS or not rel or not rel.startswith(prefix) or \
                    any(p in ("", ".", "..") for p in parts) or "\0" in rel:
                raise c.bad(f"{e['uid']}: output {kind!r} {out!r} is not a file inside {sdir.name}/")
            c.count(out, "bytes", 0)
        for key, width in (("picks", 3), ("manual_picks", 2)):
            picks = e.get(key, None if key == "picks" else [])
            if picks is None and key == "picks":
                continue
            if not isinstance(picks, list) or not all(
                    isinstance(p, list) and len(p) == width and all(
                        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in p)
                    for p in picks):
                raise c.bad(f"{e['uid']}: {key} is not a list of [{'x, y, score' if width == 3 else 'x, y'}]")
    return d


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _check_results(c: _Checker, uid: str, r: dict) -> None:
    """The results the session's views and thresholds read (CTF fit, particle count, micrograph shape)."""
    ctf = r.get("ctf")
    if ctf is not None and not (isinstance(ctf, dict) and all(_finite(ctf.get(k)) for k in
                                                             ("df1_A", "df2_A", "cross_corr"))):
        raise c.bad(f"{uid}: results.ctf {ctf!r} lacks numbers df1_A, df2_A and cross_corr")
    n = r.get("n_particles")
    if n is not None and not (isinstance(n, int) and not isinstance(n, bool) and n >= 0):
        raise c.bad(f"{uid}: results.n_particles {n!r} is not a whole number")
    shape = r.get("shape")
    if shape is not None and not (isinstance(shape, list) and len(shape) >= 2 and all(
            isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in shape)):
        raise c.bad(f"{uid}: results.shape {shape!r} is not a list of pixel counts")


def _session_docs(path: Path, doc: dict) -> dict[str, dict]:
    """The session manifests of the sessions ``project.json`` lists (a session without one keeps its entry)."""
    out = {}
    for s in doc.get("sessions", []):
        sdir = path / s["uid"]
        if sdir.is_dir() and not sdir.is_symlink() and os.path.lexists(sdir / manifest.SESSION_MANIFEST):
            out[s["uid"]] = _checked_session_doc(sdir)
    return out


def _same_project(path: Path, pid: str) -> bool:
    """Whether ``path`` holds the project with id ``pid`` now."""
    try:
        return manifest.read_json(path / manifest.PROJECT_MANIFEST).get("id") == pid
    except DataError:
        return False


def attach_project(directory: str | Path, force: bool = False) -> Project:
    """Re-create a project's database rows from its manifests (``project.json`` + ``J*/job.json``).

    The project gets a new ``P<n>`` in this database (or keeps its number
    when ``force`` rebuilds one this database knows); workspace, job and
    session numbers are kept, so every connection and path stays valid.  See
    the module doc for ownership and duplicates.
    """
    path = _resolve_dir(directory)
    doc = _checked_project_doc(path)
    job_docs = []
    for job_dir in sorted(path.glob("J*")):
        if job_dir.is_dir() and not job_dir.is_symlink() and (job_dir / manifest.JOB_MANIFEST).exists():
            job_docs.append(_checked_job_doc(job_dir))
    _check_graph(path, job_docs)
    session_docs = _session_docs(path, doc)
    with ownership.claiming(path):  # two attaches of one directory at once: the second sees the first's lock
        return _attach_locked(path, doc, job_docs, force, session_docs)


def _attach_locked(path: Path, doc: dict, job_docs: list[dict], force: bool,
                   session_docs: dict[str, dict] | None = None) -> Project:
    aside = None
    try:
        lock = ownership.read_lock(path)
    except ownership.UnreadableLock:
        if not force:
            raise
        # --force: the user takes the directory over whoever the damaged lock meant; it is kept to look at
        lock, aside = None, ownership.set_aside_lock(path)
    try:
        project = _attach_checked(path, doc, job_docs, force, session_docs, lock, aside is not None)
    except BaseException:
        if aside is not None:
            ownership.put_back_lock(path, aside)
        raise
    if aside is not None:
        project.taken_over_from = {"label": "an unreadable lock file", "database": None, "uid": None,
                                   "unreadable_lock": str(aside)}
    return project


def _attach_checked(path: Path, doc: dict, job_docs: list[dict], force: bool, session_docs, lock,
                    unreadable: bool = False) -> Project:
    hooks.point("attach.lock_read", path=str(path), lock=lock)
    pid = doc.get("id") or (lock or {}).get("project") or manifest.new_project_id()
    if lock is not None and lock.get("project") and doc.get("id") and lock["project"] != doc["id"]:
        raise DataError(f"{ownership.lock_path(path)} names project {lock['project'][:8]} but {path} holds "
                        f"project {doc['id'][:8]}; fix or remove the lock file, then attach again")
    replace = _known(path, pid, lock, force, unreadable)
    if lock is not None and not ownership.is_ours(lock) and not force:
        raise ownership.NotOwned(
            f"{path} is owned by another database: {ownership.describe(lock)}. Detach it there first "
            f"('cryodesk project detach {lock.get('uid') or 'P?'}'), or take it over here with "
            f"'cryodesk project attach {path} --force'")
    _refuse_nested(path, exclude=replace)
    wrote_lock = []
    try:
        project = _rebuild(path, doc, job_docs, pid, lock, replace, wrote_lock, session_docs or {})
    except BaseException:
        if wrote_lock:  # the rows rolled back: the directory is again whoever's it was
            ownership.restore_lock(path, lock)
        raise
    project.taken_over_from = lock if lock is not None and not ownership.is_ours(lock) else None
    return project


def _rebuild(path: Path, doc: dict, job_docs: list[dict], pid: str, lock: dict | None, replace, wrote_lock,
             session_docs: dict[str, dict]):
    # a write that was interrupted may have left a manifest without the final flag its database had:
    # err on the side that never deletes (core.pending) — a job a left record shows final stays final
    unsure, unsure_final = pending.uncertain(path), pending.uncertain_finals(path)
    with write_transaction():
        number = _next_number(Project)
        if replace is not None:
            lock_rows(Project, [replace.id])
            number = replace.number
            Project.delete().where(Project.id == replace.id).execute()  # its stale rows go (cascade)
        project = Project.create(
            number=number,
            title=doc.get("title") or path.name,
            directory=str(path),
            uuid=pid,
            archived_at=_parse_dt(doc.get("archived_at")),
            settings=doc.get("settings") or {},
            next_job_number=doc.get("next_job_number", 1),
            next_workspace_number=doc.get("next_workspace_number", 1),
            next_session_number=doc.get("next_session_number", 1),
        )
        workspaces = {}
        for w in doc.get("workspaces", []):
            ws = Workspace.create(project=project, number=parse_uid(w["uid"], "W"), title=w.get("title", ""))
            workspaces[w["uid"]] = ws
        for s in doc.get("sessions", []):
            _create_session(project, s, session_docs.get(s["uid"]))
        top = max([parse_uid(s["uid"], "S") for s in doc.get("sessions", [])], default=0)
        if project.next_session_number <= top:
            project.next_session_number = top + 1
            project.save()
        jobs = {}
        for d in job_docs:
            try:
                job = Job.create(
                    project=project, number=parse_uid(d["uid"], "J"), type=d["type"], title=d.get("title", ""),
                    status=d.get("status", "building"), params=d.get("params") or {},
                    settings=d.get("settings") or {},
                    size_bytes=d.get("size_bytes", 0), is_final=bool(d.get("is_final")) or d["uid"] in unsure_final,
                    error=d.get("error"), status_history=d.get("status_history") or [],
                    created_at=_parse_dt(d.get("created_at")) or _dt.datetime.utcnow(),
                    queued_at=_parse_dt(d.get("queued_at")), started_at=_parse_dt(d.get("started_at")),
                    completed_at=_parse_dt(d.get("completed_at")),
                )
            except KeyError as exc:
                raise DataError(f"job manifest for {d.get('uid', '?')} lacks {exc}") from None
            jobs[d["uid"]] = job
            for wuid in d.get("workspaces", []):
                if wuid in workspaces:
                    JobWorkspace.create(job=job, workspace=workspaces[wuid])
            for o in d.get("outputs", []):
                OutputFile.create(job=job, group=o["group"], kind=o["kind"], version=o.get("version", 0),
                                  path=o["path"], size_bytes=o.get("size_bytes", 0))
        for d in job_docs:
            for pos, c in enumerate(d.get("inputs", [])):
                parent = jobs.get(c["parent"])
                if parent is None:
                    raise DataError(f"{d['uid']} reads from {c['parent']}, which is not in {path}")
                Connection.create(project=project, child=jobs[d["uid"]], slot=c["slot"], parent=parent,
                                  output=c["output"], version=c.get("version"), position=pos)
        top = max([j.number for j in jobs.values()], default=0)
        if project.next_job_number <= top:
            project.next_job_number = top + 1
            project.save()
        recompute_ancestor_flags(project, write_manifests=False)
        # this database owns the directory before the rows commit (a lock that cannot be written: nothing attached)
        taken = lock is not None and not ownership.is_ours(lock)
        ownership.write_lock(path, pid, project.uid, "taken over" if taken else "attached",
                             previous=lock if taken else None)
        wrote_lock.append(True)
        if unsure:  # the uncertain manifests now say what this database holds; the records are done with
            manifest.write_jobs([j for u, j in jobs.items() if u in unsure], path)
            db.obj.after_commit(lambda: pending.clear_records(path))
        if doc.get("id") != pid:  # a project from before project ids: it gets one
            manifest.write_project(project, check_owner=False)
        events.record(None, "projects")
        if replace is not None:
            events.record(replace.id, "project")
    return project


def _create_session(project: Project, entry: dict, d: dict | None) -> Session:
    """A session's rows from its ``session.json`` (exactly as they were), or from its ``project.json`` entry."""
    number = parse_uid(entry["uid"], "S")
    if d is None:  # a project written before session manifests: only what project.json knew
        return Session.create(project=project, number=number, title=entry.get("title", ""),
                              status=entry.get("status", "paused"))
    session = Session.create(
        project=project, number=number, title=d.get("title", ""), status=d.get("status", "paused"),
        params=d.get("params") or {}, lane=d.get("lane") or "local", error=d.get("error"),
        size_bytes=d.get("size_bytes", 0), created_at=_parse_dt(d.get("created_at")) or _dt.datetime.utcnow(),
    )
    rows = [
        {"session": session.id, "number": parse_uid(e["uid"], "E"), "movie": e["movie"],
         "movie_bytes": e.get("movie_bytes", 0), "stage": e.get("stage", "found"),
         "failed_stage": e.get("failed_stage"), "error": e.get("error"), "outputs": e.get("outputs") or {},
         "results": e.get("results") or {}, "picks": e.get("picks"), "manual_picks": e.get("manual_picks") or [],
         "manual_status": e.get("manual_status"),
         "found_at": _parse_dt(e.get("found_at")) or _dt.datetime.utcnow(), "ready_at": _parse_dt(e.get("ready_at"))}
        for e in d.get("exposures", [])
    ]
    for i in range(0, len(rows), 200):
        Exposure.insert_many(rows[i:i + 200]).execute()
    return session


def _known(path: Path, pid: str, lock: dict | None, force: bool, unreadable: bool = False) -> Project | None:
    """The row to rebuild (``force`` only), or None for a new project; refuses duplicates.

    ``unreadable``: the lock file was damaged (set aside by ``--force``): who changed the project
    since cannot be told, so the rows of it this database has are rebuilt from its manifests too.
    """
    here = Project.get_or_none(Project.directory == str(path))
    known = Project.get_or_none(Project.uuid == pid)
    if here is not None and (known is None or known.id == here.id):
        if force and (unreadable or (lock is not None and not ownership.is_ours(lock))):
            return here  # our rows of it are stale: the other database changed it since
        raise UsageError(f"{path} is already attached to this database as {here.uid}")
    if here is not None:
        raise UsageError(f"{path} is recorded as {here.uid} of this database, but holds {known.uid}; "
                         "nothing was attached")
    if known is None:
        return None
    old = Path(known.directory)
    if old != path and _same_project(old, pid):
        raise UsageError(f"{path} is a copy of {known.uid}, which this database has at {old}; attaching it "
                         "would make a duplicate (nothing was attached)")
    if force:
        return known
    hint = (f"'cryodesk project unarchive {known.uid} --path {path}'" if known.archived_at is not None
            else f"'cryodesk project move {known.uid} {path}' (it finds it already moved and keeps its rows)")
    raise UsageError(f"{path} is {known.uid} of this database, recorded at {old}; it is not attached twice. "
                     f"To point {known.uid} at its new place: {hint}")
