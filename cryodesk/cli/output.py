"""Printing for the CLI: tables for people, ``--json`` for scripts."""

from __future__ import annotations

import json
import sys

from ..core.units import human_bytes


def emit_json(data) -> None:
    json.dump(data, sys.stdout, indent=2, sort_keys=True, default=str)
    sys.stdout.write("\n")


def table(rows: list[list[str]], headers: list[str]) -> None:
    widths = [len(h) for h in headers]
    for r in rows:
        widths = [max(w, len(str(c))) for w, c in zip(widths, r)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip())
    for r in rows:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())


def flags(d: dict) -> str:
    if d.get("is_final"):
        return "final"
    if d.get("is_ancestor_of_final"):
        return "ancestor"
    return ""


def job_rows(descs: list[dict]) -> list[list[str]]:
    return [[d["uid"], d["type"], d["status"], flags(d), human_bytes(d["size_bytes"]),
             ",".join(d["workspaces"]), d["title"]] for d in descs]


JOB_HEADERS = ["uid", "type", "status", "flags", "size", "workspaces", "title"]


def batch(result, as_json: bool) -> int:
    """Print a batch result; exit 1 if anything was refused or failed."""
    if as_json:
        emit_json(result.to_dict())
    else:
        for o in result.outcomes:
            if o.ok:
                extra = f" ({o.message})" if o.message else ""
                freed = f", freed {human_bytes(o.bytes_freed)}" if o.bytes_freed else ""
                print(f"{o.uid}: {o.action} done{freed}{extra}")
        if result.bytes_freed:
            print(f"total freed: {human_bytes(result.bytes_freed)}")
    for o in result.refused:
        # plan-time refusals name their job ("J8 cannot be cleared: ..."); execution ones say
        # "skipped: ..." / "refused: ...": print each once, with its job
        if o.message.startswith(("skipped:", "refused:")):
            print(f"{o.uid}: {o.message}", file=sys.stderr)
        else:
            print(f"refused: {o.message}", file=sys.stderr)
    return 0 if result.ok else 1


def report_recovered(recovery) -> None:
    """Say what recovery after a crash did (it deletes and changes statuses: never silently).

    ``recovery`` is a :class:`~cryodesk.core.recovery.Recovery` (or a list of
    deletion results, as :func:`cryodesk.core.deletion.recover` returns).
    """
    results = getattr(recovery, "deletions", recovery)
    # a journal set aside is said once (one line: why, where it went), not item by item
    aside = {r.plan for r in results if r.action == "journal" and getattr(r, "plan", "")}
    for r in results:
        if getattr(r, "plan", "") in aside and r.action != "journal":
            continue
        if r.action == "journal":
            print(f"cryodesk: warning: deletion {r.message}", file=sys.stderr)
        elif r.ok:
            print(f"cryodesk: finished an interrupted deletion: {r.job} {r.action}", file=sys.stderr)
        else:
            print(f"cryodesk: warning: unfinished deletion: {r.job} {r.action}: {r.message}", file=sys.stderr)
    for job in getattr(recovery, "killed", ()):
        print(f"cryodesk: {job.uid}'s process is gone: marked killed ({job.error})", file=sys.stderr)
    fixed = getattr(recovery, "manifests", ())
    if fixed:
        print(f"cryodesk: rewrote the manifests an interrupted command left behind from the database: "
              f"{', '.join(fixed)}", file=sys.stderr)
    files = getattr(recovery, "temp_files", ())
    if files:
        shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
        print(f"cryodesk: removed {len(files)} unfinished write(s) of a process that died "
              f"({human_bytes(recovery.temp_bytes)}): {shown}", file=sys.stderr)
    for err in getattr(recovery, "errors", ()):
        print(f"cryodesk: warning: {err}", file=sys.stderr)


def recover(project):
    """Before a command writes to ``project``: finish what a process that died left (and say so)."""
    from ..core.recovery import recover_project

    report_recovered(recover_project(project))


def warn_cycles(project) -> None:
    """Say on stderr that ``project``'s job graph has a cycle (a damaged database), if it has one."""
    from ..core.graph_check import cycle_warning

    why = cycle_warning(project)
    if why:
        print(f"cryodesk: warning: {why}", file=sys.stderr)
