"""The SLURM lane's templates and how they are filled in (Qt-free, no database).

Templates use ``{{ name }}`` placeholders, as CryoSPARC's ``cluster_script.sh``
does.  The submission script gets these variables (:data:`SCRIPT_VARIABLES`);
custom variables of the lane (``--var name=value`` on ``lane add``) and of the
job (``--var`` on ``job queue --lane``) are added, the job's winning.  A
placeholder that names no variable is refused with the list of known ones, so a
typo is found when the lane is added, not on the cluster.
"""

from __future__ import annotations

import re
import shlex

from ...base.errors import UsageError

#: variable -> what it is (documented in ``cryodesk lane add --help`` and the README)
SCRIPT_VARIABLES = {
    "num_cpu": "CPU cores for the job (lane default, or --var num_cpu=N)",
    "ram_gb": "memory in GB (lane default, or --var ram_gb=N)",
    "num_gpu": "GPUs (0 unless set; cryodesk's job types use none)",
    "job_dir_abs": "the job's directory (absolute)",
    "project_dir_abs": "the project's directory (absolute)",
    "run_cmd": "the command that runs the job on the node (cryodesk worker run-job P J)",
    "project_uid": "project uid, e.g. P1",
    "job_uid": "job uid, e.g. J5",
    "job_type": "the job's type, e.g. restack",
    "job_title": "the job's title",
    "job_log_path_abs": "where the scheduler writes the job's stdout/stderr (J<n>/lane/slurm.out)",
    "exit_code_file": "where the script records the command's exit status (J<n>/lane/exit_code)",
    "lane_name": "the lane's name",
    "worker": "cryodesk worker name on the node (SSD cache configuration; empty: the node's host name)",
}
#: variables of the command templates
COMMAND_VARIABLES = {
    "script_path_abs": "the submission script (submit)",
    "cluster_job_id": "the scheduler's job id (cancel)",
    "job_dir_abs": "the job's directory",
    "project_uid": "project uid",
    "job_uid": "job uid",
}

DEFAULT_SCRIPT = """#!/usr/bin/env bash
#SBATCH --job-name=cryodesk_{{ project_uid }}_{{ job_uid }}
#SBATCH --ntasks=1
#SBATCH --cpus-per-task={{ num_cpu }}
#SBATCH --mem={{ ram_gb }}G
#SBATCH --output={{ job_log_path_abs }}
#SBATCH --chdir={{ job_dir_abs }}
# cryodesk {{ job_type }} job {{ project_uid }} {{ job_uid }} ({{ job_title }}) on lane {{ lane_name }}
# in the background, so that on scancel (SIGTERM to every process of the job) this script waits for
# cryodesk to record "killed" instead of ending first (the scheduler then kills what is left)
{{ run_cmd }} &
trap 'wait $!' TERM
wait $!
# sacct needs slurmdbd: the exit status is kept here so cryodesk can tell how the job ended
echo $? > {{ exit_code_file }}
"""
DEFAULT_SUBMIT = "sbatch --parsable {{ script_path_abs }}"
#: one line per job: "<id>|<state>"; --states=all keeps ended jobs (for MinJobAge seconds)
DEFAULT_STATUS = "squeue --me --noheader --states=all --format=%i|%T"
DEFAULT_CANCEL = "scancel {{ cluster_job_id }}"

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def placeholders(template: str) -> list[str]:
    """The variable names ``template`` uses, in order of first use."""
    return list(dict.fromkeys(_PLACEHOLDER.findall(template)))


def check(template: str, known, what: str) -> None:
    """Refuse ``template`` if it uses a variable not in ``known``, naming it and the known ones."""
    unknown = [n for n in placeholders(template) if n not in known]
    if unknown:
        raise UsageError(f"{what} uses {{{{ {unknown[0]} }}}}, which is not a variable; "
                         f"known: {', '.join(sorted(known))}")


def render(template: str, values: dict, quote: bool = False) -> str:
    """Fill in ``template``; ``quote`` shell-quotes every value (for command templates)."""
    def sub(m):
        name = m.group(1)
        if name not in values:
            raise UsageError(f"template variable {{{{ {name} }}}} has no value")
        text = str(values[name])
        return shlex.quote(text) if quote else text
    return _PLACEHOLDER.sub(sub, template)


def parse_vars(items) -> dict[str, str]:
    """``["a=1", "b=x y"]`` -> ``{"a": "1", "b": "x y"}``, refusing a malformed item by name."""
    out = {}
    for item in items or ():
        name, sep, value = str(item).partition("=")
        name = name.strip()
        if not sep or not _NAME.match(name):
            raise UsageError(f"variable {item!r}: expected NAME=VALUE (NAME: letters, digits, _)")
        out[name] = value
    return out


def command_argv(prefix: str | None, command: str) -> list[str]:
    """The argv that runs ``command`` (already rendered), through ``prefix`` (e.g. ``ssh login``) if set.

    With a prefix the command goes as one argument, as ``ssh host 'cmd'`` expects.
    """
    if prefix:
        return shlex.split(prefix) + [command]
    return shlex.split(command)
