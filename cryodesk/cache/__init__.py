"""SSD particle cache (Qt-free).  API summary for jobs, the CLI and the GUI panel.

Jobs
----
``CACHE_PARAM``
    ``Param("cache_particles", None, "bool")``: put it in every job type that
    reads particles.  ``None`` = the project default, else on.
``with stage(ctx, what, cache_on=None, subset="auto", on_full="fallback") as staged:``
    ``what``: an ``InputRef`` (particles input), a list of them, a ``ParticleSet``,
    or plain file paths.  Copies what is needed to the SSD (threads, progress in
    bytes through ``ctx.progress``), waits for files another job is copying,
    and holds the entries (never evicted) until the block ends.
    ``staged.path_for(original)`` → path to read a whole file from;
    ``staged.locate(original, i)`` → ``(path, index)``;
    ``staged.read_particle(original, i)`` → image; ``staged.read_particles(rows=None)``
    → images of the staged particle set in dataset order;
    ``staged.particle_locations()`` → (paths, indices) per particle;
    ``staged.mode`` (``"off" | "files" | "subset"``), ``staged.stats()``.
    Results are identical with caching on or off: only where bytes come from changes.
``open_stage(...)`` → ``Staged`` (call ``release()``): the same without ``with``.

Configuration and status (GUI cache panel)
------------------------------------------
``resolve_config(worker=None) -> CacheConfig``  the worker's settings (environment > worker row >
    user > default; ``source``/``sources`` say which level each came from)
    (``ssd_path, quota_bytes, reserve_bytes, threads, lifetime_days, subset_threshold, usable``).
``Cache(config)``:
    ``.status() -> dict`` keys ``worker, path, quota_bytes, reserve_bytes, used_bytes,
    held_bytes, disk_free_bytes, disk_total_bytes, available_bytes, entries,
    by_project {P: {entries, bytes}}, locks [{key, kind, pid, mode, bytes}],
    lifetime_days, threads``;
    ``.clear(project=None) -> {removed, bytes_freed, held_skipped}``;
    ``.purge_expired() -> bytes freed``.
``connect_worker(name, ssd_path=, quota_mb=, reserve_mb=, no_ssd=, update=)``,
``list_workers()``, ``worker_dict(w)``, ``set_project_default(project, key, value, unset=False)``
    (database writes; call inside a DB connection).
``estimate_formula(n, box, nsymbt=128, header=1024)`` (the guide's formula; ``describe_formula`` prints it), ``estimate_particles(pset) -> dict``,
``estimate_job_output(project, "J7") -> dict`` (exact, with ``auto_mode``).
``warm_job_output(project, "J7", subset="auto", progress=cb(fraction, msg), cancel_event=ev)``
    → stats dict; fits ``Engine.submit_task`` through ``functools.partial``.
``CacheFullError`` (a ``DataError``): not enough space and nothing evictable (message has the numbers).
``WAIT_MESSAGE``: the text logged/progressed while waiting for another job's copy.

Long calls (``stage``, ``clear``, ``status`` on a big cache) do file I/O: run them
in a worker thread, not on the GUI thread.
"""

from .acquire import WAIT_MESSAGE, Holding
from .config import CacheConfig, resolve_config, worker_name
from .copy import CacheFullError
from .estimate import estimate_formula, estimate_particles
from .service import estimate_job_output, warm_job_output
from .staging import CACHE_PARAM, Staged, cache_enabled, open_stage, stage
from .store import Cache
from .workers import connect_worker, list_workers, set_project_default, worker_dict

__all__ = ["CACHE_PARAM", "Cache", "CacheConfig", "CacheFullError", "Holding", "Staged", "WAIT_MESSAGE",
           "cache_enabled", "connect_worker", "estimate_formula", "estimate_job_output", "warm_job_output", "estimate_particles", "list_workers",
           "open_stage", "resolve_config", "set_project_default", "stage", "worker_dict", "worker_name"]
