"""The job-type registry: one place that knows every job type.

A job type declares its parameters (with defaults), its input slots and its
output groups, and optionally a pure ``run(ctx)`` function (see
:mod:`cryodesk.core.context`).  Types without ``run`` can be created and
managed but not executed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Callable

from ..base.errors import UsageError

CATEGORIES = (
    "import",
    "motion_correction",
    "ctf_estimation",
    "particle_picking",
    "extraction",
    "particle_curation",
    "classification",
    "reconstruction",
    "refinement",
    "utilities",
)

#: Categories the Cleanup Data tool treats as deterministic preprocessing.
PREPROCESSING_CATEGORIES = (
    "motion_correction",
    "ctf_estimation",
    "particle_picking",
    "extraction",
)

_PARAM_TYPES = {"int": int, "float": float, "bool": bool, "str": str}
#: the largest integer parameter (JSON readers keep integers up to 2**53 exactly)
INT_LIMIT = 2 ** 53
#: the longest text parameter (a path or a name)
TEXT_LIMIT = 4096


def _parse_bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


@dataclass(frozen=True)
class Param:
    """A declared job parameter.

    Parameters
    ----------
    name : str
        Key used by ``--param KEY=VALUE`` and in ``job.json``.
    default : Any
        Default value; ``None`` means "no default" (allowed only if ``required`` is false).
    type : str
        One of ``int``, ``float``, ``bool``, ``str``.
    minimum, maximum : number, optional
        The range a number must lie in (inclusive).  Every number is checked anyway: an ``int``
        within :data:`INT_LIMIT`, a ``float`` finite; every text without NUL bytes and at most
        :data:`TEXT_LIMIT` characters — a value that would make the job fail deep in its run
        (an overflow, an allocation of terabytes, "embedded null byte") is refused when it is set.
    """

    name: str
    default: Any
    type: str = "str"
    help: str = ""
    choices: tuple | None = None
    required: bool = False
    minimum: float | None = None
    maximum: float | None = None

    def coerce(self, value: Any) -> Any:
        """Convert ``value`` (often a CLI string) to this parameter's type."""
        if value is None:
            if self.required:
                raise UsageError(f"parameter {self.name!r} is required")
            return None
        py = _PARAM_TYPES[self.type]
        try:
            if self.type == "bool":
                out = _parse_bool(value) if isinstance(value, str) else bool(value)
            elif isinstance(value, str) or self.type != "str":
                if self.type == "int" and isinstance(value, float) and not value.is_integer():
                    raise ValueError(f"not an integer: {value}")
                out = py(value)
            else:
                out = str(value)
        except (TypeError, ValueError) as exc:
            raise UsageError(
                f"parameter {self.name!r} expects {self.type}, got {value!r}"
            ) from exc
        if self.choices is not None and out not in self.choices:
            raise UsageError(
                f"parameter {self.name!r} must be one of {', '.join(map(str, self.choices))}; got {out!r}"
            )
        self._check_range(out)
        return out

    def _check_range(self, out: Any) -> None:
        name = self.name
        if self.type == "int" and abs(out) > INT_LIMIT:
            raise UsageError(f"parameter {name!r} is far too large ({str(out)[:24]}…): at most {INT_LIMIT}")
        if self.type == "float" and not math.isfinite(out):
            raise UsageError(f"parameter {name!r} must be a finite number, got {out!r}")
        if self.type in ("int", "float"):
            if self.minimum is not None and out < self.minimum:
                raise UsageError(f"parameter {name!r} must be at least {self.minimum:g}, got {out!r}")
            if self.maximum is not None and out > self.maximum:
                raise UsageError(f"parameter {name!r} must be at most {self.maximum:g}, got {out!r}")
        if self.type == "str":
            if "\x00" in out:
                raise UsageError(f"parameter {name!r} contains a NUL byte (\\0): not a valid text or path")
            if len(out) > TEXT_LIMIT:
                raise UsageError(f"parameter {name!r} is {len(out)} characters long: at most {TEXT_LIMIT}")


@dataclass(frozen=True)
class InputSlot:
    """A named input: connections to parent jobs' outputs of a given type."""

    name: str
    type: str
    required: bool = True
    multiple: bool = False
    help: str = ""


@dataclass(frozen=True)
class OutputGroup:
    """A named output group.

    ``iterative`` groups are written once per iteration (version); every version
    but the last is an *intermediate result*.
    """

    name: str
    type: str
    iterative: bool = False
    help: str = ""


@dataclass(frozen=True)
class JobType:
    """Everything cryodesk knows about a kind of job."""

    name: str
    title: str
    category: str
    params: tuple[Param, ...] = ()
    inputs: tuple[InputSlot, ...] = ()
    outputs: tuple[OutputGroup, ...] = ()
    run: Callable[[Any], None] | None = None
    #: "cpu" or "io": which worker pool the engine uses.
    resource: str = "cpu"
    description: str = ""
    #: Whether a cancelled run keeps finished iterations as intermediate results.
    keep_partial_on_cancel: bool = False
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.category not in CATEGORIES:
            raise ValueError(f"unknown category {self.category!r} for job type {self.name!r}")

    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.params) or "none"
        raise UsageError(f"job type {self.name!r} has no parameter {name!r} (known: {known})")

    def input_slot(self, name: str) -> InputSlot:
        for s in self.inputs:
            if s.name == name:
                return s
        known = ", ".join(s.name for s in self.inputs) or "none"
        raise UsageError(f"job type {self.name!r} has no input {name!r} (known: {known})")

    def output_group(self, name: str) -> OutputGroup:
        for o in self.outputs:
            if o.name == name:
                return o
        known = ", ".join(o.name for o in self.outputs) or "none"
        raise UsageError(f"job type {self.name!r} has no output {name!r} (known: {known})")

    def default_params(self) -> dict:
        return {p.name: p.default for p in self.params}

    def coerce_params(self, values: dict) -> dict:
        """Defaults overlaid with ``values``, each checked and converted."""
        out = self.default_params()
        for key, value in values.items():
            out[key] = self.param(key).coerce(value)
        for p in self.params:
            if p.required and out.get(p.name) is None:
                raise UsageError(f"job type {self.name!r} needs parameter {p.name!r}")
        return out


_REGISTRY: dict[str, JobType] = {}
#: loads job types on demand: ``loader(name)`` registers the built-in type ``name`` (if there is one),
#: ``loader(None)`` every built-in type.  Installed by :mod:`cryodesk.jobs` (core never imports it).
_loader: Callable[[str | None], None] | None = None


def set_loader(loader: Callable[[str | None], None] | None) -> None:
    """Install the function that registers built-in job types when they are first asked for."""
    global _loader
    _loader = loader


def register(job_type: JobType) -> JobType:
    """Add ``job_type`` to the registry (re-registering the same name replaces it)."""
    _REGISTRY[job_type.name] = job_type
    return job_type


#: other programs' job types (issue 16), by a word of their name: shown and managed, never run by cryodesk
_FOREIGN_CATEGORY = (("import", "import"), ("motion", "motion_correction"), ("ctf", "ctf_estimation"),
                     ("pick", "particle_picking"), ("extract", "extraction"), ("select", "particle_curation"),
                     ("curate", "particle_curation"), ("class", "classification"), ("initialmodel", "reconstruction"),
                     ("abinit", "reconstruction"), ("refine", "refinement"), ("multibody", "refinement"),
                     ("polish", "refinement"), ("postprocess", "refinement"), ("homo", "refinement"))
FOREIGN_PREFIXES = {"relion.": "RELION", "cryosparc.": "CryoSPARC"}


_FOREIGN: dict[str, JobType] = {}  # (apart from _REGISTRY: the builder never offers them)


def _foreign(name: str) -> JobType | None:
    if name in _FOREIGN:
        return _FOREIGN[name]
    program = next((v for k, v in FOREIGN_PREFIXES.items() if name.startswith(k)), None)
    if program is None:
        return None
    low = name.split(".", 1)[1].lower()
    category = next((c for word, c in _FOREIGN_CATEGORY if word in low), "utilities")
    jt = JobType(name=name, title=f"{program} {name.split('.', 1)[1]}", category=category,
                 description=f"a {program} job: {program} runs it; cryodesk shows it and manages its data")
    _FOREIGN[name] = jt
    return jt


def get(name: str) -> JobType:
    """Look up a job type by name; a clear error names the known types."""
    if name not in _REGISTRY and _loader is not None:
        _loader(name)
    try:
        return _REGISTRY[name]
    except KeyError:
        jt = _foreign(name)
        if jt is not None:
            return jt
        # the built-in types register when cryodesk.jobs is imported (the CLI, the app
        # and the engine do it); core never imports the layer above it
        known = ", ".join(sorted(_REGISTRY)) or "none registered: import cryodesk.jobs"
        raise UsageError(f"unknown job type {name!r} (known: {known})") from None


def all_types() -> list[JobType]:
    if _loader is not None:
        _loader(None)
    return sorted(_REGISTRY.values(), key=lambda t: (CATEGORIES.index(t.category), t.name))
