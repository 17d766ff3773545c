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


def require_utf8(text: str, what: str) -> str:
    """``text`` itself, or a :class:`UsageError` if it is not UTF-8 (a name the database cannot store).

    A command-line argument or file name that is not valid UTF-8 (bytes from a
    Latin-1 file system) reaches Python with its bad bytes as lone surrogates;
    the database keeps names and paths as UTF-8 text and would fail on them
    with ``UnicodeEncodeError`` (a traceback, after the directory was made).
    """
    if not is_utf8(text):
        raise UsageError(f"{what} {text!r} is not valid UTF-8 text (its bytes shown as \\udcXX); cryodesk stores "
                         f"names and paths as UTF-8: rename it")
    return text


def is_utf8(text: str) -> bool:
    """Whether ``text`` can be stored as UTF-8 (False for a name whose bad bytes became lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
