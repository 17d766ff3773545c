"""Plan a cleanup: which job gets cleared, loses its intermediate results, or is deleted, and why.

The rules (CryoSPARC Data Cleanup guide, and cryodesk's own promises):

* a **final** job is never touched by any option;
* an **ancestor of final** may be cleared by *clear preprocessing jobs* and
  *restack jobs* (it can be re-run to regenerate its outputs) and loses its
  intermediate results like any other job (the guide: only final jobs keep
  theirs; versions a downstream job reads are kept); it is never deleted, and
  the plan says so for each such job;
* a job is **deleted** only when every descendant (in the whole project, not
  just the scope) is deleted with it; otherwise it is cleared instead, and
  the plan names the descendants that kept it;
* a job that is running (or queued), or whose descendant at any depth is, is
  left alone: a grandchild reads its stacks too (a selection points into the
  extraction's files);
* clearing a job whose stacks a final result reads is allowed (it can be
  re-run), but the plan names each final result that loses its particle images
  and how to restack it (``warnings``);
* intermediate results are every version but the last of each output group,
  except versions another job reads as its input;
* *killed* / *failed* mean the status now: "mark as complete" takes a job out
  of those groups.

Planning reads the database (recorded sizes, bulk queries) and, for each job it
would clear, the sizes of the two entries a clear keeps (the directory and its
``job.json``: two ``lstat`` calls); it never walks a directory.
"""

from __future__ import annotations

from pathlib import Path

from ...db.models import utcnow
from ..projects import get_project, get_workspace
from ..registry import PREPROCESSING_CATEGORIES
from ..sizes import clear_keeps_bytes
from . import model
from . import snapshot as snap_mod
from .model import CleanupOptions, CleanupPlan, PlanEntry, Skipped
from .stats import compute_tabs, header_figures

_RANK = {"clear_intermediate": 1, "clear": 2, "delete": 3}


def _label(category: str) -> str:
    return category.replace("_", " ")


class _Wants:
    """What the options ask for each job, before the delete feasibility check."""

    def __init__(self):
        self.action: dict[int, str] = {}
        self.reasons: dict[int, list[str]] = {}
        self.options: dict[int, list[str]] = {}
        self.versions: dict[int, dict] = {}

    def add(self, jid: int, action: str, option: str, reason: str) -> None:
        if _RANK[action] > _RANK.get(self.action.get(jid, ""), 0):
            self.action[jid] = action
        self.reasons.setdefault(jid, []).append(reason)
        if option not in self.options.setdefault(jid, []):
            self.options[jid].append(option)


def _active_child(snap, jid: int) -> str | None:
    """A queued or running job reading what ``jid`` made, at any depth (a grandchild reads its stacks too)."""
    found = snap.active_readers().get(jid)
    if found is None:
        return None
    row, via = snap.jobs[found[0]], found[1]
    if via is None:
        return f"{row.uid} is {row.status} and reads its outputs"
    return f"{row.uid} is {row.status} and reads what was made from its outputs (through {snap.jobs[via].uid})"


#: jobs that write particle images (stacks) of their own: jobs below read their images from these files
IMAGE_CATEGORIES = ("extraction",)


def _writes_images(snap, jid: int) -> bool:
    return (snap.category[jid] in IMAGE_CATEGORIES or snap.jobs[jid].type in model.RESTACK_TYPES
            or jid in snap.copied_stacks)  # an export that copied its stacks reads nothing of its parents'


def finals_reading_images(snap, jid: int) -> list[str]:
    """Final jobs whose particle images are in the stacks of ``jid`` (an extraction or restack job).

    Every descendant reached without passing a job that writes stacks of its own (a
    restack, another extraction): a selection, a classification, a refinement keep
    pointing into the stacks they were given.  Empty for a job that writes no stacks.
    """
    if not _writes_images(snap, jid):
        return []
    out, seen, stack = [], {jid}, list(snap.children.get(jid, ()))
    while stack:
        k = stack.pop()
        if k in seen or _writes_images(snap, k):
            continue
        seen.add(k)
        if snap.jobs[k].is_final:
            out.append(snap.jobs[k].uid)
        stack.extend(snap.children.get(k, ()))
    return sorted(out, key=lambda u: int(u[1:]))


def finals_losing_images(project, job) -> list[str]:
    """:func:`finals_reading_images` from the database (a few queries, one per level): for ``job clear``."""
    from ...db.models import Connection, Job

    def writes(type_name: str) -> bool:
        return type_name in model.RESTACK_TYPES or snap_mod._category(type_name, cats) in IMAGE_CATEGORIES

    cats: dict[str, str] = {}
    if not writes(job.type):
        return []
    out, seen, frontier = [], {job.id}, [job.id]
    while frontier:
        level = []
        for i in range(0, len(frontier), 900):
            level += list(Job.select(Job.id, Job.number, Job.type, Job.is_final)
                          .join(Connection, on=(Connection.child == Job.id))
                          .where(Connection.parent.in_(frontier[i:i + 900])).tuples())
        frontier = []
        copies = snap_mod.copied_stacks(job.project_id, {jid for jid, _, t, _ in level if t in snap_mod.COPYING_TYPES})
        for jid, number, type_name, final in level:
            if jid in seen or writes(type_name) or jid in copies:
                continue
            seen.add(jid)
            if final:
                out.append(f"J{number}")
            frontier.append(jid)
    return sorted(set(out), key=lambda u: int(u[1:]))


def image_warning(project_uid: str, final_uid: str, cleared: list[str], what: str = "this cleanup",
                  final_type: str = "") -> str:
    if final_type in snap_mod.COPYING_TYPES:  # its stacks are links: a restack of it has no .cs to read (RELION)
        keep = ("export its particles again with their stacks copied first (the parameter copy_stacks=true; "
                "this export links them)")
    else:
        keep = f"restack it first: {restack_hint(project_uid, final_uid)}"
    return (f"final result {final_uid} loses its particle images: they are in the stacks of {', '.join(cleared)}, "
            f"which {what} clears; {final_uid} cannot be used (nor re-run) until "
            f"{'it is' if len(cleared) == 1 else 'they are'} re-run. To keep {final_uid} usable, {keep}")


def restack_hint(project_uid: str, final_uid: str) -> str:
    return f"cryodesk job create {project_uid} restack_particles -i particles={final_uid}"


def _protected(row, snap, option: str, allow_ancestor: bool = False) -> str | None:
    if row.is_final:
        return "it is marked as a final result"
    if row.is_ancestor and not allow_ancestor:
        return "it is an ancestor of a final result (only clearing preprocessing or restack jobs touches those)"
    if row.active:
        return f"it is {row.status}"
    return _active_child(snap, row.id)


def plan_cleanup(project, options: CleanupOptions, workspace=None, jobs=None) -> CleanupPlan:
    """Plan a cleanup of ``project`` (or of one ``workspace``: jobs linked into it count; or of ``jobs``).

    Parameters
    ----------
    project : Project or str
        The project (``"P1"`` or the model).
    options : CleanupOptions
        Which groups to clean up and how.
    workspace : Workspace, str or None
        Limit the scope to the jobs linked into this workspace.
    jobs : list of Job or uid, optional
        Limit the scope to these jobs (the job level of the guide's Actions menu).

    Returns
    -------
    CleanupPlan
        Entries per affected job, protected jobs in ``skipped``, preview figures.
    """
    project = get_project(project)
    if (project.kind or "cryodesk") != "cryodesk":  # (issue 16) their own rules and tools, said plainly
        from ...base.errors import UsageError

        raise UsageError(
            f"{project.uid} is a RELION project: clean it with RELION's rules ('cryodesk relion clean "
            f"{project.uid} --preprocessing --intermediate --failed --trash --dry-run')"
            if project.kind == "relion" else
            f"{project.uid} is managed by CryoSPARC — read-only: 'cryodesk cryosparc preview {project.uid}' shows "
            "what CryoSPARC's Cleanup Data would free")
    ws = get_workspace(project, workspace) if workspace is not None else None
    snap = snap_mod.load(project)
    if ws is None:
        scope = sorted(snap.jobs, key=lambda j: snap.jobs[j].number)
    else:
        scope = sorted((j for j, w in snap.workspaces.items() if ws.number in w and j in snap.jobs),
                       key=lambda j: snap.jobs[j].number)
    label = None
    if jobs is not None:
        from ..jobs import get_jobs

        chosen = {j.id for j in get_jobs(project, jobs)}
        scope = [j for j in scope if j in chosen]
        label = f"{project.uid}{' ' + ws.uid if ws else ''} " + " ".join(snap.jobs[j].uid for j in scope)
    wants = _Wants()
    skipped: list[Skipped] = []

    def skip(row, option, reason):
        skipped.append(Skipped(row.uid, option, reason))

    cats = set(options.preprocessing)
    restack = set(model.RESTACK_TYPES) if options.restack else set()
    for jid in scope:
        row = snap.jobs[jid]
        cat = snap.category[jid]
        option = "restack" if row.type in restack else "preprocessing" if cat in cats else None
        if option and row.status != "building":
            why = _protected(row, snap, option, allow_ancestor=True)
            if why:
                skip(row, option, why)
            else:
                what = "restack job" if option == "restack" else f"preprocessing ({_label(cat)})"
                reason = f"{what}: can be re-run to regenerate its outputs"
                if row.is_ancestor:
                    reason += "; it is an ancestor of a final result, which the guide allows to clear (not delete)"
                wants.add(jid, "clear", option, reason)
        if options.intermediate and jid in snap.intermediate:
            _want_intermediate(snap, row, wants, skip)
        neither = not row.is_final and not row.is_ancestor
        if options.non_final and neither:
            _want_mode(snap, row, options.non_final, "non_final", "not final and not an ancestor of final", wants, skip)
        for status in ("killed", "failed"):
            mode = getattr(options, status)
            if mode and row.status == status:
                _want_mode(snap, row, mode, status, f"{status} job", wants, skip)

    entries = _resolve(snap, wants, ws, Path(project.directory))
    plan = CleanupPlan(project.uid, ws.uid if ws else None, options, entries, skipped, {}, {},
                       utcnow().isoformat(timespec="seconds"), _image_warnings(snap, project.uid, entries))
    plan.header = header_figures(project, snap, scope, ws, label)
    plan.tabs = compute_tabs(project, snap, scope, plan)
    return plan


def _image_warnings(snap, project_uid: str, entries: list[PlanEntry]) -> list[str]:
    """Per final result that loses its particle images: which clear takes them, and how to keep them.

    The guide lets preprocessing of an ancestor of final be cleared (it can be
    re-run); the user must still be told that the final result cannot be used
    until then, and that a restack keeps it usable.
    """
    ids = {row.uid: jid for jid, row in snap.jobs.items()}
    lost: dict[str, list[str]] = {}
    for e in entries:
        if e.action != "clear":
            continue
        e.finals_losing_images = finals_reading_images(snap, ids[e.uid])
        if e.finals_losing_images:
            e.reasons.append(f"final result(s) {', '.join(e.finals_losing_images)} read their particle images "
                             "from its stacks: unusable until it is re-run (restack them first to keep them)")
        for f in e.finals_losing_images:
            lost.setdefault(f, []).append(e.uid)
    types = {row.uid: row.type for row in snap.jobs.values() if row.uid in lost}
    return [image_warning(project_uid, f, by, final_type=types.get(f, ""))
            for f, by in sorted(lost.items(), key=lambda kv: int(kv[0][1:]))]


def _want_intermediate(snap, row, wants: _Wants, skip) -> None:
    versions = snap.intermediate[row.id]
    used = snap.used_versions.get(row.id, set())
    # the guide clears intermediate results of every job in scope, ancestors of final included
    why = _protected(row, snap, "intermediate", allow_ancestor=True)
    if why:
        skip(row, "intermediate", why)
        return
    drop: dict[str, list[int]] = {}
    kept = []
    for (group, v) in sorted(versions):
        if (group, v) in used:
            kept.append(f"{group} v{v}")
        else:
            drop.setdefault(group, []).append(v)
    if not drop:
        skip(row, "intermediate", "every intermediate version is read by another job")
        return
    reason = "intermediate results: every version but the last"
    if kept:
        reason += f" (keeps {', '.join(kept)}: other jobs read them)"
    wants.add(row.id, "clear_intermediate", "intermediate", reason)
    wants.versions[row.id] = drop


def _want_mode(snap, row, mode: str, option: str, what: str, wants: _Wants, skip) -> None:
    why = _protected(row, snap, option)
    if why:
        skip(row, option, why)
    elif mode == "delete":
        wants.add(row.id, "delete", option, f"{what}: clear and delete")
    elif row.status != "building":  # a building job has nothing to clear
        wants.add(row.id, "clear", option, f"{what}: clear")


def _resolve(snap, wants: _Wants, ws, pdir: Path) -> list[PlanEntry]:
    want_delete = {j for j, a in wants.action.items() if a == "delete"}
    can_delete = snap_mod.deletable(snap, want_delete)
    entries = []
    for jid in sorted(wants.action, key=lambda j: snap.jobs[j].number):
        row = snap.jobs[jid]
        action = wants.action[jid]
        reasons = list(wants.reasons[jid])
        if action == "delete" and jid not in can_delete:
            keepers = _blocking_descendants(snap, jid, can_delete)
            reasons.append("cleared instead of deleted: descendants not deleted with it: " + ", ".join(keepers))
            action = "clear"
            if row.status == "building":
                continue  # nothing on disk to clear
        also = [f"W{w}" for w in snap.workspaces.get(jid, []) if ws is None or w != ws.number]
        if ws is not None and also:
            reasons.append(f"also linked into {', '.join(also)}: the change shows there too")
        entry = PlanEntry(uid=row.uid, action=action, bytes=0, reasons=reasons, category=snap.category[jid],
                          status=row.status, is_final=row.is_final, is_ancestor_of_final=row.is_ancestor,
                          options=wants.options[jid], also_in=also if ws is not None else [])
        if action == "clear_intermediate":
            entry.versions = wants.versions[jid]
            entry.keep_last = dict(snap.last_version.get(jid, {}))
            inter = snap.intermediate[jid]
            entry.bytes = sum(inter[(g, v)] for g, vs in entry.versions.items() for v in vs)
        elif action == "clear":  # the directory's own entry and job.json stay (two lstat calls)
            entry.bytes = max(0, row.size - clear_keeps_bytes(pdir / row.uid))
        else:
            entry.bytes = row.size
        entries.append(entry)
    return entries


def _blocking_descendants(snap, jid: int, can_delete: set[int], limit: int = 5) -> list[str]:
    out, seen, stack = [], set(), list(snap.children.get(jid, ()))
    while stack and len(out) < limit:
        k = stack.pop()
        if k in seen:
            continue
        seen.add(k)
        if k not in can_delete:
            out.append(snap.jobs[k].uid)
        stack.extend(snap.children.get(k, ()))
    return sorted(out, key=lambda u: int(u[1:])) or ["?"]


def plan_clear_intermediate(project, jobs=None, workspace=None) -> CleanupPlan:
    """The Actions menu's *Clear intermediate results* of ``jobs``, a ``workspace`` or the project.

    Every job in scope keeps the last version of each output group and the
    versions another job reads; a final job keeps everything (it is listed in
    ``skipped``).  Run the plan with :func:`~cryodesk.core.cleanup.execute_cleanup`.
    """
    return plan_cleanup(project, CleanupOptions(intermediate=True), workspace, jobs)


__all__ = ["plan_cleanup", "plan_clear_intermediate", "PREPROCESSING_CATEGORIES"]
