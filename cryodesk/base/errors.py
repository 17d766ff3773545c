"""Errors that reach the user as a clear message (never a traceback).

The CLI maps :class:`UsageError` to exit code 2 and every other
:class:`CryodeskError` to exit code 1.
"""

from __future__ import annotations


class CryodeskError(Exception):
    """Base class: ``str(err)`` is a complete sentence for the user."""


class UsageError(CryodeskError):
    """The request itself is malformed (unknown parameter, bad value, ...)."""


class NotFound(CryodeskError):
    """A project, workspace, job or file that was named does not exist."""


class Refused(CryodeskError):
    """An action was refused by a rule (final result, ancestor of final, ...)."""

    def __init__(self, uid: str, reason: str):
        super().__init__(f"{uid}: {reason}")
        self.uid = uid
        self.reason = reason


class DataError(CryodeskError):
    """A data file is missing, corrupt or inconsistent."""


class JobCancelled(CryodeskError):
    """Raised inside a running job when cancellation was requested."""


class LockedError(CryodeskError):
    """Another process holds a lock that this operation needs."""
