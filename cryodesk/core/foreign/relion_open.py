"""A RELION project's pipeline and job directories -> :class:`~.register.ForeignProject`.

Statuses: the pipeline's, unless the job directory holds one of RELION's exit
markers (``RELION_JOB_EXIT_SUCCESS|FAILURE|ABORTED``), which say how its last run
ended (RELION's GUI reads them the same way).  Aliases (``Class2D/LoG/``) are the
titles; ``job.star`` options are the parameters (shown, never written).
"""

from __future__ import annotations

import os
from pathlib import Path

from ...base import nofollow
from ...base.errors import DataError
from ...io.relion_pipeline import Pipeline, read_pipeline
from ...io.star import parse_star
from . import relion_state
from .register import ForeignJob, ForeignProject

PIPELINE = "default_pipeline.star"
MARKERS = (("RELION_JOB_EXIT_SUCCESS", "Succeeded"), ("RELION_JOB_EXIT_FAILURE", "Failed"),
           ("RELION_JOB_EXIT_ABORTED", "Aborted"))
STATUS = {"Succeeded": "completed", "Failed": "failed", "Aborted": "killed", "Running": "running",
          "Scheduled": "queued"}
#: RELION 3.1's integer process types (src/pipeline_jobs.h PROC_*) as the 4.0 labels
TYPES_31 = {0: "relion.import", 1: "relion.motioncorr", 2: "relion.ctffind", 3: "relion.manualpick",
            4: "relion.autopick", 5: "relion.extract", 6: "relion.sort", 7: "relion.select", 8: "relion.class2d",
            9: "relion.class3d", 10: "relion.refine3d", 11: "relion.polish", 12: "relion.maskcreate",
            13: "relion.joinstar", 14: "relion.subtract", 15: "relion.postprocess", 16: "relion.localres",
            17: "relion.movierefine", 18: "relion.initialmodel", 19: "relion.multibody", 20: "relion.polish",
            21: "relion.ctfrefine", 99: "relion.external"}


def is_relion(path: Path) -> bool:
    return (Path(path) / PIPELINE).is_file()


def job_type(layout: str, raw: str) -> str:
    if layout != "3.1":
        return raw
    try:
        return TYPES_31.get(int(raw), f"relion.type{int(raw)}")
    except ValueError:
        return raw


def status_of(job_dir: Path, pipeline_status: str) -> str:
    """The status as RELION's GUI would show it: an exit marker wins over the pipeline's word."""
    for marker, status in MARKERS:
        if os.path.lexists(job_dir / marker):
            return status
    return pipeline_status


def job_options(job_dir: Path) -> dict:
    """``job.star``'s options ({variable: value}, plus ``_type``/``_is_continue``); {} without one."""
    path = job_dir / "job.star"
    if not path.is_file() or path.is_symlink():
        return {}
    try:
        text = nofollow.read_regular(path)
        # RELION 3.1 appends a full-definition table of every option's help text, which is not
        # always valid STAR (stray quotes); the values are all that is shown
        cut = text.find("data_joboptions_full_definition")
        blocks = parse_star(text if cut < 0 else text[:cut], str(path))
    except (OSError, UnicodeDecodeError) as exc:
        return {"_error": f"{path}: unreadable ({exc})"}
    except DataError as exc:
        return {"_error": str(exc)}
    out: dict = {}
    job = blocks.get("job")
    if job is not None:
        out.update({f"_{k.removeprefix('rlnJob')}": v for k, v in job.pairs.items()})
    vals = blocks.get("joboptions_values")
    if vals is not None and "rlnJobOptionVariable" in vals.columns:
        out.update(zip(vals.columns["rlnJobOptionVariable"].tolist(),
                       vals.columns.get("rlnJobOptionValue", vals.columns["rlnJobOptionVariable"]).tolist()))
    return out


def read_project(path: Path, pipeline: Pipeline | None = None) -> ForeignProject:
    path = Path(path)
    p = pipeline or read_pipeline(path / PIPELINE)
    finals = relion_state.read_finals(path)
    parents = p.parents()
    by_name = {x.name: x for x in p.processes}
    node_types = {n.name: n.type for n in p.nodes}
    made = {}
    for proc, node in p.output_edges:
        made.setdefault(proc, []).append(node)
    reads: dict[tuple[str, str], str] = {}  # (child, parent) -> the first node it reads of that parent
    producer = p.producer()
    for node, proc in p.input_edges:
        parent = producer.get(node)
        if parent:
            reads.setdefault((proc, parent), node)
    # every job's job.star and exit marker: small reads, each a seek on a cold disk, so read
    # concurrently (the threads wait on the disk, not on the interpreter)
    from concurrent.futures import ThreadPoolExecutor

    def on_disk(proc):
        jdir = path / proc.directory
        try:
            return status_of(jdir, proc.status), job_options(jdir)
        except OSError as exc:  # (a name the file system refuses: too long, say)
            return proc.status, {"_error": f"{proc.directory[:80]}: cannot be read ({exc.strerror or exc})"}

    with ThreadPoolExecutor(max_workers=8) as pool:
        disk = list(pool.map(on_disk, p.processes))
    jobs = []
    for proc, (status, options) in zip(p.processes, disk):
        ins = []
        for parent in parents.get(proc.name, []):
            node = reads.get((proc.name, parent), parent)
            ins.append((by_name[parent].number, node_types.get(node, "input"), node[len(parent):] or "output"))
        outs = [(n[len(proc.name):] or n, str(node_types.get(n, "")), 0, n) for n in made.get(proc.name, [])]
        jobs.append(ForeignJob(
            number=proc.number, path=proc.directory, type=job_type(p.layout, proc.type),
            title=(proc.alias or "").rstrip("/").split("/")[-1], status=STATUS.get(status, "failed"),
            params=options, parents=ins, is_final=proc.directory in finals, outputs=outs,
            error=None if status in STATUS else f"RELION status {status!r}"))
    title = f"{path.name} (RELION {p.layout} pipeline)"
    return ForeignProject(kind="relion", title=title, jobs=jobs, workspaces={1: "RELION pipeline"})
