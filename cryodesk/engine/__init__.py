"""cryodesk.engine: runs jobs and long tasks on QThreadPools (QtCore only, never QtWidgets).

:class:`Engine` queues jobs in dependency order, runs them through the Qt-free
:func:`cryodesk.core.runner.run_job`, and reports progress, cancellation and
results as signals; :meth:`Engine.submit_task` runs any other long operation
the same way.  :func:`run_until_idle` drives an engine headless (CLI).
"""

from .. import jobs as _job_types  # noqa: F401  (registers the built-in job types)
from .engine import Engine
from .headless import run_until_idle

__all__ = ["Engine", "run_until_idle"]
