"""``external``: run a user-configured command as a job.

The command template may use ``{job_dir}``, ``{project_dir}`` and
``{input:SLOT}`` (the absolute path of that input's ``.cs`` dataset).  Without
``use_shell`` the template is split like a shell would (``shlex``) *before*
substitution, so paths with spaces stay one argument and nothing is
interpreted by a shell.  The command runs in the job directory; its stdout
and stderr go line by line into the job log.  Cancelling terminates the
command's process group (then kills it after ``kill_grace_s``).

Results: every file the command writes under ``J<n>/outputs/<group>/`` is
registered in output group ``<group>`` (kind from the suffix: ``.cs`` →
dataset, ``.mrc``/``.mrcs`` → blob, ``.star`` → star, else ``file``).  The
declared group is ``output``; other sub-folder names become extra groups.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import threading

from cryodesk._runtime import foreign_env
from cryodesk.base.errors import CryodeskError, JobCancelled, UsageError
from cryodesk.core.context import JobContext
from cryodesk.core.registry import InputSlot, JobType, OutputGroup, Param, register

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_KINDS = {".cs": "dataset", ".mrc": "blob", ".mrcs": "blob", ".star": "star", ".csg": "csg", ".log": "log"}


def _value(ctx: JobContext, name: str) -> str:
    if name == "job_dir":
        return str(ctx.job_dir)
    if name == "project_dir":
        return str(ctx.project_dir)
    if name.startswith("input:"):
        slot = name.split(":", 1)[1]
        if not ctx.inputs.get(slot):
            raise UsageError(f"{ctx.uid}: the command uses {{{name}}} but input {slot!r} is not connected")
        return str(ctx.input(slot).path("dataset"))
    raise UsageError(f"{ctx.uid}: unknown placeholder {{{name}}} in the command "
                     "(known: {job_dir}, {project_dir}, {input:SLOT})")


def build_command(ctx: JobContext, template: str, use_shell: bool) -> list[str] | str:
    """The argument list (or shell string) for ``template`` with placeholders filled in."""
    if not template.strip():
        raise UsageError(f"{ctx.uid}: the command is empty")
    if use_shell:
        return _PLACEHOLDER.sub(lambda m: shlex.quote(_value(ctx, m.group(1))), template)
    try:
        tokens = shlex.split(template)
    except ValueError as exc:
        raise UsageError(f"{ctx.uid}: cannot parse the command: {exc}") from None
    return [_PLACEHOLDER.sub(lambda m: _value(ctx, m.group(1)), t) for t in tokens]


def _pump(stream, ctx: JobContext, tail: list[str]) -> None:
    for line in stream:
        line = line.rstrip("\n")
        ctx.log.info("%s", line)
        tail.append(line)
        del tail[:-20]


def _stop(proc: subprocess.Popen, grace: float) -> None:
    """Terminate the command's own process group (it was started in a new session)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def run_external(ctx: JobContext) -> None:
    """Run the command, stream its output to the log, register ``outputs/<group>/`` files."""
    p = ctx.params
    cmd = build_command(ctx, str(p["command"]), p["use_shell"])
    (ctx.job_dir / "outputs" / "output").mkdir(parents=True, exist_ok=True)
    env = {**foreign_env(), "CRYODESK_JOB_DIR": str(ctx.job_dir), "CRYODESK_PROJECT_DIR": str(ctx.project_dir)}
    ctx.log.info("running: %s", cmd if isinstance(cmd, str) else shlex.join(cmd))
    try:
        proc = subprocess.Popen(cmd, shell=bool(p["use_shell"]), cwd=ctx.job_dir, env=env, text=True,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True, errors="replace")
    except OSError as exc:
        raise CryodeskError(f"{ctx.uid}: cannot start the command: {exc}") from None
    tail: list[str] = []
    reader = threading.Thread(target=_pump, args=(proc.stdout, ctx, tail), daemon=True)
    reader.start()
    ctx.progress(0.0, "command running")
    while True:
        try:  # returns as soon as the command exits (a short command is not held for a whole tick)
            proc.wait(timeout=0.1)
            break
        except subprocess.TimeoutExpired:
            pass
        if ctx.cancel_event.is_set():
            _stop(proc, float(p["kill_grace_s"]))
            reader.join(timeout=5)
            raise JobCancelled(f"{ctx.uid} was cancelled (command terminated)")
    reader.join(timeout=5)
    if proc.returncode != 0:
        last = f": {tail[-1]}" if tail else ""
        raise CryodeskError(f"{ctx.uid}: the command exited with status {proc.returncode}{last}")
    found = 0
    for group_dir in sorted(d for d in (ctx.job_dir / "outputs").iterdir() if d.is_dir()):
        for path in sorted(f for f in group_dir.rglob("*") if f.is_file()):
            ctx.add_output(group_dir.name, path, kind=_KINDS.get(path.suffix.lower(), "file"))
            found += 1
    if not found:
        ctx.log.warning("the command wrote no files under %s", ctx.job_dir / "outputs")
    ctx.results.update(returncode=proc.returncode, n_output_files=found)
    ctx.progress(1.0, "command finished")


register(JobType(
    name="external", title="External Command", category="utilities",
    params=(
        Param("command", None, "str", "command template: {job_dir}, {project_dir}, {input:SLOT}", required=True),
        Param("use_shell", False, "bool", "run through /bin/sh (pipes, redirection); placeholders are quoted"),
        Param("kill_grace_s", 5.0, "float", "seconds between terminate and kill on cancel"),
    ),
    inputs=(
        InputSlot("movies", "movie", required=False), InputSlot("micrographs", "micrograph", required=False),
        InputSlot("locations", "particle_locations", required=False),
        InputSlot("particles", "particle", required=False), InputSlot("class_averages", "class2d", required=False),
    ),
    outputs=(OutputGroup("output", "any", help="files written under J<n>/outputs/output/"),),
    run=run_external, resource="io",
    description="Runs a configured command in the job directory; registers the files it writes in outputs/.",
))
