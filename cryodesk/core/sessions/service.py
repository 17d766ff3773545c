"""Live sessions: ``S<n>`` rows, their status machine, exposures and what each stage recorded.

Statuses (``Session.status``)::

    paused ──start──▶ running ──pause──▶ paused
      │  ▲              │
      └──┴──complete────┴──▶ completed ──compact──▶ compacting ──▶ compacted
                                ▲                                    │ restore
                                └──── all ready ◀── restoring ◀──────┘
                                                      │ an exposure failed
                                                      ▼
                                               restoration_failed ──restore──▶ restoring

Exposure stages (``Exposure.stage``, the *next* stage to run): found → motion
→ ctf → picking → extraction → ready; failed (``failed_stage`` is where, with
its ``error``); compacted.  Stage code (:mod:`cryodesk.jobs.live`) reports
through :func:`record_stage` / :func:`fail_exposure`; every write is one
guarded transaction (:func:`~cryodesk.core.guard.project_write`) that publishes
a ``project`` change event, so open windows update.

Movies are referenced (absolute path), never copied, moved or deleted: only
files under ``S<n>/`` are ever written.
"""

from __future__ import annotations

import glob
import os
from contextlib import contextmanager
from pathlib import Path

from ...base.errors import DataError, LockedError, NotFound, Refused, UsageError
from ...base.fsio import file_lock
from ...base.nofollow import LinkRefused, open_dirs
from ...db.models import Exposure, Project, Session, utcnow
from .. import events, manifest
from ..guard import project_write
from ..projects import create_session, get_project
from ..sizes import job_size, mark_jobs_changed
from ..uids import parse_uid
from . import params as P

STATUSES = ("paused", "running", "completed", "compacting", "compacted", "restoring", "restoration_failed")
STAGES = ("found", "motion", "ctf", "picking", "extraction", "ready", "failed", "compacted")
#: stages a runner still has to work on
TODO_STAGES = ("found", "motion", "ctf", "picking", "extraction")
NEXT = {"found": "motion", "motion": "ctf", "ctf": "picking", "picking": "extraction", "extraction": "ready"}
#: the statuses in which a runner processes exposures
ACTIVE = ("running", "restoring")
#: output kinds, in the order plans list them
KINDS = ("micrograph", "thumbnail", "ctf_spectrum", "particles")
KIND_LABEL = {"micrograph": "micrographs", "thumbnail": "thumbnails", "ctf_spectrum": "CTF spectra",
              "particles": "particle stacks"}
RUNNER_LOCK = ".runner.lock"


# -- lookup ---------------------------------------------------------------------------------
def get_session(project, uid) -> Session:
    project = get_project(project)
    number = parse_uid(uid.uid if isinstance(uid, Session) else uid, "S")
    row = Session.get_or_none((Session.project == project.id) & (Session.number == number))
    if row is None:
        raise NotFound(f"no session S{number} in {project.uid}")
    return row


def list_sessions(project) -> list[Session]:
    project = get_project(project)
    return list(Session.select().where(Session.project == project.id).order_by(Session.number))


def session_dir(project: Project, session: Session) -> Path:
    return Path(project.directory) / session.directory


#: the sub-directories of ``S<n>/`` stage code writes into
STAGE_SUBDIRS = ("motion", "thumbnails", "ctf", "extract")


def stage_dir(project_dir: Path | str, session: Session, sub: str) -> Path:
    """``S<n>/<sub>/``, made if missing, for a stage to write into: never through a symlink.

    Every component (``S<n>`` and ``<sub>``) is opened (or made) with
    ``O_NOFOLLOW`` (:func:`cryodesk.base.nofollow.open_dirs`); a symlinked or
    non-directory one raises :class:`DataError` naming the path, so nothing
    a session writes can land outside its directory.
    """
    if sub not in STAGE_SUBDIRS:
        raise ValueError(f"unknown stage directory {sub!r}")
    pdir = Path(project_dir)
    path = pdir / session.directory / sub
    try:
        with open_dirs(pdir, [session.directory, sub], create=True, where=str(path)):
            pass
    except LinkRefused as exc:
        raise DataError(f"{exc}; nothing was written (a session writes only inside its own directory "
                        f"{pdir / session.directory}: put a real directory back in place)") from None
    return path


def symlink_problem(project_dir: Path | str, rel: str) -> str | None:
    """Why the recorded output ``rel`` (``S<n>/<sub>/<file>``) cannot be reached without following a link."""
    parts = rel.split("/")[:-1]
    try:
        with open_dirs(Path(project_dir), parts, where=str(Path(project_dir) / "/".join(parts))):
            return None
    except LinkRefused as exc:
        return str(exc)
    except FileNotFoundError:
        return None


def exposures(session: Session) -> list[Exposure]:
    return list(Exposure.select().where(Exposure.session == session.id).order_by(Exposure.number))


def get_exposure(session: Session, uid) -> Exposure:
    number = parse_uid(uid, "E")
    row = Exposure.get_or_none((Exposure.session == session.id) & (Exposure.number == number))
    if row is None:
        raise NotFound(f"no exposure E{number} in S{session.number}")
    return row


def _fresh(project: Project, session: Session) -> Session:
    row = Session.get_or_none(Session.id == session.id)
    if row is None:
        raise NotFound(f"session {session.uid} of {project.uid} no longer exists")
    return row


def refuse_if_compacted(project: Project, session: Session, what: str) -> None:
    """A compacted session (or one being compacted or restored) cannot be modified: say so clearly."""
    if session.status == "compacted":
        raise Refused(f"{project.uid} {session.uid}",
                      f"cannot {what}: the session is compacted; it cannot be modified until it is "
                      f"restored (cryodesk session restore {project.uid} {session.uid})")
    if session.status == "compacting":
        raise Refused(f"{project.uid} {session.uid}",
                      f"cannot {what}: the session is being compacted (if that was interrupted, run "
                      f"cryodesk session compact {project.uid} {session.uid} again to finish it)")
    if session.status in ("restoring", "restoration_failed"):
        raise Refused(f"{project.uid} {session.uid}",
                      f"cannot {what}: the session is {session.status.replace('_', ' ')}; finish the restore "
                      f"first (cryodesk session restore {project.uid} {session.uid})")


# -- runner lock ------------------------------------------------------------------------------
@contextmanager
def runner_lock(project: Project, session: Session, timeout: float = 0.0):
    """The session's runner lock: one process runs a session's exposures at a time.

    An flock the kernel drops when the process dies (a SIGKILLed restore
    leaves nothing to clean up).  Compaction takes it too, so nothing is
    compacted under a runner that is still writing.
    """
    sdir = session_dir(project, session)
    if sdir.is_symlink():
        raise DataError(f"{project.uid} {session.uid}: its directory {sdir} is a symlink; cryodesk never writes "
                        "through one (put the real directory back in place); nothing was changed")
    if not sdir.is_dir():
        sdir.mkdir()  # a session directory removed by hand is remade (only S<n> itself, never its parents)
    try:
        with file_lock(sdir / RUNNER_LOCK, f"{project.uid} {session.uid}", timeout=timeout):
            yield
    except LockedError:
        raise LockedError(f"{project.uid} {session.uid} is being run by another cryodesk process "
                          f"(or window); pause it there first") from None


def runner_active(project: Project, session: Session) -> bool:
    sdir = session_dir(project, session)
    if sdir.is_symlink() or not sdir.is_dir():
        return False
    try:
        with runner_lock(project, session):
            return False
    except LockedError:
        return True


# -- create, parameters, status ---------------------------------------------------------------
def _movies_pattern(project: Project, pattern: str) -> str:
    if not pattern or not str(pattern).strip():
        raise UsageError("a session needs --movies: a glob of the movie files to watch (e.g. '/data/run1/*.mrc')")
    path = Path(os.path.expanduser(str(pattern)))
    if not path.is_absolute():
        path = Path(project.directory) / path
    if path.is_dir():
        path = path / "*.mrc"
    if not glob.has_magic(str(path)) and not path.suffix:
        raise UsageError(f"--movies {pattern!r} is neither a glob, a directory nor a file")
    try:
        if Path(project.directory).resolve() in path.parent.resolve().parents or \
                path.parent.resolve() == Path(project.directory).resolve():
            # movies inside the project would be counted (and could be cleaned) as project data
            raise UsageError(f"--movies {pattern!r} points inside the project directory; raw movies must live "
                             "outside it (they are imported by reference)")
    except OSError:
        pass
    return str(path)


def create(project, movies: str, title: str = "", assignments: dict | None = None, lane: str = "local") -> Session:
    """Create ``S<n>`` (paused) watching ``movies``, with its directory in the project."""
    project = get_project(project)
    pattern = _movies_pattern(project, movies)
    values = P.apply_assignments({}, assignments or {})
    values["movies"] = pattern
    from ..lanes.service import session_lane

    session_lane(lane)  # local, or a SLURM lane (its restores run there)
    session = create_session(project, title)
    with project_write(project):
        Session.update(params=values, lane=lane, status="paused").where(Session.id == session.id).execute()
        events.record(project, "project")
    return _fresh(project, session)


def set_params(project, session, assignments: dict) -> Session:
    """Change parameters; stage parameters only until the first exposure was processed, thresholds any time."""
    project = get_project(project)
    with project_write(project):
        s = _fresh(project, get_session(project, session))
        refuse_if_compacted(project, s, "change its parameters")
        values = P.apply_assignments(s.params, assignments)
        old = P.merged(s.params)
        changed = [k for k in P.STAGE_KEYS if old[k] != values[k]]
        if changed and Exposure.select().where((Exposure.session == s.id) & (Exposure.stage != "found")).exists():
            raise Refused(f"{project.uid} {s.uid}", f"cannot change {', '.join(changed)}: exposures were processed "
                          "with the current values (make a new session for other stage parameters)")
        if "movies" in assignments:
            values["movies"] = _movies_pattern(project, assignments["movies"])
        Session.update(params=values).where(Session.id == s.id).execute()
        events.record(project, "project")
    return _fresh(project, s)


def set_lane(project, session, lane: str) -> Session:
    """Where the session's restores run: ``local`` (this machine) or a SLURM lane."""
    from ..lanes.service import session_lane

    project = get_project(project)
    session_lane(lane)
    with project_write(project):
        s = _fresh(project, get_session(project, session))
        Session.update(lane=lane or "local").where(Session.id == s.id).execute()
        events.record(project, "project")
    return _fresh(project, s)


def set_thresholds(project, session, **limits) -> Session:
    """Accept/reject thresholds (``ctf_fit_min=0.2``, ``particles_min=None``...); allowed while it runs."""
    return set_params(project, session, {f"thresholds.{k}": ("none" if v is None else str(v))
                                         for k, v in limits.items()})


_TRANSITIONS = {
    "start": (("paused", "completed"), "running"),
    "pause": (("running",), "paused"),
    "complete": (("paused", "running"), "completed"),
}


def transition(project, session, action: str) -> Session:
    """``start`` / ``pause`` / ``complete``; a refused transition says what the status is."""
    project = get_project(project)
    allowed, target = _TRANSITIONS[action]
    with project_write(project):
        s = _fresh(project, get_session(project, session))
        if s.status == target:
            return s
        if s.status not in allowed:
            refuse_if_compacted(project, s, action)
            raise Refused(f"{project.uid} {s.uid}", f"cannot {action}: it is {s.status} "
                          f"(only a {' or '.join(allowed)} session can be {'started' if action == 'start' else action + 'd'})")
        Session.update(status=target, error=None).where(Session.id == s.id).execute()
        events.record(project, "project")
    return _fresh(project, s)


def set_status(project: Project, session: Session, status: str, error: str | None = None,
               only_from: tuple[str, ...] | None = None) -> bool:
    """Set the status (used by runners and compaction); ``only_from`` guards against a concurrent change."""
    assert status in STATUSES
    with project_write(project):
        s = _fresh(project, session)
        if only_from is not None and s.status not in only_from:
            return False
        Session.update(status=status, error=error).where(Session.id == s.id).execute()
        events.record(project, "project")
    return True


# -- exposures --------------------------------------------------------------------------------
def project_dirs() -> list[str]:
    """Every project directory the database knows (resolved), for the movies-outside-projects check."""
    out = []
    for (d,) in Project.select(Project.directory).tuples():
        if d:
            try:
                out.append(os.path.realpath(d))
            except OSError:
                pass
    return out


def movie_problem(path: str, dirs: list[str] | None = None) -> str | None:
    """Why the matched file ``path`` cannot be a movie: it resolves inside a project directory (or None).

    The pattern check at create time only sees the glob's text; a wildcard
    in a directory component (``/data/*/S1/motion/*.mrc``) can still match
    project files, which compaction or Cleanup Data would then delete.
    """
    real = os.path.realpath(path)
    for d in project_dirs() if dirs is None else dirs:
        if real == d or real.startswith(d.rstrip("/") + "/"):
            where = f"{path} resolves to {real}, inside" if real != path else f"{path} is inside"
            return (f"{where} the project directory {d}: raw movies must live outside every project "
                    "(skipped, not registered as an exposure)")
    return None


def add_exposures(project: Project, session: Session, movies: list[tuple[str, int]]) -> list[Exposure]:
    """Register movies ``[(absolute path, bytes)]`` that settled; one already known is ignored.

    A file that resolves inside any project directory is never registered
    (:func:`movie_problem`; the runner reports it).
    """
    if not movies:
        return []
    dirs = project_dirs()
    movies = [(p, n) for p, n in movies if movie_problem(p, dirs) is None]
    if not movies:
        return []
    added = []
    with project_write(project):
        s = _fresh(project, session)
        if s.status not in ("running",):
            return []
        known = {m for (m,) in Exposure.select(Exposure.movie).where(Exposure.session == s.id).tuples()}
        number = (Exposure.select(Exposure.number).where(Exposure.session == s.id)
                  .order_by(Exposure.number.desc()).scalar() or 0)
        for path, size in movies:
            if path in known:
                continue
            number += 1
            added.append(Exposure.create(session=s, number=number, movie=path, movie_bytes=size))
            known.add(path)
        if added:
            events.record(project, "project")
    return added


def known_movies(session: Session) -> set[str]:
    return {m for (m,) in Exposure.select(Exposure.movie).where(Exposure.session == session.id).tuples()}


def todo(session: Session) -> list[Exposure]:
    """Exposures a runner still has to process, oldest first."""
    return list(Exposure.select().where((Exposure.session == session.id) & Exposure.stage.in_(TODO_STAGES))
                .order_by(Exposure.number))


def output_name(exposure: Exposure) -> str:
    """The stem of an exposure's output files: unique in its session, fixed for its life (restore rewrites it)."""
    stem = Path(exposure.movie).name
    for suffix in (".mrcs", ".mrc", ".tiff", ".tif", ".st"):
        if stem.lower().endswith(suffix):
            stem = stem[: -len(suffix)]
            break
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)[:80]
    return f"E{exposure.number:05d}_{safe}"


def record_stage(project: Project, session: Session, exposure: Exposure, stage: str, outputs: dict | None = None,
                 results: dict | None = None, picks=None) -> Exposure | None:
    """Record a finished stage (its files are complete on disk) and advance to the next; None if it moved on.

    Refused quietly (returns None) when the exposure is no longer at ``stage``:
    another action (compaction, reset) changed it meanwhile.
    """
    with project_write(project):
        e = Exposure.get_or_none(Exposure.id == exposure.id)
        if e is None or e.stage != stage:
            return None
        e.outputs = {**(e.outputs or {}), **(outputs or {})}
        e.results = {**(e.results or {}), **(results or {})}
        if picks is not None:
            e.picks = picks
        e.stage = NEXT[stage]
        e.error = e.failed_stage = None
        if e.stage == "ready":
            e.ready_at = utcnow()
        e.save()
        events.record(project, "project")
        mark_jobs_changed(project)  # the project's measured size is out of date
    return e


def fail_exposure(project: Project, session: Session, exposure: Exposure, stage: str, error: str) -> None:
    with project_write(project):
        e = Exposure.get_or_none(Exposure.id == exposure.id)
        if e is None or e.stage != stage:
            return
        Exposure.update(stage="failed", failed_stage=stage, error=error).where(Exposure.id == e.id).execute()
        events.record(project, "project")


def reset_failed(project, session) -> int:
    """Put every failed exposure back at the stage it failed in; returns how many."""
    project = get_project(project)
    with project_write(project):
        s = _fresh(project, get_session(project, session))
        if s.status in ("compacted", "compacting"):
            refuse_if_compacted(project, s, "reset failed exposures")
        failed = list(Exposure.select().where((Exposure.session == s.id) & (Exposure.stage == "failed")))
        for e in failed:
            Exposure.update(stage=e.failed_stage or "found", failed_stage=None, error=None).where(
                Exposure.id == e.id).execute()
        if failed and s.status == "restoration_failed":
            Session.update(status="restoring", error=None).where(Session.id == s.id).execute()
        events.record(project, "project")
    return len(failed)


def judge_exposure(session_params: dict, exposure: Exposure) -> str:
    return P.judge(exposure.results or {}, P.merged(session_params)["thresholds"], exposure.manual_status)


def set_manual(project, session, exposure_uids, status: str | None) -> int:
    """Accept / reject exposures by hand (``None`` hands them back to the thresholds)."""
    if status not in (None, "accept", "reject"):
        raise UsageError(f"manual status must be accept, reject or none, not {status!r}")
    project = get_project(project)
    with project_write(project):
        s = _fresh(project, get_session(project, session))
        refuse_if_compacted(project, s, "accept or reject exposures")
        ids = [get_exposure(s, u).id for u in exposure_uids]
        n = Exposure.update(manual_status=status).where(Exposure.id.in_(ids)).execute()
        events.record(project, "project")
    return n


def set_manual_picks(project, session, exposure_uid, picks: list[tuple[float, float]]) -> Exposure:
    """Replace an exposure's manual picks (micrograph pixels); a processed exposure is re-extracted."""
    project = get_project(project)
    clean = []
    for p in picks:
        try:
            x, y = float(p[0]), float(p[1])
        except (TypeError, ValueError, IndexError):
            raise UsageError(f"a manual pick is x,y in micrograph pixels, not {p!r}") from None
        clean.append([x, y])
    with project_write(project):
        s = _fresh(project, get_session(project, session))
        refuse_if_compacted(project, s, "change manual picks")
        e = get_exposure(s, exposure_uid)
        shape = (e.results or {}).get("shape")
        if shape:
            for x, y in clean:
                if not (0 <= x < shape[1] and 0 <= y < shape[0]):
                    raise UsageError(f"manual pick ({x:g}, {y:g}) lies outside {e.uid}'s micrograph "
                                     f"({shape[1]} x {shape[0]} px)")
        e.manual_picks = clean
        if e.stage == "ready":
            e.stage = "extraction"  # the particle stack is rebuilt with the new picks
        e.save()
        events.record(project, "project")
    return e


def update_size(project: Project, session: Session) -> int:
    """Measure ``S<n>/`` (``du -sb``) and store it as the session's size."""
    size = job_size(session_dir(project, session))
    with project_write(project):
        Session.update(size_bytes=size).where(Session.id == session.id).execute()
        mark_jobs_changed(project)
        events.record(project, "project")
    session.size_bytes = size
    return size


def write_manifest(project: Project) -> None:
    manifest.write_project(Project.get_by_id(project.id))


# -- description ------------------------------------------------------------------------------
def describe_exposure(session: Session, e: Exposure) -> dict:
    r = e.results or {}
    ctf = r.get("ctf") or {}
    return {
        "uid": e.uid, "movie": e.movie, "movie_bytes": e.movie_bytes, "stage": e.stage,
        "failed_stage": e.failed_stage, "error": e.error,
        "defocus_A": round((ctf["df1_A"] + ctf["df2_A"]) / 2, 1) if ctf else None,
        "ctf_fit": round(ctf["cross_corr"], 4) if ctf else None,
        "n_picks": len(e.picks) if e.picks is not None else None, "n_manual_picks": len(e.manual_picks or []),
        "n_particles": r.get("n_particles"), "judgement": judge_exposure(session.params, e),
        "manual_status": e.manual_status,
        "outputs": {k: v for k, v in (e.outputs or {}).items()},
        "output_bytes": sum(int(v.get("bytes", 0)) for v in (e.outputs or {}).values()),
    }


def stage_counts(session: Session) -> dict[str, int]:
    import peewee as pw

    counts = dict.fromkeys(STAGES, 0)
    for stage, n in (Exposure.select(Exposure.stage, pw.fn.COUNT(Exposure.id)).where(Exposure.session == session.id)
                     .group_by(Exposure.stage).tuples()):
        counts[stage] = n
    return counts


def throughput(session: Session) -> float | None:
    """Exposures made ready per minute, from the first found to the last ready (None: too few)."""
    rows = list(Exposure.select(Exposure.found_at, Exposure.ready_at).where(
        (Exposure.session == session.id) & Exposure.ready_at.is_null(False)).tuples())
    if len(rows) < 2:
        return None
    start = min(f for f, _ in rows)
    end = max(r for _, r in rows)
    secs = (end - start).total_seconds()
    return round(len(rows) / secs * 60, 2) if secs > 0 else None


def describe(project, session, with_exposures: bool = True) -> dict:
    project = get_project(project)
    s = get_session(project, session)
    exps = exposures(s)
    descs = [describe_exposure(s, e) for e in exps]
    judged = [d["judgement"] for d in descs]
    out = {
        "project": project.uid, "uid": s.uid, "title": s.title, "status": s.status, "lane": s.lane,
        "error": s.error, "directory": str(session_dir(project, s)), "size_bytes": s.size_bytes,
        "params": P.merged(s.params), "stage_counts": stage_counts(s), "exposures_total": len(exps),
        "accepted": judged.count("accepted"), "rejected": judged.count("rejected"),
        "particles_accepted": sum(d["n_particles"] or 0 for d in descs if d["judgement"] == "accepted"),
        "throughput_per_min": throughput(s), "runner_active": runner_active(project, s),
        "lane_run": dict(s.lane_run) if s.lane_run else None,
    }
    if with_exposures:
        out["exposures"] = descs
    return out


def current(session_id: int, exposure_id: int | None = None) -> tuple[Session | None, Exposure | None]:
    """The session (and one of its exposures) as committed now, by id (None: gone)."""
    s = Session.get_or_none(Session.id == session_id)
    e = Exposure.get_or_none(Exposure.id == exposure_id) if exposure_id is not None else None
    return s, e


def count_failed(session: Session) -> int:
    return Exposure.select().where((Exposure.session == session.id) & (Exposure.stage == "failed")).count()
