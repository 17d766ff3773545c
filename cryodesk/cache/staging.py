"""What a job calls: ``with stage(ctx, particles) as staged: staged.read_particle(path, i)``.

:func:`stage` decides whether to cache (setting ``cache_particles``: the
job's param, else the project's, worker's or user's value, else on), which way (whole files, or packed
subset stacks when the particles used are a small enough part of their
stacks), gets the entries into the cache and holds them for the ``with``
block.  Whatever happens — caching off, no SSD configured, SSD full — the
``Staged`` object answers the same questions with the same bytes; only
where they are read from changes.  So a job gives identical results with
caching on or off.
"""

from __future__ import annotations

import logging
import os
import stat
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from cryodesk.base import settings
from cryodesk.base.errors import DataError, is_utf8
from cryodesk.core.registry import Param
from cryodesk.io.cs import ParticleSet
from cryodesk.io.mrc import read_header, read_image, read_images

from .acquire import Holding, acquire
from .config import CacheConfig, resolve_config
from .copy import commit_copy, copy_into_cache
from .store import Cache, Item, stat_matches
from .subset import SubsetMap, subset_item, subset_spec_grouped

__all__ = ["CACHE_PARAM", "stage", "open_stage", "Staged", "cache_enabled", "project_default", "file_item",
           "particle_sources"]

_log = logging.getLogger("cryodesk.cache")

#: The parameter every job type that reads particles declares: the job level
#: of setting ``cache_particles``.  ``None`` means "not set for this job" (the
#: project's value, else this worker's, the user's, on).
CACHE_PARAM = Param("cache_particles", None, "bool",
                    help="Cache particle images on SSD (default: the cache_particles setting of the project, "
                         "worker or user, else on)")


def project_default(project_dir: Path | None, name: str):
    """Setting ``name`` as set for the project whose directory is ``project_dir``, or None.

    Read from ``project.json`` (a job body may run without the database);
    projects from before one settings module kept it under ``job_defaults``.
    """
    if project_dir is None:
        return None
    from cryodesk.core.manifest import PROJECT_MANIFEST, read_json

    try:
        stored = read_json(Path(project_dir) / PROJECT_MANIFEST).get("settings") or {}
    except Exception:  # noqa: BLE001 - no manifest: no project value
        return None
    if stored.get(name) is not None:
        return stored[name]
    legacy = stored.get("job_defaults")
    return legacy.get(name) if isinstance(legacy, dict) else None


def cache_enabled(ctx, cache_on=None) -> bool:
    """Whether ``stage`` caches: the ``cache_particles`` setting for this job.

    The job level is ``cache_on`` when the caller gives it, else the job's
    ``cache_particles`` param (None: not set); then the project, this worker,
    the user, the default (on).  ``CRYODESK_CACHE_PARTICLES`` beats them all.
    """
    from .config import worker_level, worker_name

    params = getattr(ctx, "params", None) or {}
    job = cache_on if cache_on is not None else params.get("cache_particles")
    project = project_default(getattr(ctx, "project_dir", None), "cache_particles")
    return bool(settings.resolve("cache_particles", job={"cache_particles": job},
                                 project={"cache_particles": project},
                                 worker=worker_level(getattr(getattr(ctx, "cache_config", None), "worker", None)
                                                     or worker_name())))


def file_item(cache: Cache, source: Path | str, real: str | None = None) -> Item:
    """The cache entry of a whole file (keyed by its real path; valid while size + mtime match).

    ``real``: ``os.path.realpath(source)`` when the caller knows it already.
    """
    real = real or os.path.realpath(source)
    try:
        st = os.stat(real)
    except OSError as exc:
        raise DataError(f"cannot cache {source}: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):  # a FIFO there: the copy's open would wait for a writer for ever
        raise DataError(f"cannot cache {source}: it is not a regular file (a FIFO, socket, device or directory)")
    dest = cache.file_dest(real)
    size, mtime = st.st_size, st.st_mtime_ns
    fsync = cache.config.fsync
    src = real  # a str: os.open takes it as it is (no pathlib per file)
    # Durable copies are renamed in batches after one file-system sync; the copy threads ask
    # for each source ahead of its copy (prefetched: see acquire).
    return Item(key=real, kind="file", dest=dest, size=size, src_size=size, src_mtime_ns=mtime,
                check=lambda: stat_matches(dest, size, mtime),
                build=lambda on_bytes, cc: copy_into_cache(src, dest, size, mtime,
                                                           on_bytes=on_bytes, check_cancel=cc,
                                                           fsync=fsync, defer=fsync, prefetched=True),
                source=src, commit=(lambda: commit_copy(dest)) if fsync else None)


def particle_sources(ctx, what) -> tuple[list[Path], np.ndarray | None, np.ndarray | None]:
    """``(files, stack path per particle, index per particle)``; the last two None for plain files."""
    files, idx, groups = _sources(ctx, what)
    if groups is None:
        return files, None, None
    uniq, inv = groups
    return files, (np.asarray(uniq, dtype=str)[inv] if uniq else np.asarray([], dtype=str)), idx


def _sources(ctx, what):
    """``(files, index per particle, (stack paths, each particle's index into them))``.

    Built from each set's distinct stacks (:meth:`ParticleSet.stack_index`):
    no Path object, hash or string per particle.
    """
    refs = what if isinstance(what, (list, tuple)) else [what]
    if refs and all(hasattr(r, "files") and hasattr(r, "path") for r in refs):  # InputRef(s)
        base = getattr(ctx, "project_dir", None)
        refs = [ParticleSet.load(r.path("dataset"), base_dir=base or r.project_dir) for r in refs]
    if refs and all(isinstance(r, ParticleSet) for r in refs):
        uniq: list[str] = []
        invs = []
        for r in refs:
            paths, inv = r.stack_index()
            invs.append(np.asarray(inv, dtype=np.int64) + len(uniq))
            uniq.extend(str(p) for p in paths)
        inv = np.concatenate(invs) if invs else np.empty(0, np.int64)
        idx = np.concatenate([np.asarray(r.data["blob/idx"], dtype=np.int64) for r in refs])
        files = list(dict.fromkeys(Path(u) for u in uniq))
        return files, idx, (uniq, inv)
    return [p if isinstance(p, Path) else Path(p) for p in dict.fromkeys(refs)], None, None


def _realpaths(files: list[Path]) -> dict[str, str]:
    """``{str(path): os.path.realpath(path)}``, resolving each directory once, not each stack.

    ``realpath(d/name)`` is ``realpath(d)/name`` when ``name`` is not a symlink
    (one ``lstat``); anything else takes the full ``os.path.realpath``.
    """
    dirs: dict[str, str] = {}
    out: dict[str, str] = {}
    for p in files:
        key = str(p)
        head, name = os.path.split(os.path.abspath(key))
        try:
            # ".." is resolved after symlinks by realpath but lexically by abspath
            plain = ".." not in key.split(os.sep) and name not in ("", ".") and \
                not stat.S_ISLNK(os.lstat(key).st_mode)
        except OSError:
            plain = False
        if not plain:
            out[key] = os.path.realpath(key)
            continue
        real_dir = dirs.get(head)
        if real_dir is None:
            real_dir = dirs[head] = os.path.realpath(head)
        out[key] = os.path.join(real_dir, name)
    return out


class Staged:
    """Where to read a job's particles from, held until :meth:`release`.

    Attributes
    ----------
    mode : str
        ``"off"`` (reads the originals), ``"files"`` (whole-file copies) or ``"subset"``.
    holding : Holding or None
        What was copied, reused, waited for, and which files fell back.
    """

    def __init__(self, mode: str, files: dict[str, Path], real: dict[str, str],
                 stacks: np.ndarray | None, idx: np.ndarray | None, holding: Holding | None = None,
                 subset: SubsetMap | None = None, reason: str = "", groups=None):
        self.mode, self.holding, self.reason = mode, holding, reason
        self._files, self._real, self._subset = files, real, subset
        self._stacks, self._idx = stacks, idx
        self._groups = groups  # (distinct stack paths, each particle's index into them) or None
        self._locations = None

    def _realpath(self, original) -> str:
        key = str(original)
        real = self._real.get(key)
        if real is None:
            real = self._real[key] = os.path.realpath(original)
        return real

    def path_for(self, original: Path | str) -> Path:
        """The path to read whole file ``original`` from (the cached copy, or itself)."""
        return self._files.get(self._realpath(original), Path(original))

    def locate(self, original: Path | str, index: int) -> tuple[Path, int]:
        """Where image ``index`` of stack ``original`` is: ``(path, index)``."""
        if self._subset is not None:
            paths, new = self._subset.locate_many(np.array([self._realpath(original)]), [index])
            return paths[0], int(new[0])
        return self.path_for(original), int(index)

    def read_particle(self, original: Path | str, index: int) -> np.ndarray:
        """Image ``index`` of stack ``original`` (native byte order), from wherever it is cached."""
        path, i = self.locate(original, index)
        return read_image(path, i)

    def particle_locations(self) -> tuple[list[Path], np.ndarray]:
        """Per particle of the staged set, in its order: the path and index to read it from."""
        if self._stacks is None and self._groups is None:
            raise DataError("this stage holds plain files, not a particle set")
        if self._locations is None and self._groups is not None:  # per stack, not per particle
            uniq, inv = self._groups
            real_u = [self._realpath(p) for p in uniq]
            if self._subset is not None:
                self._locations = self._subset.locate_grouped(real_u, inv, self._idx)
            else:
                where = [self._files.get(r, Path(p)) for r, p in zip(real_u, uniq)]
                self._locations = ([where[k] for k in inv.tolist()], self._idx)
        if self._locations is None:  # computed once: jobs ask per particle, many times
            real = np.asarray([self._realpath(p) for p in self._stacks.tolist()])
            if self._subset is not None:
                self._locations = self._subset.locate_many(real, self._idx)
            else:
                self._locations = ([self._files.get(r, Path(p)) for r, p in
                                    zip(real.tolist(), self._stacks.tolist())], self._idx)
        return self._locations

    def read_particles(self, rows=None) -> np.ndarray:
        """Images of the staged particle set (``rows`` of it; all by default), ``(n, ny, nx)``."""
        paths, idx = self.particle_locations()
        rows = np.arange(len(paths)) if rows is None else np.asarray(rows, dtype=np.int64)
        sel_paths = np.asarray([str(paths[r]) for r in rows.tolist()])
        out = None
        for p in dict.fromkeys(sel_paths.tolist()):
            where = np.flatnonzero(sel_paths == p)
            imgs = read_images(p, idx[rows[where]])
            if out is None:
                out = np.empty((rows.size, *imgs.shape[1:]), dtype=imgs.dtype)
            out[where] = imgs
        return out if out is not None else np.empty((0, 0, 0), np.float32)

    def stats(self) -> dict:
        h = self.holding
        return {"mode": self.mode, "reason": self.reason,
                "bytes_copied": h.bytes_copied if h else 0, "bytes_reused": h.bytes_reused if h else 0,
                "files_copied": h.files_copied if h else 0, "waited_s": round(h.waited_s, 3) if h else 0.0,
                "fallback_files": len(h.fallback) if h else 0, "messages": list(h.messages) if h else []}

    def release(self) -> None:
        """Let the held entries be evicted again (the files stay cached for the next job)."""
        if self.holding is not None:
            self.holding.release()


def open_stage(ctx, what, *, cache_on=None, config: CacheConfig | None = None, subset="auto",
               on_full: str = "fallback", progress=None, particles_per_file: int = 10000) -> Staged:
    """Like :func:`stage` but returns the :class:`Staged`; call ``release()`` when done."""
    log = getattr(ctx, "log", None) or _log
    files, idx, groups = _sources(ctx, what)
    stacks = None  # per particle: only its stack's number (groups), no string each
    real = _realpaths(files)
    if not cache_enabled(ctx, cache_on):
        return Staged("off", {}, real, stacks, idx, reason="caching is off for this job", groups=groups)
    config = config or getattr(ctx, "cache_config", None) or resolve_config()
    if not config.usable:
        why = f"no SSD cache is configured for worker {config.worker!r}"
        log.info("SSD cache: %s; reading particles from the project directory", why)
        return Staged("off", {}, real, stacks, idx, reason=why, groups=groups)
    try:
        cache = Cache(config)
    except DataError as exc:
        if on_full == "error":
            raise
        # A missing scratch directory must not fail a job that would run fine without it.
        log.warning("SSD cache: %s; reading particles from the project directory", exc)
        return Staged("off", {}, real, stacks, idx, reason=str(exc), groups=groups)
    if groups is not None:
        _check_stacks(files, real)
    project = getattr(ctx, "project_uid", "") or ""
    if progress is None and getattr(ctx, "progress", None) is not None:
        def progress(done, total, msg):
            ctx.progress(done / total if total else 0.0, msg)
    check_cancel = getattr(ctx, "check_cancel", None)
    spec = None
    if groups is not None and subset is not False:
        try:
            uniq, inv = groups
            spec = subset_spec_grouped([real.get(p) or os.path.realpath(p) for p in uniq], inv, idx,
                                       particles_per_file)
        except DataError as exc:
            log.info("SSD cache: caching whole stacks (%s)", exc)
        if spec is not None and subset == "auto":
            frac = spec.bytes / max(spec.source_bytes, 1)
            if frac > config.subset_threshold:
                spec = None
            else:
                log.info("SSD cache: the particles used are %.0f%% of their stacks: caching only them",
                         100 * frac)
    if spec is not None:
        item = subset_item(cache, spec)
        hold = acquire(cache, [item], project=project, progress=progress, log=log,
                       check_cancel=check_cancel, on_full=on_full)
        if item.key in hold.held:
            return Staged("subset", {}, real, stacks, idx, hold, SubsetMap(spec, item.dest), groups=groups)
        hold.release()
        log.warning("SSD cache: the subset could not be cached; trying whole stacks")
    every = {it.key: it for it in (file_item(cache, p, real.get(str(p))) for p in files)}  # per real file
    # the index keeps a source's path as UTF-8 text: one that is not (Latin-1 bytes) is read where it is
    odd = [k for k in every if not is_utf8(k)]
    items = [it for k, it in every.items() if k not in odd] if odd else list(every.values())
    hold = acquire(cache, items, project=project, progress=progress, log=log,
                   check_cancel=check_cancel, on_full=on_full)
    if odd:
        why = (f"{len(odd)} files have a path that is not UTF-8 text (such as {odd[0]!r}), which the SSD cache "
               f"index cannot record; reading them from the project directory")
        log.warning("SSD cache: %s", why)
        hold.messages.append(why)
        hold.fallback.update(dict.fromkeys(odd, why))
    cached = {it.key: it.dest for it in items if it.key in hold.held}
    return Staged("files", cached, real, stacks, idx, hold, groups=groups)


def _check_stacks(files: list[Path], real: dict[str, str]) -> None:
    """Refuse to cache particle stacks whose header does not match the file (truncated, corrupt).

    A whole-file copy would otherwise cache a stack cut short and report it
    cached (issue 20 item 8): the error names the file and what is wrong, and
    nothing is copied.
    """
    for p in files:
        try:
            read_header(real.get(str(p)) or p)
        except DataError as exc:
            raise DataError(f"not caching the particles: {exc}") from None


@contextmanager
def stage(ctx, what, *, cache_on=None, config: CacheConfig | None = None, subset="auto",
          on_full: str = "fallback", progress=None, particles_per_file: int = 10000):
    """Cache the files ``what`` refers to on the SSD and hold them for the block.

    Parameters
    ----------
    ctx : JobContext or None
        Gives the params (``cache_particles``), project, log, progress and cancel.
    what : InputRef, ParticleSet, path, or a list of one of these
        A particle input (its stacks, or the subset of them it uses) or plain files.
    cache_on : bool, optional
        Overrides the job param / project default.
    config : CacheConfig, optional
        Default: ``ctx.cache_config`` if the runner set one, else this worker's.
    subset : "auto", True or False
        Pack only the particles used: when it pays off / always / never.
    on_full : "fallback" or "error"
        Not enough space: read from the project directory / raise CacheFullError.
    """
    staged = open_stage(ctx, what, cache_on=cache_on, config=config, subset=subset, on_full=on_full,
                        progress=progress, particles_per_file=particles_per_file)
    try:
        yield staged
    finally:
        staged.release()
