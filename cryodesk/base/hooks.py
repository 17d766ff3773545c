"""Named points where a test can widen a race window or stop a process (no-ops otherwise).

Product code marks the moments that matter (``hooks.point("deletion.rechecked",
job="J5")``); a test registers a callback for a name, e.g. one that sleeps so
that a second process can try to slip in, or one that SIGKILLs the process.
Nothing here sleeps or waits by itself.
"""

from __future__ import annotations

from typing import Callable

_HOOKS: dict[str, list[Callable[..., None]]] = {}


def point(name: str, **info) -> None:
    """Run the callbacks registered for ``name`` (none outside tests)."""
    for fn in _HOOKS.get(name, ()):
        fn(**info)


def register(name: str, fn: Callable[..., None]) -> None:
    _HOOKS.setdefault(name, []).append(fn)


def clear(name: str | None = None) -> None:
    if name is None:
        _HOOKS.clear()
    else:
        _HOOKS.pop(name, None)
