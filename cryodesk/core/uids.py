"""Parsing of user-facing identifiers: ``P3``, ``W2``, ``J17``, ``S1``, ``E4`` (an exposure of a live session)."""

from __future__ import annotations

import re

from ..base.errors import UsageError

#: the largest uid number (a 32-bit database integer)
MAX_NUMBER = 2**31 - 1
_UID = re.compile(r"^\s*([PWJSE]?)([0-9]+)\s*$", re.IGNORECASE | re.ASCII)


def parse_uid(text: str | int, prefix: str) -> int:
    """Return the number in ``text`` (``"J17"``, ``"j17"`` or ``"17"``) for a uid of kind ``prefix``."""
    if isinstance(text, int):
        if not 1 <= text <= MAX_NUMBER:
            raise UsageError(f"no such identifier {prefix}{text}")
        return text
    m = _UID.match(str(text))
    if not m or (m.group(1) and m.group(1).upper() != prefix):
        raise UsageError(f"expected a {prefix}<number> identifier, got {text!r}")
    number = int(m.group(2))
    if number < 1:
        raise UsageError(f"identifiers start at {prefix}1, got {text!r}")
    if number > MAX_NUMBER:  # no database integer column holds more
        raise UsageError(f"no such identifier {text!r}: {prefix} numbers go up to {MAX_NUMBER:,}")
    return number


def parse_input_spec(spec: str) -> tuple[str, str, str | None, int | None]:
    """Parse ``NAME=J3[.OUTPUT][@VERSION]`` into ``(slot, parent_uid, output, version)``."""
    if "=" not in spec:
        raise UsageError(f"input must be NAME=J<n>[.OUTPUT][@VERSION], got {spec!r}")
    slot, _, ref = spec.partition("=")
    version = None
    if "@" in ref:
        ref, _, ver = ref.partition("@")
        try:
            version = int(ver)
        except ValueError:
            raise UsageError(f"version must be an integer in {spec!r}") from None
        if not 0 <= version < 2**31:
            raise UsageError(f"version out of range in {spec!r}")
    parent, _, output = ref.partition(".")
    parse_uid(parent, "J")
    if not slot.strip():
        raise UsageError(f"input slot name missing in {spec!r}")
    return slot.strip(), parent.strip().upper(), (output.strip() or None), version


def parse_assignment(text: str) -> tuple[str, str]:
    """Parse ``KEY=VALUE``."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"expected KEY=VALUE, got {text!r}")
    return key.strip(), value
