"""What a batch action reports: one :class:`Outcome` per job (done, or refused and why)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass
class Outcome:
    uid: str
    action: str
    ok: bool
    message: str = ""
    bytes_freed: int = 0


@dataclass
class BatchResult:
    action: str
    outcomes: list[Outcome] = field(default_factory=list)
    #: ids of jobs whose stored flags changed (set by finals.set_final)
    changed_ids: list[int] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)

    @property
    def refused(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def bytes_freed(self) -> int:
        return sum(o.bytes_freed for o in self.outcomes)

    def to_dict(self) -> dict:
        return {"action": self.action, "ok": self.ok, "bytes_freed": self.bytes_freed,
                "outcomes": [asdict(o) for o in self.outcomes]}
