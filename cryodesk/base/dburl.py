"""Database URLs: parsed without ever showing their password, even when they are malformed.

``postgresql://user:password@host:port/dbname?sslmode=require`` — the password is
percent-decoded as libpq does, and may also hold ``#``, ``?``, ``/`` or ``@`` unencoded
(the user info ends at the *last* ``@`` before the host).  Every place cryodesk shows a
URL (errors, self-test, logs, lock files, lane scripts' echo) goes through :func:`redact`.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, unquote

from .errors import UsageError

SCHEMES = ("postgres://", "postgresql://")
MASK = "***"

_HOST_PART = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[^:/?#\[\]@]*)(?::(?P<port>[^/?#]*))?"
                        r"(?P<path>/[^?#]*)?(?:\?(?P<query>[^#]*))?(?:#.*)?$")


def is_server_url(url: str) -> bool:
    return url.startswith(SCHEMES)


def _names_database(rest: str) -> bool:
    m = _HOST_PART.match(rest)
    return bool(m and (m.group("path") or "").strip("/"))


def _split(url: str) -> tuple[str, str | None, str | None, str]:
    """``(scheme, user, password, rest)`` of a ``scheme://...`` URL (user/password still encoded)."""
    scheme, _, body = url.partition("://")
    # the user info ends at the last "@" that a host and a database name follow: a password may hold "@"
    ats = [i for i, ch in enumerate(body) if ch == "@"]
    if not ats:
        return scheme, None, None, body
    at = next((i for i in reversed(ats) if _names_database(body[i + 1:])), ats[-1])
    info, rest = body[:at], body[at + 1:]
    user, sep, password = info.partition(":")
    return scheme, user, (password if sep else None), rest


def has_password(url: str) -> bool:
    """Whether ``url`` carries a password (a file written with it must be the owner's only)."""
    return "://" in url and _split(url)[2] is not None


def redact(url: str) -> str:
    """``url`` with its password replaced by ``***`` (a path, or a URL without one, unchanged)."""
    if "://" not in url:
        return url
    scheme, user, password, rest = _split(url)
    rest = _mask_port(rest)  # "postgresql://alice:S3cret/db" (the "@host" forgotten): the "port" is a password
    if user is None:
        return f"{scheme}://{rest}"
    return f"{scheme}://{user}{':' + MASK if password is not None else ''}@{rest}"


def _mask_port(rest: str) -> str:
    """``host:port/name...`` with a port that is not a number masked (with the "@" forgotten it is a password)."""
    m = _HOST_PART.match(rest)
    if m is None:
        return MASK
    port = m.group("port")
    if port is None or port.isdigit():
        return rest
    return f"{m.group('host')}:{MASK}{rest[m.end('port'):]}"


def parse_pg_url(url: str) -> dict:
    """Connection arguments of a PostgreSQL URL; :class:`UsageError` (password never shown) if malformed."""
    shown = redact(url)
    _, user, password, rest = _split(url)
    m = _HOST_PART.match(rest)
    if m is None:
        raise UsageError(f"malformed database URL {shown}: expected postgresql://user:password@host:port/name")
    database = unquote((m.group("path") or "/").lstrip("/"))
    if not database or "/" in database:
        raise UsageError(f"database URL {shown} names no database (postgresql://user:password@host:port/NAME)")
    out: dict = {"database": database}
    if user:
        out["user"] = unquote(user)
    if password is not None:
        out["password"] = unquote(password)
    host = m.group("host")
    if host:
        out["host"] = unquote(host.strip("[]"))
    port = m.group("port")
    if port:
        if not port.isdigit() or not 0 < int(port) < 65536:
            # not echoed: with the "@" forgotten, what looks like a port is the password
            raise UsageError(f"database URL {shown}: the port is not a number from 1 to 65535 "
                             "(a password with ':', '/', '#' or '?' can also be written percent-encoded)")
        out["port"] = int(port)
    for key, value in parse_qsl(m.group("query") or "", keep_blank_values=True):
        if key in ("password", "user", "host", "port", "database", "dbname"):
            raise UsageError(f"database URL {shown}: give {key} in the URL itself, not as ?{key}=")
        out[key] = value
    return out
