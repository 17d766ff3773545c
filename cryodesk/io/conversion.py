"""What a metadata conversion did: mapped, carried verbatim, not converted.

A conversion between CryoSPARC ``.cs`` fields and RELION STAR labels never
drops or reinterprets something silently: every converter fills a
:class:`ConversionReport`, and the jobs put it into their log and results.

API summary
-----------
``ConversionReport(direction)``
    ``.map(src, dst)``     converted (possibly with a unit change) to a field of the other program
    ``.carry(src, dst)``   kept verbatim under a name the other program keeps but does not read
    ``.skip(src, why, quiet=False)``  not converted, with the reason (quiet: bookkeeping, info only)
    ``.note(text)``        anything else worth knowing (groups split, defaults used)
    ``.as_dict()``         JSON-ready summary; ``.log_to(logger)`` one line each, warnings for skips
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

__all__ = ["ConversionReport"]


@dataclass
class ConversionReport:
    """Record of one conversion (see module doc)."""

    direction: str
    mapped: dict[str, str] = field(default_factory=dict)
    carried: dict[str, str] = field(default_factory=dict)
    skipped: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    quiet: set[str] = field(default_factory=set)

    def map(self, src: str, dst: str) -> None:
        self.mapped[src] = dst

    def carry(self, src: str, dst: str) -> None:
        self.carried[src] = dst

    def skip(self, src: str, why: str, quiet: bool = False) -> None:
        """``quiet``: bookkeeping without meaning for the other program (listed, logged as info)."""
        self.skipped[src] = why
        if quiet:
            self.quiet.add(src)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def as_dict(self) -> dict:
        return {"direction": self.direction, "mapped": dict(self.mapped), "carried": dict(self.carried),
                "not_converted": dict(self.skipped), "notes": list(self.notes)}

    def log_to(self, log: logging.Logger | logging.LoggerAdapter, what: str = "") -> None:
        """One info line for what was mapped/carried, one warning per field not converted."""
        head = f"{what}: " if what else ""
        log.info("%s%s: %d mapped (%s)", head, self.direction, len(self.mapped),
                 "; ".join(f"{k} -> {v}" for k, v in self.mapped.items()))
        if self.carried:
            log.info("%skept verbatim: %s", head, ", ".join(f"{k} as {v}" for k, v in self.carried.items()))
        for name, why in self.skipped.items():
            (log.info if name in self.quiet else log.warning)("%snot converted: %s (%s)", head, name, why)
        for text in self.notes:
            log.warning("%s%s", head, text)
