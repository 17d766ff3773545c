"""What RELION's own clean-up removes, per job type (``PipeLine::cleanupJob``, harsh), and iterations.

Harsh clean (RELION 3.1-5.0), every path inside the job's directory:

* every job: ``*.old`` (left by continued runs);
* MotionCorr: every sub-directory (the motion-corrected micrographs);
* CtfFind: ``gctf*.out``, ``gctf*.err`` and every sub-directory (power spectra);
* AutoPick: ``*.spi`` in sub-directories (figure-of-merit maps);
* Extract: every sub-directory (the particle stacks);
* Class2D / Class3D / Refine3D / InitialModel / MultiBody: every file of each
  iteration ``<root>_itNNN_`` whose name no pipeline node contains;
* Polish: ``*.mrc``, ``shiny*xml`` and every sub-directory;
* Subtract: ``subtracted.*``;  PostProcess: ``*masked.mrc``.

What stays is what RELION needs to show and continue the job: ``job.star``,
``run.job``, ``note.txt``, ``run.out``/``run.err``, the exit marker, ``job_pipeline.star``
and the output nodes of the pipeline (``particles.star``, the last iteration ...).
A job with a ``NO_HARSH_CLEAN`` file is skipped, as RELION skips it.  The gentle clean
(:func:`harsh_paths` with ``harsh=False``) removes only MotionCorr's ``*.com|err|out|log`` and Extract's
``*_extract.star`` (and Polish's ``*.star``) in sub-directories instead of the sub-directories, and
nothing of Subtract.
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path

ITERATIVE = ("Class2D", "Class3D", "Refine3D", "InitialModel", "MultiBody")
KEEP = {"job.star", "run.job", "note.txt", "run.out", "run.err", "job_pipeline.star", "default_pipeline.star",
        "RELION_JOB_EXIT_SUCCESS", "RELION_JOB_EXIT_FAILURE", "RELION_JOB_EXIT_ABORTED", "NO_HARSH_CLEAN",
        "RELION_OUTPUT_NODES.star", ".run.out.tail", ".run.err.tail"}
#: ``run_it025_data.star``, ``run_ct3_it012_half1_class001.mrc``: (root up to _it, iteration)
ITER = re.compile(r"^(.*_it)([0-9]{3})_")
#: cleanup categories cryodesk's Cleanup Data uses, by RELION job type
CATEGORY = {"MotionCorr": "motion", "CtfFind": "ctf", "AutoPick": "picking", "ManualPick": "picking",
            "Extract": "extraction"}


def _entries(d: Path):
    try:
        with os.scandir(d) as it:
            return sorted(it, key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        return []


def _subdirs(d: Path) -> list:
    return [e for e in _entries(d) if e.is_dir(follow_symlinks=False)]


def _walk_files(project_dir: Path, job_dir: str, patterns: tuple[str, ...]) -> set[str]:
    """Files below the job's sub-directories (not its top level) matching ``patterns``; links not followed."""
    out = set()
    for root, _dirs, names in os.walk(Path(project_dir) / job_dir):
        rel = os.path.relpath(root, project_dir)
        if rel != job_dir:
            out.update(f"{rel}/{n}" for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns))
    return out


def harsh_paths(project_dir: Path, job_dir: str, kind: str, nodes: set[str], harsh: bool = True) -> list[str]:
    """Paths (relative to the project) RELION's clean removes from ``job_dir`` of type ``kind``.

    ``harsh=False``: RELION's *gentle* clean — MotionCorr's ``*.com|err|out|log`` and
    Extract's ``*_extract.star`` in sub-directories, Polish's sub-directory ``*.star``,
    nothing of Subtract; the other rules are the same for both.
    """
    jd = Path(project_dir) / job_dir
    if harsh and os.path.lexists(jd / "NO_HARSH_CLEAN"):
        return []
    top = _entries(jd)
    out: set[str] = {f"{job_dir}/{e.name}" for e in top if e.name.endswith(".old")}

    def files(pattern: str, entries=top, prefix: str = job_dir):
        out.update(f"{prefix}/{e.name}" for e in entries
                   if not e.is_dir(follow_symlinks=False) and fnmatch.fnmatchcase(e.name, pattern))

    if kind == "CtfFind" or (harsh and kind in ("MotionCorr", "Extract", "Polish")):
        out.update(f"{job_dir}/{e.name}" for e in _subdirs(jd))
    elif kind == "MotionCorr":
        out.update(_walk_files(project_dir, job_dir, ("*.com", "*.err", "*.out", "*.log")))
    elif kind == "Extract":
        out.update(_walk_files(project_dir, job_dir, ("*_extract.star",)))
    elif kind == "Polish":
        out.update(_walk_files(project_dir, job_dir, ("*.star",)))
    if kind == "CtfFind":
        files("gctf*.out")
        files("gctf*.err")
    elif kind == "AutoPick":
        out.update(_walk_files(project_dir, job_dir, ("*.spi",)))  # (os.walk never follows links)
    if kind == "Polish":
        files("*.mrc")
        files("shiny*xml")
    elif kind == "Subtract" and harsh:
        files("subtracted.*")
    elif kind == "PostProcess":
        files("*masked.mrc")
    elif kind in ITERATIVE:
        out.update(iteration_paths(project_dir, job_dir, nodes, keep_last=False))
    return sorted(p for p in out if p.rsplit("/", 1)[-1] not in KEEP and p not in nodes)


def iteration_paths(project_dir: Path, job_dir: str, nodes: set[str], keep_last: bool = True) -> list[str]:
    """Files of iterations no pipeline node names (RELION's rule), and, with ``keep_last``, never the last one.

    An iteration is kept when any node's path contains its prefix
    (``Class2D/job008/run_it025_``): another job reads it, or it is the job's output.
    """
    groups: dict[str, dict[int, list[str]]] = {}
    for e in _entries(Path(project_dir) / job_dir):
        m = ITER.match(e.name)
        if m and not e.is_dir(follow_symlinks=False):
            groups.setdefault(m.group(1), {}).setdefault(int(m.group(2)), []).append(e.name)
    out = []
    for root, iters in groups.items():
        last = max(iters)
        for it, names in iters.items():
            prefix = f"{job_dir}/{root}{it:03d}_"
            if keep_last and it == last:
                continue
            if any(prefix in n for n in nodes):
                continue
            out.extend(f"{job_dir}/{n}" for n in names)
    return sorted(out)
