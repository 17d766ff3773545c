"""The figures of the Cleanup Data preview: header and one block per tab.

Every block is plain JSON (ints, floats, strings), computed from recorded
sizes.  Percentages are 0-100 floats rounded to 0.1; a denominator of 0
gives 0.0.
"""

from __future__ import annotations

from ...db.models import Session
from ..registry import PREPROCESSING_CATEGORIES
from ..sizes import is_stale


def _pct(part: int, whole: int) -> float:
    return round(100.0 * part / whole, 1) if whole else 0.0


def header_figures(project, snap, scope: list[int], ws) -> dict:
    """Scope, sessions (reported, never touched), job count and size on disk."""
    sessions = list(Session.select(Session.size_bytes).where(Session.project == project.id).tuples())
    jobs_bytes = sum(snap.jobs[j].size for j in scope)
    all_jobs_bytes = sum(r.size for r in snap.jobs.values())
    known = project.size_bytes is not None
    return {
        "project": project.uid, "project_title": project.title,
        "workspace": ws.uid if ws else None, "workspace_title": ws.title if ws else None,
        "scope": f"{project.uid} {ws.uid}" if ws else project.uid,
        "sessions": len(sessions), "sessions_bytes": sum(int(s or 0) for (s,) in sessions),
        "jobs": len(scope), "jobs_bytes": jobs_bytes,
        # size on disk: the scanned project directory for the project scope,
        # the recorded job sizes for a workspace (a workspace has no directory)
        "size_bytes": (project.size_bytes if known else all_jobs_bytes) if ws is None else jobs_bytes,
        "project_size_bytes": project.size_bytes if known else None,
        "linked_bytes": project.size_linked_bytes or 0,
        "size_known": known, "size_stale": is_stale(project),
    }


def compute_tabs(project, snap, scope: list[int], plan) -> dict:
    """Estimate, Preprocessing, Intermediate, Non-final and Killed/Failed figures."""
    rows = [snap.jobs[j] for j in scope]
    total_bytes = sum(r.size for r in rows)
    total_jobs = len(rows)
    base = project.size_bytes if project.size_bytes else sum(r.size for r in snap.jobs.values())
    freed = plan.bytes
    counts = {a: len(plan.by_action(a)) for a in ("clear", "clear_intermediate", "delete")}
    estimate = {
        "jobs_cleared": counts["clear"], "jobs_intermediate_only": counts["clear_intermediate"],
        "jobs_deleted": counts["delete"], "jobs_modified": len(plan.entries),
        "bytes_freed": freed, "percent_of_project": _pct(freed, base), "project_bytes": base,
        "bytes_after": max(0, base - freed), "jobs_skipped": len({s.uid for s in plan.skipped}),
    }
    affected = {e.uid: e for e in plan.entries}

    def block(members) -> dict:
        n = len(members)
        b = sum(r.size for r in members)
        hit = [affected[r.uid] for r in members if r.uid in affected]
        return {"jobs": n, "bytes": b, "percent_jobs": _pct(n, total_jobs), "percent_bytes": _pct(b, total_bytes),
                "jobs_affected": len(hit), "bytes_freed": sum(e.bytes for e in hit)}

    pre = {}
    for cat in PREPROCESSING_CATEGORIES:
        pre[cat] = {**block([r for r in rows if snap.category[r.id] == cat]),
                    "selected": cat in plan.options.preprocessing}
    pre["non_preprocessing"] = block([r for r in rows if snap.category[r.id] not in PREPROCESSING_CATEGORIES])

    inter_rows = [r for r in rows if r.id in snap.intermediate]
    inter_bytes = sum(sum(snap.intermediate[r.id].values()) for r in inter_rows)
    inter_entries = [e for e in plan.entries if "intermediate" in e.options]
    intermediate = {
        "jobs_with_intermediate": len(inter_rows), "intermediate_bytes": inter_bytes,
        "percent_of_jobs_bytes": _pct(inter_bytes, total_bytes),
        "jobs_affected": len(inter_entries),
        "bytes_freed": sum(e.bytes for e in inter_entries if e.action == "clear_intermediate"),
        "jobs": [{"uid": r.uid, "intermediate_bytes": sum(snap.intermediate[r.id].values()),
                  "versions": len(snap.intermediate[r.id]), "size_bytes": r.size} for r in inter_rows],
    }
    non_final = {
        "final": block([r for r in rows if r.is_final]),
        "ancestor_of_final": block([r for r in rows if r.is_ancestor and not r.is_final]),
        "neither": block([r for r in rows if not r.is_final and not r.is_ancestor]),
        "mode": plan.options.non_final,
    }
    killed_failed = {s: {**block([r for r in rows if r.status == s]), "mode": getattr(plan.options, s)}
                     for s in ("killed", "failed")}
    return {"estimate": estimate, "preprocessing": pre, "intermediate": intermediate,
            "non_final": non_final, "killed_failed": killed_failed}
