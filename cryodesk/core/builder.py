"""The job builder's service (Qt-free): job types by category, parameter checks, input choices, creation.

The GUI's builder and the CLI's ``job create`` meet in :func:`cryodesk.core.jobs.create_job`;
this module adds what a form needs around it: the catalogue of job types with
their descriptions, parameters (type, default, help, choices) and inputs;
checking what a user typed, field by field; the outputs of existing jobs that
an input slot may connect to (with their versions); and the common next steps
on a job's outputs (restack, downsample, export, cache).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..base.errors import CryodeskError, UsageError
from ..db.models import JobWorkspace, OutputFile
from . import registry
from .jobs import InputSpec, create_job, get_job, list_jobs
from .projects import get_project

CATEGORY_TITLES = {
    "import": "Import", "motion_correction": "Motion correction", "ctf_estimation": "CTF estimation",
    "particle_picking": "Particle picking", "extraction": "Extraction", "particle_curation": "Particle curation",
    "classification": "Classification", "reconstruction": "Reconstruction", "refinement": "Refinement",
    "utilities": "Utilities",
}

#: the next steps offered on a job's particle outputs: (label with its menu mnemonic, job type, input slot)
NEXT_STEPS = (
    ("&Restack particles…", "restack_particles", "particles"),
    ("&Downsample / consolidate…", "downsample_particles", "particles"),
    ("&Export…", "export_particles", "particles"),
)


def _param(p: registry.Param) -> dict:
    return {"name": p.name, "type": p.type, "default": p.default, "help": p.help,
            "choices": list(p.choices) if p.choices else None, "required": p.required}


def describe_type(t: registry.JobType) -> dict:
    """A job type as the builder shows it."""
    return {"name": t.name, "title": t.title, "category": t.category,
            "category_title": CATEGORY_TITLES.get(t.category, t.category), "description": t.description,
            "runnable": t.run is not None, "resource": t.resource,
            "params": [_param(p) for p in t.params],
            "inputs": [{"name": s.name, "type": s.type, "required": s.required, "multiple": s.multiple,
                        "help": s.help} for s in t.inputs],
            "outputs": [{"name": o.name, "type": o.type, "iterative": o.iterative, "help": o.help}
                        for o in t.outputs]}


def catalogue() -> list[dict]:
    """Job types grouped by category, in pipeline order: ``[{category, title, types: [...]}]``."""
    groups: dict[str, list] = {}
    for t in registry.all_types():
        groups.setdefault(t.category, []).append(describe_type(t))
    return [{"category": c, "title": CATEGORY_TITLES.get(c, c), "types": groups[c]}
            for c in registry.CATEGORIES if c in groups]


def check_params(type_name: str, texts: dict) -> tuple[dict, dict[str, str]]:
    """What a form holds, checked field by field.

    ``texts`` maps parameter names to what was entered (strings, bools, or
    ``None``/``""`` for "use the default").  Returns ``(values, errors)``:
    the values to create the job with (only the ones entered) and, per
    parameter, the message of a value that does not fit (a required one left
    empty included).
    """
    t = registry.get(type_name)
    values, errors = {}, {}
    for p in t.params:
        raw = texts.get(p.name)
        if raw is None or (isinstance(raw, str) and raw.strip() == ""):
            if p.required and p.default is None:
                errors[p.name] = f"{p.name} is required" + (f": {p.help}" if p.help else "")
            continue
        try:
            values[p.name] = p.coerce(raw.strip() if isinstance(raw, str) else raw)
        except UsageError as exc:
            errors[p.name] = str(exc)
    return values, errors


@dataclass
class OutputChoice:
    """An output group of an existing job that an input slot may read."""

    uid: str
    title: str
    type: str
    status: str
    output: str
    versions: list[int] = field(default_factory=list)  # empty: not produced yet (the job has not run)
    in_workspace: bool = True

    @property
    def label(self) -> str:
        have = f"v{self.versions[-1]}" if self.versions else self.status
        return f"{self.uid} · {self.title} · {self.output} ({have})"


def output_choices(project, slot_type: str, workspace=None) -> list[OutputChoice]:
    """Outputs of ``project``'s jobs of type ``slot_type`` (``"any"``: every output), newest job first.

    Jobs of ``workspace`` come first; the others are listed too (an input may
    come from another workspace).  Versions are those recorded now; a job that
    has not run yet is offered with none (its latest output will be read).
    """
    project = get_project(project)
    in_ws = set()
    if workspace is not None:
        from .projects import get_workspace

        ws = get_workspace(project, workspace)
        in_ws = {j for (j,) in JobWorkspace.select(JobWorkspace.job).where(JobWorkspace.workspace == ws).tuples()}
    candidates = []
    for job in list_jobs(project):
        try:
            jtype = registry.get(job.type)
        except CryodeskError:
            continue
        for o in jtype.outputs:
            if slot_type == "any" or o.type == slot_type or o.type == "any":
                candidates.append((job, o.name))
    versions: dict[tuple[int, str], set[int]] = {}
    ids = sorted({job.id for job, _ in candidates})
    for k in range(0, len(ids), 900):
        q = OutputFile.select(OutputFile.job, OutputFile.group, OutputFile.version).where(
            OutputFile.job.in_(ids[k:k + 900])).tuples()
        for jid, group, version in q:
            versions.setdefault((jid, group), set()).add(version)
    out = [OutputChoice(job.uid, job.title, job.type, job.status, name, sorted(versions.get((job.id, name), ())),
                        job.id in in_ws or workspace is None)
           for job, name in candidates]
    out.sort(key=lambda c: (not c.in_workspace, -int(c.uid[1:])))
    return out


@dataclass
class InputChoice:
    """One connection chosen in the builder."""

    slot: str
    parent: str
    output: str | None = None
    version: int | None = None


def missing_inputs(type_name: str, inputs: list[InputChoice]) -> list[str]:
    """Required input slots of ``type_name`` that ``inputs`` leaves unconnected."""
    connected = {i.slot for i in inputs}
    return [s.name for s in registry.get(type_name).inputs if s.required and s.name not in connected]


def build_job(project, type_name: str, workspace, params: dict, inputs: list[InputChoice], title: str = ""):
    """Create the job the builder describes (status *building*); returns it."""
    values, errors = check_params(type_name, params)
    if errors:
        raise UsageError("; ".join(errors.values()))
    missing = missing_inputs(type_name, inputs)
    if missing:
        raise UsageError(f"connect the required input{'s' if len(missing) > 1 else ''} {', '.join(missing)}")
    specs = [InputSpec(i.slot, i.parent, i.output, i.version) for i in inputs]
    return create_job(project, type_name, workspace, specs, values, title=title.strip())


def next_steps(project, uid: str) -> list[dict]:
    """The common next steps on job ``uid``'s outputs: ``[{label, type, slot, output}]``."""
    job = get_job(project, uid)
    try:
        jtype = registry.get(job.type)
    except CryodeskError:
        return []
    particle_outputs = [o.name for o in jtype.outputs if o.type == "particle"]
    if not particle_outputs:
        return []
    output = "particles" if "particles" in particle_outputs else particle_outputs[0]
    return [{"label": label, "type": t, "slot": slot, "output": output}
            for label, t, slot in NEXT_STEPS if t in {x.name for x in registry.all_types()}]
