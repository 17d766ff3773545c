"""On-disk manifests that make a project directory self-contained.

``<project>/project.json`` holds the project, its workspaces and sessions;
``<project>/J<n>/job.json`` holds one job: type, params, inputs (connections),
outputs (files with versions and sizes), status, flags and workspaces.  From
these :func:`cryodesk.core.attach.attach_project` rebuilds the database
rows of a project in a fresh database.  Writes are atomic (temp + rename) so
a crash never leaves a half-written manifest.

``project.json`` also carries the project's own id (``id``: attach recognises
a project it already knows by it) and, while it is archived, ``archived_at``.
A manifest is written only into a directory this database owns
(:mod:`cryodesk.core.ownership`): a project made before lock files existed is
adopted by its first write (:func:`ensure_owned`), one owned by another
database is refused.
"""

from __future__ import annotations

import json
import os
import uuid as _uuid
from pathlib import Path

from ..base.errors import DataError
from ..base.fsio import atomic_write, own_temp_target, remove_own_temp
from ..base.nofollow import read_regular
from ..db.models import Connection, Exposure, Job, JobWorkspace, OutputFile, Project, Session, Workspace
from . import ownership, pending
from .sizes import record_size, size_without_manifest

PROJECT_MANIFEST = "project.json"
JOB_MANIFEST = "job.json"
SESSION_MANIFEST = "session.json"  # in S<n>/: a live session, its parameters and every exposure
FORMAT = 1


def read_json(path: Path) -> dict:
    try:
        data = json.loads(read_regular(path))  # a FIFO there would block open() forever (issue 20)
    except FileNotFoundError:
        raise DataError(f"manifest not found: {path}") from None
    except RecursionError:
        raise DataError(f"manifest {path} is unreadable: nested too deeply") from None
    except (OSError, ValueError) as exc:
        raise DataError(f"manifest {path} is unreadable: {getattr(exc, 'strerror', None) or exc}") from None
    if not isinstance(data, dict):
        raise DataError(f"manifest {path} is not a JSON object")
    return data


def _iso(dt) -> str | None:
    return dt.isoformat() if dt is not None else None


def project_document(project: Project) -> dict:
    return {
        "format": FORMAT,
        "uid": project.uid,
        "id": project.uuid,
        "archived_at": _iso(project.archived_at),
        "title": project.title,
        "created_at": _iso(project.created_at),
        "next_job_number": project.next_job_number,
        "next_workspace_number": project.next_workspace_number,
        "next_session_number": project.next_session_number,
        "settings": project.settings or {},
        "workspaces": [
            {"uid": w.uid, "title": w.title, "created_at": _iso(w.created_at)}
            for w in Workspace.select().where(Workspace.project == project).order_by(Workspace.number)
        ],
        "sessions": [
            {"uid": s.uid, "title": s.title, "status": s.status, "created_at": _iso(s.created_at)}
            for s in project.sessions
        ],
    }


def job_document(job: Job) -> dict:
    inputs = [
        {"slot": c.slot, "parent": f"J{c.parent.number}", "output": c.output, "version": c.version}
        for c in Connection.select(Connection, Job)
        .join(Job, on=(Connection.parent == Job.id))
        .where(Connection.child == job)
        .order_by(Connection.slot, Connection.position)
    ]
    outputs = [  # (rows as tuples: an imported particle set has an output per stack, thousands)
        {"group": g, "kind": k, "version": v, "path": p, "size_bytes": b}
        for g, k, v, p, b in OutputFile.select(OutputFile.group, OutputFile.kind, OutputFile.version, OutputFile.path,
                                               OutputFile.size_bytes)
        .where(OutputFile.job == job).order_by(OutputFile.group, OutputFile.version, OutputFile.id).tuples()
    ]
    workspaces = [
        f"W{w.number}"
        for w in Workspace.select(Workspace.number).join(JobWorkspace).where(JobWorkspace.job == job).order_by(Workspace.number)
    ]
    return {
        "format": FORMAT,
        "uid": job.uid,
        "type": job.type,
        "title": job.title,
        "status": job.status,
        "params": job.params,
        "settings": job.settings or {},  # the user's per-job overrides (base.settings "job" level)
        "inputs": inputs,
        "outputs": outputs,
        "workspaces": workspaces,
        "is_final": job.is_final,
        "is_ancestor_of_final": job.is_ancestor_of_final,
        "size_bytes": job.size_bytes,
        "error": job.error,
        "status_history": job.status_history or [],
        "created_at": _iso(job.created_at),
        "queued_at": _iso(job.queued_at),
        "started_at": _iso(job.started_at),
        "completed_at": _iso(job.completed_at),
    }


def session_document(session: Session) -> dict:
    """Everything a live session's rows hold: parameters, status, lane, thresholds, and every exposure
    (movie reference, stage, outputs with sizes, results, automatic and manual picks, manual accept/reject)."""
    exposures = [
        {"uid": e.uid, "movie": e.movie, "movie_bytes": e.movie_bytes, "stage": e.stage,
         "failed_stage": e.failed_stage, "error": e.error, "outputs": e.outputs or {}, "results": e.results or {},
         "picks": e.picks, "manual_picks": e.manual_picks or [], "manual_status": e.manual_status,
         "found_at": _iso(e.found_at), "ready_at": _iso(e.ready_at)}
        for e in Exposure.select().where(Exposure.session == session.id).order_by(Exposure.number)
    ]
    return {
        "format": FORMAT,
        "uid": session.uid,
        "title": session.title,
        "status": session.status,
        "params": session.params or {},
        "lane": session.lane,
        "error": session.error,
        "size_bytes": session.size_bytes,
        "created_at": _iso(session.created_at),
        "exposures": exposures,
    }


# -- ownership -------------------------------------------------------------------------

def new_project_id() -> str:
    return _uuid.uuid4().hex


def owner_refusal(project: Project) -> str | None:
    """Why this database may not write ``project``'s directory (None: it may; a project without a lock is adopted).

    A directory that is missing or holds no ``project.json`` is not judged
    here: the write itself says "is its disk mounted?".
    """
    pdir = Path(project.directory)
    lock = ownership.read_lock(pdir)
    if lock is None:
        if not (pdir / PROJECT_MANIFEST).is_file() or pdir.is_symlink():
            return None
        full = Project.get_by_id(project.id)  # (the caller's may hold only some columns)
        ensure_owned(full)
        project.uuid = full.uuid
        lock = ownership.read_lock(pdir)
        if lock is None:
            return None
    why = ownership.problem(project, lock)
    if why is None and not project.uuid and lock.get("project"):
        _set_uuid(project, lock["project"])  # adopted before, by a process that died before recording it
    return why


def ensure_owned(project: Project) -> None:
    """Adopt a project made before lock files: give it an id (kept in project.json) and write its lock.

    Only for a directory without a lock file; the caller checked that.
    """
    pdir = Path(project.directory)
    with ownership.claiming(pdir):
        if ownership.read_lock(pdir) is not None:
            return  # another process (of this database or another) wrote it meanwhile: judged again by the caller
        _adopt(project, pdir)


def _adopt(project: Project, pdir: Path) -> None:
    pid = project.uuid
    if not pid:
        try:
            doc_id = read_json(pdir / PROJECT_MANIFEST).get("id")
        except DataError:
            doc_id = None
        pid = doc_id if isinstance(doc_id, str) and len(doc_id) == 32 else new_project_id()
    ownership.write_lock(pdir, pid, project.uid, "adopted")
    if project.uuid != pid:
        _set_uuid(project, pid)
    _write(pdir / PROJECT_MANIFEST, project_document(project))


def _set_uuid(project: Project, pid: str) -> None:
    Project.update(uuid=pid).where(Project.id == project.id).execute()
    project.uuid = pid


def _require_owned(base: Path, project: Project | None = None) -> None:
    """Refuse a manifest write into a directory another database owns (adopting an unlocked one)."""
    lock = ownership.read_lock(base)
    if lock is None:
        if project is None:
            project = Project.get_or_none(Project.directory == str(base))
        if project is None or not (base / PROJECT_MANIFEST).is_file():
            return
        ensure_owned(project)
        lock = ownership.read_lock(base)  # (another process may have adopted it first)
        if lock is None:
            return
    if not ownership.is_ours(lock):
        if project is None:
            project = Project.get_or_none(Project.directory == str(base))
        uid = project.uid if project is not None else str(base)
        raise ownership.NotOwned(f"{uid} is owned by another database: {ownership.describe(lock)}; "
                                 f"cryodesk writes nothing into {base} from this database")


# -- writing ------------------------------------------------------------------------------

def _foreign_kind(base: Path) -> str | None:
    """The kind of the project at ``base`` when it is another program's (issue 16), else None."""
    kind = Project.select(Project.kind).where(Project.directory == str(base)).scalar()
    return kind if kind and kind != "cryodesk" else None


def _write_foreign(kind: str, base: Path) -> None:
    """Another program's project: its own files are never rewritten; cryodesk's record is its state file."""
    if kind != "relion":
        raise DataError(f"{base} is managed by {'CryoSPARC' if kind == 'cryosparc' else kind} — read-only: "
                        "cryodesk writes nothing into it")
    from .foreign import relion_state

    finals = Job.select(Job.path).join(Project).where((Project.directory == str(base)) & Job.is_final)
    relion_state.write_finals(base, [p for (p,) in finals.tuples() if p])


def write_project(project: Project, check_owner: bool = True, _record: bool = True) -> None:
    """Rewrite ``project.json`` (the directory must exist: it is never recreated here).

    Like every manifest write, recorded first (:mod:`cryodesk.core.pending`) until the database commits.
    """
    pdir = Path(project.directory)
    kind = _foreign_kind(pdir)
    if kind:
        _write_foreign(kind, pdir)
        return
    if not pdir.is_dir():
        raise DataError(f"project directory {pdir} is missing: is its disk mounted?")
    if check_owner:
        _require_owned(pdir, project)
    rec = pending.begin(pdir, [pending.PROJECT]) if _record else None
    try:
        _write(pdir / PROJECT_MANIFEST, project_document(project))
    except BaseException:
        pending.abandon(rec)
        raise
    pending.done(rec)


def write_job(job: Job, project_dir: Path | None = None, durable: bool = True, _record: bool = True) -> None:
    """Rewrite ``job.json``; recorded first (:mod:`cryodesk.core.pending`) until the database commits."""
    base = Path(project_dir) if project_dir is not None else Path(job.project.directory)
    kind = _foreign_kind(base)
    if kind:  # (RELION: the final flags go to cryodesk's state file; the job's size is measured)
        _write_foreign(kind, base)
        from .sizes import job_size

        record_size(job, job_size(base / job.directory))
        return
    if (base / PROJECT_MANIFEST).is_file():
        _require_owned(base)
    job_dir = _item_dir(base, job.directory, job.uid, "job")
    pdir = base
    try:
        before = (job_dir / JOB_MANIFEST).lstat().st_size
    except OSError:
        before = None
    # job.json is part of the job's size (du -sb) and records that size: the number written is the
    # size the job has once this very file is in place, and the database gets the same number
    base = size_without_manifest(job, job_dir, before)
    doc = job_document(job)
    rec = pending.begin(pdir, [job.uid], [job.uid] if job.is_final else [], durable) if _record else None
    try:
        size = _write_sized(job_dir / JOB_MANIFEST, doc, base, durable)
    except BaseException:
        pending.abandon(rec)
        raise
    pending.done(rec)
    # no write when the size did not change (the same length): most rewrites take no job row lock
    record_size(job, size, unchanged=before is not None and size == base + before)


def write_session(session: Session, project_dir: Path, durable: bool = True) -> None:
    """Write ``S<n>/session.json`` (atomically; only into a directory this database owns, never via a symlink)."""
    base = Path(project_dir)
    if _foreign_kind(base):
        return  # another program's project has no cryodesk sessions
    if (base / PROJECT_MANIFEST).is_file():
        _require_owned(base)
    sdir = _item_dir(base, session.directory, session.uid, "session")
    from .sizes import job_size

    # session.json is part of S<n>/'s size (du -sb) and records that size, as job.json does for a job
    try:
        before = (sdir / SESSION_MANIFEST).lstat().st_size
    except OSError:
        before = 0
    size = _write_sized(sdir / SESSION_MANIFEST, session_document(session), max(0, job_size(sdir) - before), durable)
    if size != session.size_bytes:
        Session.update(size_bytes=size).where(Session.id == session.id).execute()
        session.size_bytes = size


def write_sessions(project: Project, project_dir: Path) -> int:
    """Write every session manifest of ``project`` (no fsync each); returns how many."""
    rows = list(Session.select().where(Session.project == project.id).order_by(Session.number))
    for s in rows:
        write_session(s, project_dir, durable=False)
    return len(rows)


def _item_dir(base: Path, rel: str, uid: str, what: str) -> Path:
    """A job's or session's own directory, never through a symlink; remade if removed by hand."""
    d = base / rel
    if d.is_symlink():
        raise DataError(f"{uid}: {what} directory {d} is a symlink; refusing to write into it")
    if not d.is_dir():
        from .fsutil import require_project_dir

        require_project_dir(base)  # a missing project is an error; an item directory removed by hand is remade
        d.mkdir()
    return d


def _write_sized(path: Path, doc: dict, base: int, durable: bool) -> int:
    """Write the manifest ``doc`` at ``path`` with ``doc["size_bytes"]`` = ``base`` + its own length; returns it."""
    # Encoded once (a job with thousands of outputs takes a tenth of a second a dump): only the number's
    # digits change the length.  The top-level key is the one line starting with exactly one space of
    # indent (nested keys have more; a newline inside a string is escaped), and it is never the last key.
    doc["size_bytes"] = 0
    text = _dumps(doc)
    head, sep, tail = text.partition('\n "size_bytes": 0,\n')
    if not sep:  # (cannot happen with the documents written here; kept exact anyway)
        return _write_sized_slow(path, doc, base, durable)
    fixed = len(head.encode()) + len(tail.encode()) + len('\n "size_bytes": ,\n')
    size = base + fixed + 1
    for _ in range(8):  # the length grows with the number's digits: a fixed point in 1-2 steps
        if base + fixed + len(str(size)) == size:
            break
        size = base + fixed + len(str(size))
    doc["size_bytes"] = size
    text = f'{head}\n "size_bytes": {size},\n{tail}'
    _write(path, doc, durable, text)
    return size


def _write_sized_slow(path: Path, doc: dict, base: int, durable: bool) -> int:
    size, text = base, ""
    for _ in range(8):  # the text's length grows with the number's digits: a fixed point in 2-3 steps
        doc["size_bytes"] = size
        text = _dumps(doc)
        if base + len(text.encode()) == size:
            break
        size = base + len(text.encode())
    _write(path, doc, durable, text)
    return size


def _dumps(doc: dict) -> str:
    """``json.dumps(doc, indent=1, sort_keys=True, default=str)`` (as atomic_write_json writes it), to the byte.

    With ``indent`` json encodes in Python, ~20 us a value: a top-level list of many flat records (a job's
    outputs, one per linked stack) is encoded by json's C encoder a record at a time and put in its place.
    """
    big = [k for k, v in doc.items() if type(k) is str and type(v) is list and len(v) >= 32 and all(map(_flat, v))]
    if not big:
        return json.dumps(doc, indent=1, sort_keys=True, default=str)
    markers = {k: f"\x00cryodesk-manifest-{k}\x00" for k in big}
    text = json.dumps({**doc, **markers}, indent=1, sort_keys=True, default=str)
    for k, marker in markers.items():
        quoted = json.dumps(marker)
        if text.count(quoted) != 1:  # the marker's text elsewhere in the document: the plain way
            return json.dumps(doc, indent=1, sort_keys=True, default=str)
        # a list at depth 1: items on lines of 2 spaces, their keys on lines of 3 (as json's indent=1 puts them)
        items = ",\n  ".join("{\n   " + _FLAT_ENCODER.encode(r)[1:-1] + "\n  }" if r else "{}" for r in doc[k])
        text = text.replace(quoted, "[\n  " + items + "\n ]", 1)
    return text


_SCALARS = (str, int, float, bool, type(None))
# json's C encoder: with these separators a flat record comes out as json's indent=1 writes it at depth 2,
# but for the line breaks after "{" and before "}" (a newline inside a string is always escaped as \n)
_FLAT_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",\n   ", ": "))


def _flat(record) -> bool:
    return type(record) is dict and all(type(k) is str and type(v) in _SCALARS for k, v in record.items())


def _write(path: Path, doc: dict, durable: bool = True, text: str | None = None) -> None:
    """Write a manifest; a read-only or full disk is a clear error (the caller's transaction then rolls back)."""
    try:
        atomic_write(path, text if text is not None else _dumps(doc), durable)
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror or exc} (nothing was changed)") from None


def write_jobs(jobs, project_dir: Path) -> None:
    """Rewrite many manifests after a bulk change of derived fields (no fsync each)."""
    kind = _foreign_kind(Path(project_dir))
    if kind:
        _write_foreign(kind, Path(project_dir))
        return
    jobs = list(jobs)
    if not jobs:
        return
    rec = pending.begin(Path(project_dir), [j.uid for j in jobs], [j.uid for j in jobs if j.is_final], False)
    try:
        for job in jobs:
            write_job(job, project_dir, durable=False, _record=False)
    except BaseException:
        pending.abandon(rec)
        raise
    pending.done(rec)


# -- repairing what an interrupted write left (core.pending) -----------------------------------

def rewrite_from_db(project_dir: Path, uids) -> list[str]:
    """Rewrite the manifests ``uids`` (``J<n>``, ``project``) names from the database as committed.

    What :mod:`cryodesk.core.pending` records are repaired with; returns the uids handled.  A job
    whose row does not exist (its creation never committed) loses its ``job.json`` and directory
    when nothing else is in it.
    """
    project_dir = Path(project_dir)
    project = Project.get_or_none(Project.directory == str(project_dir))
    if project is None:
        return []
    done_ = []
    numbers = {}
    for u in uids:
        if u == pending.PROJECT:
            write_project(Project.get_by_id(project.id), _record=False)
            done_.append(u)
        elif len(u) > 1 and u[0] == "J" and u[1:].isdigit() and len(u) < 12:
            numbers[int(u[1:])] = u
    if numbers:
        rows = {j.number: j for j in Job.select().where((Job.project == project) & Job.number.in_(sorted(numbers)))}
        for n, u in sorted(numbers.items()):
            if n in rows:
                write_job(rows[n], project_dir, _record=False)
                done_.append(u)
            elif _remove_phantom(project_dir, u):
                done_.append(u)
    return done_


def _remove_phantom(project_dir: Path, uid: str) -> bool:
    """A job whose creation never committed: its ``job.json`` and its directory go — only when nothing
    else is in it (a directory with any other file is left as it is; the record is dropped)."""
    jdir = project_dir / uid
    if jdir.is_symlink() or not jdir.is_dir():
        return False
    try:
        names = os.listdir(jdir)
    except OSError:
        return False
    # the unfinished writes of its job.json (a kill between the temp file and its rename) go with it
    temps = [n for n in names if own_temp_target(n) == JOB_MANIFEST]
    if [n for n in names if n not in temps] not in ([], [JOB_MANIFEST]):
        return False
    if JOB_MANIFEST in names:
        doc = pending.read_record(jdir / JOB_MANIFEST)
        if doc is None or doc.get("uid") != uid:
            return False
        try:
            (jdir / JOB_MANIFEST).unlink()
        except OSError:
            return False
    for name in temps:
        if not remove_own_temp(jdir, name) and os.path.lexists(jdir / name):
            return False
    try:
        jdir.rmdir()
    except OSError:
        return False
    return True


pending.REWRITE = rewrite_from_db
