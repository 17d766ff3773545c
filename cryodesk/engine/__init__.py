"""cryodesk.engine: runs jobs and long tasks on QThreadPools (QtCore only, never QtWidgets).

:class:`Engine` queues jobs in dependency order, runs them through the Qt-free
:func:`cryodesk.core.runner.run_job`, and reports progress, cancellation and
results as signals; :meth:`Engine.submit_task` runs any other long operation
the same way.  :func:`run_until_idle` drives an engine headless (CLI).
"""

# The built-in job types (cryodesk.jobs: numba kernels, ~1 s to import) are loaded when an engine
# first queues or adopts a job, not when this package is imported: the app shows its tree first.
from .engine import Engine, ensure_job_types
from .headless import run_until_idle

__all__ = ["Engine", "ensure_job_types", "run_until_idle"]
