"""The figures of the Cleanup Data preview: header and one block per tab.

Every block is plain JSON (ints, floats, strings), computed from the sizes
recorded now (never from an out-of-date scan of the whole directory).
Percentages are 0-100 floats rounded to 0.1; a denominator of 0 gives 0.0.

The *scope* is what is being cleaned: the whole project (its jobs, sessions
and other files, :func:`~cryodesk.core.sizes.current_total`) or one
workspace (the recorded sizes of the jobs linked into it: a workspace has no
directory of its own).  The estimate compares with the scope, and gives the
project's figure beside it.
"""

from __future__ import annotations

from ...db.models import JOB_STATUSES, Session
from ..registry import PREPROCESSING_CATEGORIES
from ..sizes import current_total, is_stale
from . import model


def _pct(part: int, whole: int) -> float:
    return min(100.0, round(100.0 * part / whole, 1)) if whole else 0.0


def header_figures(project, snap, scope: list[int], ws, label: str | None = None) -> dict:
    """Scope, sessions (reported, never touched), job count and size on disk (current)."""
    sessions = list(Session.select(Session.size_bytes).where(Session.project == project.id).tuples())
    sessions_bytes = sum(int(s or 0) for (s,) in sessions)
    jobs_bytes = sum(snap.jobs[j].size for j in scope)
    all_jobs_bytes = sum(r.size for r in snap.jobs.values())
    known = project.size_bytes is not None
    project_now = current_total(project, all_jobs_bytes, sessions_bytes)
    if project_now is None:  # never measured: what the jobs' records say
        project_now = all_jobs_bytes + sessions_bytes
    return {
        "project": project.uid, "project_title": project.title,
        "workspace": ws.uid if ws else None, "workspace_title": ws.title if ws else None,
        "scope": label or (f"{project.uid} {ws.uid}" if ws else project.uid),
        "sessions": len(sessions), "sessions_bytes": sessions_bytes,
        "jobs": len(scope), "jobs_bytes": jobs_bytes,
        # size on disk of the scope now: the project's jobs, sessions and other files, or the
        # recorded sizes of the workspace's jobs (a workspace has no directory)
        "size_bytes": project_now if ws is None and label is None else jobs_bytes,
        "project_size_bytes": project_now,
        "measured_bytes": project.size_bytes,
        # project.json, cryodesk's state (.cryodesk: journal, trash, the deletion reserve), anything else
        "other_bytes": int(project.size_other_bytes or 0),
        "linked_bytes": project.size_linked_bytes or 0,
        "size_known": known, "size_stale": is_stale(project),
    }


def compute_tabs(project, snap, scope: list[int], plan) -> dict:
    """Estimate, Preprocessing, Intermediate, Non-final and Killed/Failed (by status) figures."""
    rows = [snap.jobs[j] for j in scope]
    total_bytes = sum(r.size for r in rows)
    total_jobs = len(rows)
    scope_bytes = plan.header["size_bytes"]
    project_bytes = plan.header["project_size_bytes"]
    freed = plan.bytes
    counts = {a: len(plan.by_action(a)) for a in ("clear", "clear_intermediate", "delete")}
    estimate = {
        "jobs_cleared": counts["clear"], "jobs_intermediate_only": counts["clear_intermediate"],
        "jobs_deleted": counts["delete"], "jobs_modified": len(plan.entries),
        "bytes_freed": freed,
        "scope": plan.header["scope"], "scope_bytes": scope_bytes, "percent_of_scope": _pct(freed, scope_bytes),
        "bytes_after": max(0, scope_bytes - freed),
        "project_bytes": project_bytes, "percent_of_project": _pct(freed, project_bytes),
        "project_bytes_after": max(0, project_bytes - freed),
        "jobs_skipped": len({s.uid for s in plan.skipped}),
    }
    affected = {e.uid: e for e in plan.entries}

    def block(members) -> dict:
        n = len(members)
        b = sum(r.size for r in members)
        hit = [affected[r.uid] for r in members if r.uid in affected]
        return {"jobs": n, "bytes": b, "percent_jobs": _pct(n, total_jobs), "percent_bytes": _pct(b, total_bytes),
                "jobs_affected": len(hit), "bytes_freed": sum(e.bytes for e in hit)}

    restack = set(model.RESTACK_TYPES)
    pre = {}
    for cat in PREPROCESSING_CATEGORIES:
        pre[cat] = {**block([r for r in rows if snap.category[r.id] == cat and r.type not in restack]),
                    "selected": cat in plan.options.preprocessing}
    pre["restack"] = {**block([r for r in rows if r.type in restack]), "selected": plan.options.restack}
    pre["non_preprocessing"] = block([r for r in rows if snap.category[r.id] not in PREPROCESSING_CATEGORIES
                                      and r.type not in restack])

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
    # every status, as the guide's tab shows them; killed and failed also carry the option chosen
    statuses = {s: block([r for r in rows if r.status == s]) for s in JOB_STATUSES}
    killed_failed = {s: {**statuses[s], "mode": getattr(plan.options, s)} for s in ("killed", "failed")}
    killed_failed["statuses"] = statuses
    return {"estimate": estimate, "preprocessing": pre, "intermediate": intermediate,
            "non_final": non_final, "killed_failed": killed_failed}
