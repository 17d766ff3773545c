"""The SLURM lane's templates and how they are filled in (Qt-free, no database).

Templates use ``{{ name }}`` placeholders, as CryoSPARC's ``cluster_script.sh``
does.  The submission script gets these variables (:data:`SCRIPT_VARIABLES`);
custom variables of the lane (``--var name=value`` on ``lane add``) and of the
job (``--var`` on ``job queue --lane``) are added, the job's winning.  A
placeholder that names no variable is refused with the list of known ones, so a
typo is found when the lane is added, not on the cluster.

Values are made safe for bash (:func:`render_script`): in the script body each value
is shell-quoted (``shlex.quote``) except ``run_cmd``, which cryodesk builds as a quoted
command line itself; a placeholder inside quotes is refused (quoting cannot be nested).
A scheduler reads its directive lines (``#SBATCH ...``: a ``#`` followed by a non-blank)
without shell quoting, so a value landing there may hold only letters, digits and
``. _ - / : = , @ % +``; anything else (a space, ``$``, a quote, ...) is refused naming the
value.  Control characters (newline, CR, NUL, ...) are refused in every value, and a
custom variable may not replace cryodesk's own except the resources (:data:`OVERRIDABLE`).
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
#: the built-in variables a custom variable (``--var``) may set: the job's resources
OVERRIDABLE = ("num_cpu", "ram_gb", "num_gpu")
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
# values are shell-quoted below; #SBATCH lines take only plain values (no spaces or $ ' " ; & ...)
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
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DIRECTIVE_SAFE = re.compile(r"^[A-Za-z0-9_./:=,@%+-]*$")
_DIRECTIVE = re.compile(r"^\s*#\S")
#: built-in variables that are shell text made by cryodesk (already quoted), pasted as they are
_RAW = frozenset({"run_cmd"})


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


def one_line(text: str) -> str:
    """``text`` with every control character (newline, tab, ...) made a space: for titles in the script."""
    return _CONTROL.sub(" ", text)


def check_value(name: str, value, what: str) -> None:
    """Refuse a variable value holding a control character (newline, CR, NUL, ...): it would add a line."""
    if _CONTROL.search(str(value)):
        raise UsageError(f"{what}: the value of variable {name!r} ({str(value)!r}) contains a control "
                         "character (newline, carriage return, NUL, tab, ...), which a submission script "
                         "cannot hold safely; remove it")


def check_custom_vars(variables, what: str) -> None:
    """Refuse custom variables that replace cryodesk's own (except :data:`OVERRIDABLE`) or hold control characters."""
    for name, value in (variables or {}).items():
        if not _NAME.match(str(name)):
            raise UsageError(f"{what}: variable name {name!r}: use letters, digits and _")
        if name in SCRIPT_VARIABLES and name not in OVERRIDABLE:
            raise UsageError(f"{what}: variable {name!r} is cryodesk's own and cannot be set with --var "
                             f"(of the built-in variables only {', '.join(OVERRIDABLE)} can)")
        check_value(name, value, what)


def check_placement(template: str, what: str) -> None:
    """Refuse a placeholder inside quotes in the script body: its shell-quoted value would not be one word
    there (inside double quotes ``$(...)`` would even run)."""
    state = None  # None, "'" or '"': carried across lines (a quoted string may span lines)
    for line in template.splitlines():
        if state is None and _DIRECTIVE.match(line):
            continue  # a directive: its values are checked strictly instead
        i = 0
        while i < len(line):
            c = line[i]
            if state is not None and line.startswith("{{", i):
                m = _PLACEHOLDER.match(line, i)
                if m:
                    raise UsageError(f"{what}: {{{{ {m.group(1)} }}}} is inside quotes in the line "
                                     f"{line.strip()!r}; write it as a word of its own (cryodesk quotes "
                                     "its value)")
            if state == "'":
                if c == "'":
                    state = None
            elif c == "\\":
                i += 1
            elif state == '"':
                if c == '"':
                    state = None
            elif c in "'\"":
                state = c
            elif c == "#" and (i == 0 or line[i - 1] in " \t"):
                break  # a comment: the rest of the line is not shell text
            i += 1


def render_script(template: str, values: dict, what: str) -> str:
    """Fill in a submission script safely for bash and the scheduler (see the module's docstring).

    A UsageError names the variable, its value and what is wrong.
    """
    check_placement(template, what)
    out = []
    for line in template.splitlines(keepends=True):
        directive = bool(_DIRECTIVE.match(line))

        def sub(m, directive=directive, line=line):
            name = m.group(1)
            if name not in values:
                raise UsageError(f"{what}: template variable {{{{ {name} }}}} has no value")
            text = str(values[name])
            check_value(name, text, what)
            if directive:
                if not _DIRECTIVE_SAFE.match(text):
                    raise UsageError(
                        f"{what}: {{{{ {name} }}}} is {text!r}, which would land in the directive line "
                        f"{line.strip()!r}; the scheduler reads directives without shell quoting, so a "
                        "value there may hold only letters, digits and . _ - / : = , @ % + (rename the "
                        "directory, change the value, or move it out of the directive)")
                return text
            return text if name in _RAW else shlex.quote(text)
        out.append(_PLACEHOLDER.sub(sub, line))
    return "".join(out)


def split_words(text: str, what: str) -> list[str]:
    """``shlex.split(text)``, a UsageError naming ``what`` if its quoting is unbalanced."""
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"{what} {text!r} cannot be split into words: {exc} (unbalanced quotes or a "
                         "trailing backslash)") from None


def parse_vars(items) -> dict[str, str]:
    """``["a=1", "b=x y"]`` -> ``{"a": "1", "b": "x y"}``, refusing a malformed item by name."""
    out = {}
    for item in items or ():
        name, sep, value = str(item).partition("=")
        name = name.strip()
        if not sep or not _NAME.match(name):
            raise UsageError(f"variable {item!r}: expected NAME=VALUE (NAME: letters, digits, _)")
        check_value(name, value, f"--var {name}")
        out[name] = value
    return out


def command_argv(prefix: str | None, command: str) -> list[str]:
    """The argv that runs ``command`` (already rendered), through ``prefix`` (e.g. ``ssh login``) if set.

    With a prefix the command goes as one argument, as ``ssh host 'cmd'`` expects.
    """
    if prefix:
        return shlex.split(prefix) + [command]
    return shlex.split(command)
