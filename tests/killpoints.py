"""Crash tests: SIGKILL this process just before its N-th chosen system call or SQL statement.

Used by the crash children (tests/cleanup/crash_child.py, tests/lifecycle/move_child.py) and by
:func:`statecheck.run_killed`: each wraps the ``os`` functions it names and the database's
``execute_sql`` with one counter, so a kill can land at any of them.
"""

from __future__ import annotations

import os
import signal


def arm(kill_at: int, calls) -> list[int]:
    """Wrap ``os.<name>`` for each name in ``calls`` and ``execute_sql``; returns the live counter."""
    from cryodesk import db as dbmod

    counter = [0]

    def wrap(owner, name):
        real = getattr(owner, name)

        def inner(*args, **kwargs):
            counter[0] += 1
            if counter[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        setattr(owner, name, inner)

    for name in calls:
        wrap(os, name)
    wrap(type(dbmod.db.obj), "execute_sql")
    return counter
