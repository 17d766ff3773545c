"""A job type whose body blocks where no cancel reaches it (as a read from a FIFO or a hung mount).

Imported by tests/hostile/test_issue20_input.py and by the ``job run`` subprocess it starts.
"""

from __future__ import annotations

import threading

from cryodesk.core import registry
from cryodesk.core.registry import JobType, OutputGroup


def _stuck(ctx):
    ctx.progress(0.0, "blocked")
    threading.Event().wait()  # no cancellation point, ever


registry.register(JobType("h20_stuck", "Stuck", "utilities", outputs=(OutputGroup("particles", "particle"),),
                          run=_stuck))
