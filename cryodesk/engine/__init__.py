"""cryodesk.engine: runs jobs and long tasks (QtCore only, never QtWidgets).

:class:`Engine` (the GUI's, on QThreadPools) and
:class:`~cryodesk.engine.headless.HeadlessEngine` (``cryodesk job run``,
no Qt) share one scheduler (:mod:`cryodesk.engine.scheduler`): they queue
jobs in dependency order, run them through the Qt-free
:func:`cryodesk.core.runner.run_job`, and report progress, cancellation and
results as signals; ``submit_task`` runs any other long operation the same
way.  :func:`~cryodesk.engine.headless.run_until_idle` drives a headless
engine (CLI).

The names are loaded when first used: importing this package loads neither Qt
nor the job types, so ``cryodesk job run`` starts without them.
"""

# The built-in job types (cryodesk.jobs: numpy, the cache, ~1 s to import) are loaded when an engine
# first queues or adopts a job, not when this package is imported: the app shows its tree first.
_EXPORTS = {"Engine": ".engine", "ensure_job_types": ".scheduler", "HeadlessEngine": ".headless",
            "run_until_idle": ".headless"}

__all__ = list(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        from importlib import import_module

        return getattr(import_module(_EXPORTS[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
