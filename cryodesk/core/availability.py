"""Which job actions apply to which jobs, judged from what the tree already shows (Qt-free).

Menus and toolbar buttons are enabled per selection and, when disabled, say
why in their tooltip.  The judgement uses a job's status, final flags and
type only (no query: it runs on every selection change, also of 50,000 jobs),
through the same rule functions the services apply (:mod:`cryodesk.core.rules`);
the services still recheck everything when the action runs.
"""

from __future__ import annotations

from dataclasses import dataclass

from . import registry, rules

ACTIVE = ("queued", "launched", "started", "running", "waiting")
#: how many refused jobs a disabled action's tooltip names
TIP_JOBS = 3


@dataclass(frozen=True)
class JobState:
    """What the tree knows of one job (the fields the rules read, under the names they read)."""

    uid: str
    type: str
    status: str
    is_final: bool
    is_ancestor_of_final: bool

    @property
    def job_type(self):
        try:
            return registry.get(self.type)
        except Exception:  # a type whose plugin is not installed: shown, never run
            return None

    def outputs_of(self, kind: str) -> list[str]:
        t = self.job_type
        return [] if t is None else [o.name for o in t.outputs if o.type == kind]


def _run(s: JobState) -> str | None:
    t = s.job_type
    if t is None or t.run is None:
        return f"job type {s.type!r} cannot be run by cryodesk"
    if s.status in ACTIVE:
        return f"it is already {s.status}"
    if s.status != "building":
        return f"it is {s.status}; clear it before running it again"
    return None


def _rerun(s: JobState) -> str | None:
    if s.status != "building":
        return f"it is {s.status}, not cleared; clear it first"
    return _run(s)


def _kill(s: JobState) -> str | None:
    if s.status not in ACTIVE:
        return f"it is {s.status}; only queued or running jobs can be killed"
    return None


def _has_particles(s: JobState) -> str | None:
    if not s.outputs_of("particle"):
        return f"{s.type} jobs have no particle output"
    if s.status == "building":
        return f"{s.uid} has no outputs now (it was cleared, or has not run); re-run {s.uid} to regenerate them"
    if s.status in ACTIVE:
        return f"it is {s.status}; wait for it to finish"
    if s.status != "completed":
        return f"it is {s.status}: its particles are incomplete"
    return None


def _mark_final(s: JobState) -> str | None:
    if s.is_final:
        return "it is already marked as final"
    return rules.why_not_mark_final(s)


def _unmark_final(s: JobState) -> str | None:
    return None if s.is_final else "it is not marked as final"


def _clear(s: JobState) -> str | None:
    reason = rules.why_not_clear(s, readers=False)
    if reason is None and s.status == "building":
        return "it has no outputs to clear"
    return reason


RULES = {
    "mark_final": _mark_final,
    "unmark_final": _unmark_final,
    "mark_complete": rules.why_not_mark_complete,
    "clear": _clear,
    "delete": lambda s: rules.why_not_delete(s),
    "run": _run,
    "queue": _run,
    "rerun": _rerun,
    "kill": _kill,
    "warm": _has_particles,
    "next_step": _has_particles,
}


def why_not(action: str, state: JobState) -> str | None:
    """Why ``action`` does not apply to the job of ``state`` (None: it applies)."""
    return RULES[action](state)


def judge(action: str, states: list[JobState]) -> tuple[bool, str]:
    """``(enabled, reason)`` of ``action`` for a selection: enabled when it applies to at least one
    job (the others are listed with their reasons when it runs); ``reason`` says why not otherwise."""
    if not states:
        return False, "select a job first"
    reasons = []
    for s in states:
        why = why_not(action, s)
        if why is None:
            return True, ""
        reasons.append((s.uid, why))
    text = "; ".join(f"{uid}: {why}" for uid, why in reasons[:TIP_JOBS])
    if len(reasons) > TIP_JOBS:
        text += f"; and {len(reasons) - TIP_JOBS} more"
    return False, text
