"""Run one job body synchronously (Qt-free): the engine's worker calls this.

:func:`run_job` checks that the job may run (its type is runnable, required
inputs are connected, every parent is completed and still has the output
version read), builds a :class:`~cryodesk.core.context.JobContext`, calls the
type's ``run(ctx)`` and records the outcome: outputs and size on success,
the error on failure, and on cancel either removes partial output or keeps
finished iterations as intermediate results, as the job type declares.
"""

from __future__ import annotations

import errno
import logging
import re
import threading
import traceback
from pathlib import Path

from ..base import nofollow
from ..base.errors import CryodeskError, DataError, JobCancelled, Refused
from ..base.fsio import atomic_write_json
from ..db.models import Job, db
from . import deletion, lifecycle, manifest, pending, registry
from .context import InputRef, JobContext
from .deletion import DeletionPlan
from .fsutil import check_job_dir, require_project_dir
from .guard import project_write
from .inputs import resolve_inputs
from .jobs import get_job, replace_outputs, set_status
from .projects import get_project
from .sizes import job_size

LOG_NAME = "job.log"


def check_runnable(project, job: Job) -> dict[str, list[InputRef]]:
    jtype = registry.get(job.type)
    if jtype.run is None:
        raise Refused(job.uid, f"job type {job.type!r} cannot be run by cryodesk")
    on_lane = job.cluster_job_id and job.status in ("launched", "started")  # submitted: the node runs it
    if job.status not in ("building", "queued") and not on_lane:
        raise Refused(job.uid, f"it is {job.status}; clear it before running it again")
    return resolve_inputs(project, job)


def _job_logger(job_uid: str, path: Path) -> tuple[logging.Logger, logging.Handler]:
    logger = logging.getLogger(f"cryodesk.job.{job_uid}.{id(path)}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    handler = logging.StreamHandler(nofollow.open_append(path))  # never through a planted symlink
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger.addHandler(handler)
    return logger, handler


def _discard_partial(project, job: Job, keep: set[str]) -> None:
    item = deletion.discard_item(Path(project.directory), job, keep, "partial output of a cancelled run")
    if item is not None:
        deletion.execute(project, DeletionPlan(project.uid, [item]))


def run_job(project, job, progress=None, cancel_event: threading.Event | None = None) -> Job:
    """Run ``job`` to completion in this thread; returns the job in its final state.

    Raises :class:`Refused` when the job may not start; failures of the body
    itself do not raise: they end in status *failed* with the error recorded.
    """
    project = get_project(project)
    deletion.recover(project)  # a deletion a crash left half-done is finished before anything reads
    job_id = get_job(project, job).id
    pdir = require_project_dir(project.directory)
    # the job's manifest changes at its start and at its end: recorded for the whole run (core.pending),
    # so that an end the disk had no room for is written by the next command once there is
    held = pending.hold(pdir, get_job(project, job).uid)
    written = [True]
    try:
        # Judge the job and its inputs and mark it running in one guarded transaction: a clear of a
        # parent rechecks "no running child reads it" under the same lock, so one of the two waits.
        with project_write(project, [job_id]):
            job = Job.get_by_id(job_id)
            inputs = check_runnable(project, job)
            jdir = check_job_dir(pdir, job.directory)
            jdir.mkdir(exist_ok=True)
            set_status(job, "running", write=False)
            # a run without an engine (the demo, a script) is owned by this process while it runs, so
            # another process's crash recovery never takes it for a job whose process died
            own = lifecycle.own_direct_run(job) if not job.owner_engine else None
        try:
            done = _run_started(project, job, pdir, jdir, inputs, progress, cancel_event, written)
        finally:
            if own is not None:
                lifecycle.end_direct_run(job, own)
    except BaseException:
        pending.release(held, written=False)
        pending.sweep()
        raise
    pending.release(held, written[0])
    return Job.get_by_id(done.id) if own is not None else done


def _run_started(project, job: Job, pdir: Path, jdir: Path, inputs, progress, cancel_event,
                 written: list | None = None) -> Job:
    written = written if written is not None else [True]
    try:
        manifest.write_job(job, pdir)
    except DataError as exc:  # a full or read-only disk: the job cannot run there; say so, never hang "running"
        written[0] = _finish(project, job, "failed", [], str(exc))
        return Job.get_by_id(job.id)
    jtype = registry.get(job.type)
    try:
        logger, handler = _job_logger(job.uid, jdir / LOG_NAME)
    except (OSError, DataError) as exc:  # the job cannot even keep its log: it fails, saying why
        written[0] = _finish(project, job, "failed", [],
                             f"cannot write {_shown(pdir, jdir / LOG_NAME)}: {getattr(exc, 'strerror', None) or exc}")
        return Job.get_by_id(job.id)
    ctx = JobContext(project_uid=project.uid, uid=job.uid, type=job.type, project_dir=pdir, job_dir=jdir,
                     params=dict(job.params), inputs=inputs, log=logger, progress_cb=progress,
                     cancel_event=cancel_event or threading.Event())
    logger.info("%s %s started with params %s", job.uid, job.type, job.params)
    try:
        jtype.run(ctx)
        ctx.check_cancel()
    except JobCancelled:
        logger.info("cancelled")
        written[0] = _finish_cancelled(project, job, jtype, ctx)
    except CryodeskError as exc:
        logger.error("failed: %s", exc)
        written[0] = _finish(project, job, "failed", [], str(exc))
    except Exception as exc:  # a bug or an unexpected OS error: the traceback goes to the log, a sentence to the user
        logger.error("failed with an unexpected error:\n%s", traceback.format_exc())
        written[0] = _finish(project, job, "failed", [], failure_message(exc, pdir, jdir, job.type))
    else:
        logger.info("completed")
        written[0] = _finish(project, job, "completed", ctx.outputs, None, ctx.results)
    finally:
        logger.removeHandler(handler)
        handler.close()
        handler.stream.close()
    return Job.get_by_id(job.id)


def _shown(pdir: Path, path) -> str:
    """``path`` relative to the project directory when it is inside it (``J5/restacked/batch_0001.mrc``)."""
    try:
        return str(Path(path).relative_to(pdir))
    except ValueError:
        return str(path)


def failure_message(exc: BaseException, pdir: Path, jdir: Path, type_name: str) -> str:
    """What the user reads when a job body raised something other than a :class:`CryodeskError`.

    A sentence saying what went wrong and where — never the exception's class and raw text
    (``ValueError: invalid literal for int()...``); that detail, with its traceback, is in ``job.log``.
    """
    log = _shown(pdir, jdir / LOG_NAME)
    if isinstance(exc, OSError):
        name = getattr(exc, "filename", None)
        where = f"{_shown(pdir, name)}" if name else f"in {_shown(pdir, jdir)}/"
        what = exc.strerror or "an input/output error"
        if exc.errno == errno.ENOSPC:
            return f"No space left on device while writing {where} (free space on that disk, then run it again)"
        if exc.errno == errno.EDQUOT:
            return f"Disk quota exceeded while writing {where}"
        return f"{what}: {where} (details in {log})"
    if isinstance(exc, MemoryError):
        m = re.search(r"allocate ([\d.]+\s*\w+)", str(exc))
        need = f" (it needed {m.group(1)})" if m else ""
        return (f"not enough memory{need}: check the job's parameters (a size or count far too large?); "
                f"details in {log}")
    if isinstance(exc, OverflowError):
        return f"a number is too large for this job's computation: check its parameters; details in {log}"
    if isinstance(exc, UnicodeError):
        return f"an input file holds text that is not valid UTF-8 (a binary or corrupt file?); details in {log}"
    return f"{type_name} stopped on an unexpected internal error; details in {log}"


def _finish_cancelled(project, job, jtype, ctx: JobContext) -> None:
    kept = []
    if jtype.keep_partial_on_cancel and ctx.outputs:
        kept = ctx.outputs
    keep_names = {ref.path.split("/")[1] for _, ref in kept if "/" in ref.path}
    try:
        _discard_partial(project, job, keep_names | {"lane"})  # a lane's script and scheduler output stay
    except CryodeskError as exc:  # e.g. another process holds the project lock: keep the files
        ctx.log.warning("partial output kept (%s); clear the job to remove it", exc)
    return _finish(project, job, "killed", kept, "cancelled by the user")


class JobVanished(DataError):
    """The job's row was deleted while it ran: its outcome cannot be recorded."""


def _finish(project, job: Job, status: str, outputs, error, results=None) -> bool:
    """Record how the job ended; True if its manifest was written too.

    The database always gets it, even on a full or read-only disk (the manifest is then repaired by
    the next command, :mod:`cryodesk.core.pending`).  A job whose row vanished meanwhile raises
    :class:`JobVanished` (nothing of it is written back: its directory is not remade).
    """
    pdir = Path(project.directory)
    if results:
        # free-form results (e.g. per-frame shifts) are kept beside the outputs
        where = pdir / job.directory / "results.json"
        try:
            atomic_write_json(where, results)
        except OSError as exc:
            status, outputs = "failed", []
            error = (f"No space left on device while writing {_shown(pdir, where)}" if exc.errno == errno.ENOSPC
                     else f"cannot write {_shown(pdir, where)}: {exc.strerror or exc}")
    with db.atomic():
        if not Job.select().where(Job.id == job.id).exists():
            raise JobVanished(f"{job.uid} was deleted while it ran; its result ({status}) was not recorded")
        replace_outputs(job, outputs)
        set_status(job, status, error=error, write=False)
        job.size_bytes = job_size(pdir / job.directory)
        job.save(only=[Job.size_bytes])
    written = True
    try:
        manifest.write_job(job, pdir)
    except DataError as exc:
        # the status is recorded; the manifest is rewritten by the next command (its record stays)
        logging.getLogger("cryodesk.runner").warning("%s: %s", job.uid, exc)
        written = False
    # record the job's size and apply "delete intermediate results automatically" (core/cleanup)
    from .cleanup import on_job_finished

    on_job_finished(project, job, manifest_written=written)
    return written
