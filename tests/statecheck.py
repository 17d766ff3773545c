"""Issue 20 helpers: do the database and every manifest agree? and a forked CLI child killed at a chosen call.

:func:`disagreements` compares, for every job of a project, the database row
with its ``job.json`` (final flag, status, params, outputs, workspaces,
inputs), ``project.json``'s job counter, and lists job directories the
database does not know (an orphan ``J13/`` of a failed create).

:func:`run_killed` forks this (already imported) test process and runs one
``cryodesk`` CLI command in the child, after wrapping the file-system calls
that change state (``os.replace``, ``os.rename``, ``os.unlink``, ``os.rmdir``,
``os.mkdir``, ``os.fsync``) and the database's ``execute_sql``: the child
SIGKILLs itself just before the ``kill_at``-th such call (0: never; returns
how many calls the command made).  Forking (not a fresh interpreter) keeps a
case at ~20 ms, so a crash test can try many points in a few seconds.
"""

from __future__ import annotations

import io
import json
import os
import re
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

from killpoints import arm

from cryodesk.db.models import Connection, Job, JobWorkspace, OutputFile, Project, Workspace

CALLS = ("replace", "rename", "unlink", "rmdir", "mkdir", "fsync")


def disagreements(project) -> list[str]:
    """Every way the database and the project's manifests disagree (empty: they agree)."""
    project = Project.get_by_id(project.id)
    pdir = Path(project.directory)
    out = []
    try:
        pdoc = json.loads((pdir / "project.json").read_text())
        if pdoc.get("next_job_number") != project.next_job_number:
            out.append(f"project.json next_job_number {pdoc.get('next_job_number')} != db {project.next_job_number}")
        ws_db = sorted(f"W{w.number}" for w in Workspace.select().where(Workspace.project == project))
        if sorted(w["uid"] for w in pdoc.get("workspaces", [])) != ws_db:
            out.append(f"project.json workspaces {pdoc.get('workspaces')} != db {ws_db}")
    except (OSError, ValueError) as exc:
        out.append(f"project.json unreadable: {exc}")
    jobs = {j.uid: j for j in Job.select().where(Job.project == project)}
    for uid, j in sorted(jobs.items()):
        try:
            doc = json.loads((pdir / j.directory / "job.json").read_text())
        except (OSError, ValueError) as exc:
            out.append(f"{uid}: job.json unreadable: {exc}")
            continue
        outs = sorted((f.group, f.version, f.path) for f in OutputFile.select().where(OutputFile.job == j))
        ws = sorted(f"W{w.number}" for w in Workspace.select().join(JobWorkspace).where(JobWorkspace.job == j))
        ins = sorted((c.slot, f"J{c.parent.number}", c.output, c.version)
                     for c in Connection.select().where(Connection.child == j))
        have = {"is_final": doc.get("is_final"), "status": doc.get("status"), "params": doc.get("params"),
                "outputs": sorted((o["group"], o["version"], o["path"]) for o in doc.get("outputs", [])),
                "workspaces": sorted(doc.get("workspaces", [])),
                "inputs": sorted((c["slot"], c["parent"], c["output"], c["version"]) for c in doc.get("inputs", []))}
        want = {"is_final": bool(j.is_final), "status": j.status, "params": j.params,
                "outputs": [tuple(o) for o in outs], "workspaces": ws, "inputs": ins}
        have["outputs"] = [tuple(o) for o in have["outputs"]]
        have["inputs"] = [tuple(c) for c in have["inputs"]]
        for key in want:
            if have[key] != want[key]:
                out.append(f"{uid}: {key}: job.json {have[key]!r} != db {want[key]!r}")
        for _, _, path in outs:  # nothing lost: what the database lists is there
            if j.status == "completed" and not (pdir / path).exists():
                out.append(f"{uid}: output {path} is missing")
    for d in pdir.iterdir():
        if re.fullmatch(r"J\d+", d.name) and d.name not in jobs:
            out.append(f"{d.name}/ exists but the database has no {d.name}")
    return out


_PARSER = []
#: a forked child keeps the parent's database object referenced: freeing it would close the parent's
#: connection (PostgreSQL: a Terminate on the shared socket; SQLite: a checkpoint on close)
_INHERITED: list = []


def _parser():
    """The CLI's parser, built once in the parent (every command module imported before the forks)."""
    if not _PARSER:
        from cryodesk.cli import main as climain

        _PARSER.append(climain.build_parser())
    return _PARSER[0]


def run_killed(db_path: str, argv: list[str], kill_at: int) -> tuple[str, int]:
    """Run ``cryodesk --db DB ARGV`` in a forked child killed before its ``kill_at``-th call.

    Returns ``("killed", n)`` or ``("exit <code>", calls made)``.
    """
    parser = _parser()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 99
        try:
            os.close(r)
            from cryodesk import db as dbmod
            from cryodesk.cli import main as climain

            climain.build_parser = lambda *_: parser
            main = climain.main
            _INHERITED.append(dbmod.db.obj)  # never closed here: it is the parent's connection
            dbmod.open_database(db_path)  # a connection of its own (the parent's is never used here)
            counter = arm(kill_at, CALLS)
            sink = io.StringIO()
            with redirect_stdout(sink), redirect_stderr(sink):
                code = main(["--db", db_path, *argv])
            os.write(w, json.dumps({"calls": counter[0], "out": sink.getvalue()[-2000:]}).encode())
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            os.write(w, json.dumps({"calls": -1, "out": f"{type(exc).__name__}: {exc}"}).encode())
        finally:
            os._exit(code if isinstance(code, int) else 98)
    os.close(w)
    with os.fdopen(r) as fh:
        data = fh.read()
    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        return "killed", kill_at
    info = json.loads(data) if data else {"calls": -1, "out": ""}
    if "Traceback" in info["out"]:
        print(info["out"], file=sys.stderr)
    return f"exit {os.WEXITSTATUS(status)}", info["calls"]


def in_child(fn):
    """``fn()`` run in a forked child (its JSON-able result returned): e.g. a second database bound there."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            result = {"ok": fn()}
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            result = {"error": f"{type(exc).__name__}: {exc}"}
        try:
            os.write(w, json.dumps(result, default=str).encode())
        finally:
            os._exit(0)
    os.close(w)
    with os.fdopen(r) as fh:
        data = fh.read()
    os.waitpid(pid, 0)
    result = json.loads(data)
    if "error" in result:
        raise AssertionError(result["error"])
    return result["ok"]


def attached_elsewhere(project_dir, db_path: str, uids) -> dict:
    """Attach a copy of ``project_dir`` into a new database (in a child); per uid: is it final there?
    Also the disagreements after the attach, and the jobs ``cleanup --non-final delete`` would plan."""
    import shutil

    copy = Path(db_path).with_suffix(".proj")
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(project_dir, copy, symlinks=True)
    lock = copy / ".cryodesk" / "owner.json"
    lock.unlink(missing_ok=True)  # (a detached copy: the old database is lost)

    def body():
        from cryodesk import db as dbmod
        from cryodesk.core import attach
        from cryodesk.core.cleanup import plan_cleanup

        Path(db_path).unlink(missing_ok=True)
        _INHERITED.append(dbmod.db.obj)
        dbmod.open_database(db_path)
        with dbmod.db.connection_context():
            q = attach.attach_project(copy)
            finals = {j.uid: bool(j.is_final) for j in Job.select().where(Job.project == q) if j.uid in set(uids)}
            plan = plan_cleanup(q, _options())
            return {"final": finals, "disagree": disagreements(q), "planned": [e.uid for e in plan.entries]}

    return in_child(body)


def _options():
    from cryodesk.core.cleanup import CleanupOptions

    return CleanupOptions(non_final="delete")


def run_concurrently(db_path: str, scripts: list[list[list[str]]]) -> list[tuple[int, str]]:
    """Fork one child per script (a list of CLI argv), all at once; each runs its commands in turn.

    Returns per child ``(exit code of the first failing command or 0, everything it printed)``.
    """
    parser = _parser()
    children = []
    for script in scripts:
        r, w = os.pipe()
        pid = os.fork()
        if pid == 0:
            code, sink = 0, io.StringIO()
            try:
                os.close(r)
                from cryodesk import db as dbmod
                from cryodesk.cli import main as climain

                climain.build_parser = lambda *_: parser
                _INHERITED.append(dbmod.db.obj)  # never closed here: it is the parent's connection
                dbmod.db.initialize(None)  # (the parent's connection is never used here: main opens its own)
                with redirect_stdout(sink), redirect_stderr(sink):
                    for argv in script:
                        rc = climain.main(["--db", db_path, *argv])
                        code = code or rc
            except BaseException:  # noqa: BLE001 - reported to the parent
                import traceback

                sink.write(traceback.format_exc())
                code = 97
            finally:
                os.write(w, sink.getvalue()[-20000:].encode())
                os._exit(code)
        os.close(w)
        children.append((pid, r))
    out = []
    for pid, r in children:
        with os.fdopen(r) as fh:
            text = fh.read()
        _, status = os.waitpid(pid, 0)
        out.append((os.WEXITSTATUS(status) if os.WIFEXITED(status) else -1, text))
    return out
