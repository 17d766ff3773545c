"""RELION's ``default_pipeline.star``: read the 3.1, 4.0 and 5.0 layouts, write back in the one read.

Layouts (RELION's ``src/pipeline_jobs.h`` and ``PipeLine::read``/``write``):

* **3.1** (``# version 30001``): integer ``_rlnPipeLineProcessType`` /
  ``_rlnPipeLineProcessStatus`` (0 running, 1 scheduled, 2 succeeded, 3 failed,
  4 aborted) and ``_rlnPipeLineNodeType``;
* **4.0** (``# version 30001``): ``_rlnPipeLineProcessTypeLabel`` (``relion.class2d``),
  ``_rlnPipeLineProcessStatusLabel`` (``Succeeded``) and ``_rlnPipeLineNodeTypeLabel``
  (``ParticlesData.star.relion.class2d``);
* **5.0** (``# version 50001``): the 4.0 labels plus ``_rlnPipeLineNodeTypeLabelDepth``.

A :class:`Pipeline` remembers its layout, version comment and the columns of each
table (unknown ones too, carried as they were), so :func:`write_pipeline` writes
a file that the RELION version which wrote it reads as before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from cryodesk.base.errors import DataError
from cryodesk.base.fsio import atomic_write

from .star import _quote, parse_star

__all__ = ["Process", "Node", "Pipeline", "read_pipeline", "parse_pipeline", "format_pipeline", "write_pipeline",
           "STATUS_31", "JOB_DIR", "job_number"]

#: 3.1 integer statuses (PROC_RUNNING .. PROC_FINISHED_ABORTED)
STATUS_31 = {0: "Running", 1: "Scheduled", 2: "Succeeded", 3: "Failed", 4: "Aborted"}
_STATUS_31_BACK = {v: k for k, v in STATUS_31.items()}
#: a process name: ``<Type>/job<NNN>/`` (RELION pads to 3 digits; more when past 999)
JOB_DIR = re.compile(r"^([A-Za-z][A-Za-z0-9_]*)/job([0-9]{3,})/$")

_PROC = {"name": "rlnPipeLineProcessName", "alias": "rlnPipeLineProcessAlias"}
_BLOCKS = ("pipeline_general", "pipeline_processes", "pipeline_nodes", "pipeline_input_edges",
           "pipeline_output_edges")


@dataclass
class Process:
    name: str  # "Class2D/job008/"
    alias: str | None  # "Class2D/LoG/" or None ("None" in the file)
    type: str  # "8" (3.1) or "relion.class2d"
    status: str  # "Succeeded", "Failed", ... (normalised; the file's form is written back)
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The job type's directory name (``Class2D``): the same in every layout."""
        return self.name.split("/", 1)[0]

    @property
    def number(self) -> int:
        return job_number(self.name)

    @property
    def directory(self) -> str:
        return self.name.rstrip("/")


@dataclass
class Node:
    name: str
    type: str  # "3" (3.1) or "ParticlesData.star.relion.class2d"
    depth: str | None = None  # 5.0
    extra: dict[str, str] = field(default_factory=dict)


@dataclass
class Pipeline:
    layout: str  # "3.1" | "4.0" | "5.0"
    version: str | None  # the "# version N" comment, or None if the file had none
    job_counter: int
    processes: list[Process]
    nodes: list[Node]
    input_edges: list[tuple[str, str]]  # (from node, process)
    output_edges: list[tuple[str, str]]  # (process, to node)
    columns: dict[str, list[str]] = field(default_factory=dict)  # per block, as read
    general: dict[str, str] = field(default_factory=dict)

    def process(self, name: str) -> Process | None:
        return next((p for p in self.processes if p.name == name), None)

    def producer(self) -> dict[str, str]:
        """Node name -> the process that wrote it (output edges)."""
        return {node: proc for proc, node in self.output_edges}

    def parents(self) -> dict[str, list[str]]:
        """Process -> the processes whose outputs it reads (input edges through output edges)."""
        made_by = self.producer()
        out: dict[str, list[str]] = {p.name: [] for p in self.processes}
        for node, proc in self.input_edges:
            parent = made_by.get(node) or _owner(node)
            if parent and parent != proc and parent in out and parent not in out.setdefault(proc, []):
                out[proc].append(parent)
        return out

    def without(self, names: set[str]) -> tuple["Pipeline", "Pipeline"]:
        """(this pipeline without processes ``names``, the pipeline of just those) — as RELION's Delete.

        The deleted part holds the processes, the nodes they wrote, and every edge
        touching either: what ``deleted_pipeline.star`` records for Undelete.
        """
        gone_nodes = {node for proc, node in self.output_edges if proc in names}

        def split(items, key):
            keep, drop = [], []
            for x in items:
                (drop if key(x) else keep).append(x)
            return keep, drop

        pk, pd = split(self.processes, lambda p: p.name in names)
        nk, nd = split(self.nodes, lambda n: n.name in gone_nodes)
        ik, idr = split(self.input_edges, lambda e: e[1] in names or e[0] in gone_nodes)
        ok, od = split(self.output_edges, lambda e: e[0] in names)
        mk = dict(layout=self.layout, version=self.version, job_counter=self.job_counter,
                  columns=self.columns, general=dict(self.general))
        return Pipeline(processes=pk, nodes=nk, input_edges=ik, output_edges=ok, **mk), \
            Pipeline(processes=pd, nodes=nd, input_edges=idr, output_edges=od, **mk)


def job_number(name: str) -> int:
    m = JOB_DIR.match(name if name.endswith("/") else name + "/")
    if not m:
        raise DataError(f"{name!r} is not a RELION job name (Type/jobNNN/)")
    return int(m.group(2))


def _owner(node: str) -> str | None:
    """The job directory a node's path lies in (``Class2D/job008/``), if it is one."""
    parts = node.split("/")
    if len(parts) >= 3 and JOB_DIR.match(f"{parts[0]}/{parts[1]}/"):
        return f"{parts[0]}/{parts[1]}/"
    return None


_VERSION = re.compile(r"^#\s*version\s+(\d+)", re.M)


def parse_pipeline(text: str, source: str = "<string>") -> Pipeline:
    """Parse a pipeline STAR text (any of the three layouts); DataError names ``source`` and the problem."""
    blocks = parse_star(text, source)
    if "pipeline_processes" not in blocks and "pipeline_general" not in blocks:
        raise DataError(f"{source}: not a RELION pipeline (no data_pipeline_processes block)")
    m = _VERSION.search(text)
    version = m.group(1) if m else None
    columns = {b: list(blocks[b].columns) for b in _BLOCKS if b in blocks and blocks[b].columns}
    proc_cols = columns.get("pipeline_processes", [])
    node_cols = columns.get("pipeline_nodes", [])
    labelled = "rlnPipeLineProcessTypeLabel" in proc_cols or "rlnPipeLineNodeTypeLabel" in node_cols
    if "rlnPipeLineNodeTypeLabelDepth" in node_cols or version == "50001":
        layout = "5.0"
    elif labelled:
        layout = "4.0"
    else:
        layout = "3.1"
    general = dict(blocks["pipeline_general"].pairs) if "pipeline_general" in blocks else {}
    try:
        counter = int(general.get("rlnPipeLineJobCounter", "1"))
    except ValueError:
        raise DataError(f"{source}: _rlnPipeLineJobCounter is {general.get('rlnPipeLineJobCounter')!r}, "
                        "not a number") from None

    def rows(block: str, required: tuple[str, ...]):
        blk = blocks.get(block)
        if blk is None or not blk.columns:
            return []
        missing = [c for c in required if c not in blk.columns]
        if missing:
            raise DataError(f"{source}: data_{block} has no column _{missing[0]}")
        cols = list(blk.columns)
        return [dict(zip(cols, vals)) for vals in zip(*(blk.columns[c].tolist() for c in cols))]

    type_col = "rlnPipeLineProcessTypeLabel" if layout != "3.1" else "rlnPipeLineProcessType"
    status_col = "rlnPipeLineProcessStatusLabel" if "rlnPipeLineProcessStatusLabel" in proc_cols \
        else "rlnPipeLineProcessStatus"
    processes = []
    for r in rows("pipeline_processes", (_PROC["name"], type_col, status_col)):
        name = r.pop(_PROC["name"])
        alias = r.pop(_PROC["alias"], "None")
        status = r.pop(status_col)
        if status_col == "rlnPipeLineProcessStatus":
            try:
                status = STATUS_31[int(status)]
            except (ValueError, KeyError):
                raise DataError(f"{source}: process {name} has status {status!r}, not one of "
                                f"{sorted(STATUS_31)}") from None
        processes.append(Process(name=name, alias=None if alias == "None" else alias, type=r.pop(type_col),
                                 status=status, extra=r))
    # every name is a job directory (Type/jobNNN/), each job number once: checked before anything
    # looks on disk for them
    seen: dict[int, str] = {}
    for proc in processes:
        shown = proc.name if len(proc.name) <= 80 else proc.name[:80] + f"... ({len(proc.name)} characters)"
        try:
            number = job_number(proc.name)
        except DataError:
            raise DataError(f"{source}: process {shown!r} is not a RELION job name (Type/jobNNN/)") from None
        if number in seen:
            raise DataError(f"{source}: job number {number} appears twice in the processes "
                            f"({seen[number]!r} and {shown!r})")
        seen[number] = proc.name
    ntype = "rlnPipeLineNodeTypeLabel" if "rlnPipeLineNodeTypeLabel" in node_cols else "rlnPipeLineNodeType"
    nodes = []
    for r in rows("pipeline_nodes", ("rlnPipeLineNodeName", ntype)):
        nodes.append(Node(name=r.pop("rlnPipeLineNodeName"), type=r.pop(ntype),
                          depth=r.pop("rlnPipeLineNodeTypeLabelDepth", None), extra=r))
    ins = [(r["rlnPipeLineEdgeFromNode"], r["rlnPipeLineEdgeProcess"])
           for r in rows("pipeline_input_edges", ("rlnPipeLineEdgeFromNode", "rlnPipeLineEdgeProcess"))]
    outs = [(r["rlnPipeLineEdgeProcess"], r["rlnPipeLineEdgeToNode"])
            for r in rows("pipeline_output_edges", ("rlnPipeLineEdgeProcess", "rlnPipeLineEdgeToNode"))]
    return Pipeline(layout=layout, version=version, job_counter=counter, processes=processes, nodes=nodes,
                    input_edges=ins, output_edges=outs, columns=columns, general=general)


def read_pipeline(path: Path | str) -> Pipeline:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise DataError(f"{path}: RELION pipeline not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read the RELION pipeline ({exc})") from None
    return parse_pipeline(text, str(path))


def _default_columns(layout: str) -> dict[str, list[str]]:
    if layout == "3.1":
        proc = ["rlnPipeLineProcessName", "rlnPipeLineProcessAlias", "rlnPipeLineProcessType",
                "rlnPipeLineProcessStatus"]
        node = ["rlnPipeLineNodeName", "rlnPipeLineNodeType"]
    else:
        proc = ["rlnPipeLineProcessName", "rlnPipeLineProcessAlias", "rlnPipeLineProcessTypeLabel",
                "rlnPipeLineProcessStatusLabel"]
        node = ["rlnPipeLineNodeName", "rlnPipeLineNodeTypeLabel"] + (
            ["rlnPipeLineNodeTypeLabelDepth"] if layout == "5.0" else [])
    return {"pipeline_processes": proc, "pipeline_nodes": node,
            "pipeline_input_edges": ["rlnPipeLineEdgeFromNode", "rlnPipeLineEdgeProcess"],
            "pipeline_output_edges": ["rlnPipeLineEdgeProcess", "rlnPipeLineEdgeToNode"]}


def _process_row(p: Process, cols: list[str]) -> list[str]:
    values = {"rlnPipeLineProcessName": p.name, "rlnPipeLineProcessAlias": p.alias or "None",
              "rlnPipeLineProcessType": p.type, "rlnPipeLineProcessTypeLabel": p.type,
              "rlnPipeLineProcessStatusLabel": p.status,
              "rlnPipeLineProcessStatus": str(_STATUS_31_BACK.get(p.status, p.status)), **p.extra}
    return [values.get(c, "None") for c in cols]


def _node_row(n: Node, cols: list[str]) -> list[str]:
    values = {"rlnPipeLineNodeName": n.name, "rlnPipeLineNodeType": n.type, "rlnPipeLineNodeTypeLabel": n.type,
              "rlnPipeLineNodeTypeLabelDepth": n.depth if n.depth is not None else "1", **n.extra}
    return [values.get(c, "None") for c in cols]


def format_pipeline(p: Pipeline) -> str:
    """The pipeline as RELION writes it: the layout, version comment and columns it was read with."""
    cols = {**_default_columns(p.layout), **p.columns}
    head = f"\n# version {p.version}\n" if p.version else "\n"
    out = [head, "\ndata_pipeline_general\n\n"]
    general = {**p.general, "rlnPipeLineJobCounter": str(p.job_counter)}
    out.extend(f"_{k:<36} {_quote(str(v))}\n" for k, v in general.items())
    out.append(" \n")
    tables = (("pipeline_processes", [_process_row(x, cols["pipeline_processes"]) for x in p.processes]),
              ("pipeline_nodes", [_node_row(x, cols["pipeline_nodes"]) for x in p.nodes]),
              ("pipeline_input_edges", [list(e) for e in p.input_edges]),
              ("pipeline_output_edges", [list(e) for e in p.output_edges]))
    for block, rows in tables:
        if not rows:
            continue  # RELION writes no table for an empty list either
        out.append(f"{head}\ndata_{block}\n\nloop_ \n")
        out.extend(f"_{c} #{j} \n" for j, c in enumerate(cols[block], 1))
        out.extend(" ".join(_quote(v) for v in r) + " \n" for r in rows)
        out.append(" \n")
    return "".join(out)


def write_pipeline(path: Path | str, p: Pipeline, durable: bool = True) -> Pipeline:
    """Write ``p`` atomically to ``path`` and parse it back (a file RELION could not read is never left)."""
    path = Path(path)
    text = format_pipeline(p)
    again = parse_pipeline(text, str(path))  # before anything is replaced
    if (again.layout, len(again.processes), len(again.nodes)) != (p.layout, len(p.processes), len(p.nodes)):
        raise DataError(f"{path}: the rewritten pipeline does not read back as written (not replaced)")
    try:
        atomic_write(path, text, durable)
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc.strerror or exc} (nothing was changed)") from None
    return read_pipeline(path)
