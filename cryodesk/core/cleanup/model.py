"""The cleanup plan: options in, one entry per affected job out, plus the preview figures."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ...base.errors import UsageError
from ..registry import PREPROCESSING_CATEGORIES

#: short names accepted by the CLI (``--preprocessing motion,ctf``) -> registry categories
PREPROCESSING_ALIASES = {
    "motion": "motion_correction",
    "ctf": "ctf_estimation",
    "picking": "particle_picking",
    "extraction": "extraction",
}
#: job types of the "restack jobs" option (the guide: "all pre-processing jobs (including particle
#: extraction and restack jobs)"): they write new stacks from particles that are still there, so a
#: re-run regenerates their outputs; an option of its own, off by default, not part of "all"
RESTACK_TYPES = ("restack_particles", "downsample_particles")
ACTIONS = ("clear", "clear_intermediate", "delete")
MODES = (None, "clear", "delete")


def parse_categories(text_or_list) -> tuple[str, ...]:
    """``"motion,ctf"`` or ``["motion_correction", ...]`` -> registry category names, in canonical order."""
    items = text_or_list.split(",") if isinstance(text_or_list, str) else list(text_or_list or ())
    out = set()
    for raw in items:
        name = raw.strip().lower()
        if not name:
            continue
        cat = PREPROCESSING_ALIASES.get(name, name)
        if cat == "all":
            out.update(PREPROCESSING_CATEGORIES)
            continue
        if cat not in PREPROCESSING_CATEGORIES:
            known = ", ".join(list(PREPROCESSING_ALIASES) + ["all"])
            raise UsageError(f"unknown preprocessing category {raw!r} (known: {known})")
        out.add(cat)
    return tuple(c for c in PREPROCESSING_CATEGORIES if c in out)


@dataclass(frozen=True)
class CleanupOptions:
    """What to clean up (the groups of the Cleanup Data dialog).

    ``preprocessing`` names categories; ``restack`` clears restack jobs
    (:data:`RESTACK_TYPES`); ``non_final``, ``killed`` and ``failed`` are
    ``None`` (leave alone), ``"clear"`` or ``"delete"`` (clear and delete).
    """

    preprocessing: tuple[str, ...] = ()
    intermediate: bool = False
    non_final: str | None = None
    killed: str | None = None
    failed: str | None = None
    restack: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "preprocessing", parse_categories(self.preprocessing))
        for name in ("non_final", "killed", "failed"):
            if getattr(self, name) not in MODES:
                raise UsageError(f"{name} must be 'clear' or 'delete', got {getattr(self, name)!r}")

    @property
    def empty(self) -> bool:
        return not (self.preprocessing or self.restack or self.intermediate or self.non_final or self.killed
                    or self.failed)

    def to_dict(self) -> dict:
        return {**asdict(self), "preprocessing": list(self.preprocessing)}

    @classmethod
    def from_dict(cls, d: dict) -> "CleanupOptions":
        return cls(preprocessing=tuple(d.get("preprocessing") or ()), intermediate=bool(d.get("intermediate")),
                   non_final=d.get("non_final"), killed=d.get("killed"), failed=d.get("failed"),
                   restack=bool(d.get("restack")))


@dataclass
class PlanEntry:
    """One affected job: what happens to it, what it frees, and why."""

    uid: str
    action: str  # "clear" | "clear_intermediate" | "delete"
    bytes: int
    reasons: list[str]
    category: str
    status: str
    is_final: bool = False
    is_ancestor_of_final: bool = False
    #: which option groups selected it: preprocessing, restack, intermediate, non_final, killed, failed
    options: list[str] = field(default_factory=list)
    #: other workspaces the job is linked into (workspace scope only): it is changed there too
    also_in: list[str] = field(default_factory=list)
    #: for clear_intermediate: {"group": [versions to remove]}, and {"group": last version} kept
    versions: dict = field(default_factory=dict)
    keep_last: dict = field(default_factory=dict)
    #: final results whose particle images are in this job's stacks (a clear makes them unusable)
    finals_losing_images: list[str] = field(default_factory=list)

    @property
    def number(self) -> int:
        return int(self.uid[1:])

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Skipped:
    """A job an option would have touched but the rules protect (said so in the preview)."""

    uid: str
    option: str
    reason: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class CleanupPlan:
    """Result of :func:`~cryodesk.core.cleanup.planner.plan_cleanup`.

    ``entries`` are sorted by job number; ``header`` and ``tabs`` hold the
    figures of the preview (see the package docstring for their keys).
    """

    project: str
    workspace: str | None
    options: CleanupOptions
    entries: list[PlanEntry]
    skipped: list[Skipped]
    header: dict
    tabs: dict
    created_at: str = ""
    #: what the user must know before running it (a final result losing its particle images)
    warnings: list[str] = field(default_factory=list)

    @property
    def scope(self) -> str:
        return f"{self.project} {self.workspace}" if self.workspace else self.project

    @property
    def bytes(self) -> int:
        return sum(e.bytes for e in self.entries)

    def by_action(self, action: str) -> list[PlanEntry]:
        return [e for e in self.entries if e.action == action]

    def entry(self, uid: str) -> PlanEntry | None:
        for e in self.entries:
            if e.uid == uid:
                return e
        return None

    def to_dict(self) -> dict:
        return {
            "project": self.project, "workspace": self.workspace, "scope": self.scope,
            "created_at": self.created_at, "options": self.options.to_dict(),
            "bytes": self.bytes, "header": self.header, "tabs": self.tabs,
            "entries": [e.to_dict() for e in self.entries],
            "skipped": [s.to_dict() for s in self.skipped],
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, d: dict) -> "CleanupPlan":
        """Rebuild a plan from :meth:`to_dict` output (a saved or transmitted preview)."""
        try:
            return cls(project=d["project"], workspace=d.get("workspace"),
                       options=CleanupOptions.from_dict(d.get("options") or {}),
                       entries=[PlanEntry(**e) for e in d["entries"]],
                       skipped=[Skipped(**s) for s in d.get("skipped", [])],
                       header=d.get("header") or {}, tabs=d.get("tabs") or {}, created_at=d.get("created_at", ""),
                       warnings=[str(w) for w in d.get("warnings") or []])
        except (KeyError, TypeError) as exc:
            raise UsageError(f"not a cleanup plan: {exc}") from None
