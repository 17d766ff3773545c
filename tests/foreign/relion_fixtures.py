"""Build small RELION projects for tests: 4.0/5.0 pipelines from RELION's documented labels, the real 3.1 tree.

Labels from RELION's ``src/pipeline_jobs.h`` (4.0/5.0): process types ``relion.<type>``, statuses
``Succeeded``/``Failed``/``Aborted``/``Running``, node labels such as ``ParticlesData.star.relion``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# (directory, alias, type label, status, outputs [(file, node label)], inputs [node names])
JOBS = [
    ("Import/job001", "Import/movies", "relion.importmovies", "Succeeded",
     [("movies.star", "MicrographMoviesData.star.relion")], []),
    ("MotionCorr/job002", None, "relion.motioncorr.own", "Succeeded",
     [("corrected_micrographs.star", "MicrographsData.star.relion.motioncorr")], ["Import/job001/movies.star"]),
    ("CtfFind/job003", None, "relion.ctffind.ctffind4", "Succeeded",
     [("micrographs_ctf.star", "MicrographsData.star.relion.ctf")],
     ["MotionCorr/job002/corrected_micrographs.star"]),
    ("Extract/job004", "Extract/first", "relion.extract", "Succeeded",
     [("particles.star", "ParticlesData.star.relion")], ["CtfFind/job003/micrographs_ctf.star"]),
    ("Class2D/job005", None, "relion.class2d", "Succeeded",
     [("run_it003_data.star", "ParticlesData.star.relion.class2d"),
      ("run_it003_optimiser.star", "ProcessData.star.relion.optimiser.class2d")],
     ["Extract/job004/particles.star"]),
    ("Select/job006", None, "relion.select.interactive", "Succeeded",
     [("particles.star", "ParticlesData.star.relion")], ["Class2D/job005/run_it003_optimiser.star",
                                                         "Class2D/job005/run_it002_data.star"]),
    ("Class3D/job007", None, "relion.class3d", "Failed", [], ["Select/job006/particles.star"]),
]


def pipeline_text(layout: str) -> str:
    """A default_pipeline.star in the 4.0 or 5.0 layout for :data:`JOBS`."""
    version = "50001" if layout == "5.0" else "30001"
    depth = layout == "5.0"
    h = f"\n# version {version}\n\n"
    out = [h, "data_pipeline_general\n\n_rlnPipeLineJobCounter 8\n\n", h, "data_pipeline_processes\n\nloop_\n",
           "_rlnPipeLineProcessName #1\n_rlnPipeLineProcessAlias #2\n_rlnPipeLineProcessTypeLabel #3\n"
           "_rlnPipeLineProcessStatusLabel #4\n"]
    for d, alias, t, st, _o, _i in JOBS:
        out.append(f"{d}/ {alias + '/' if alias else 'None'} {t} {st}\n")
    out += [h, "data_pipeline_nodes\n\nloop_\n_rlnPipeLineNodeName #1\n_rlnPipeLineNodeTypeLabel #2\n"]
    if depth:
        out.append("_rlnPipeLineNodeTypeLabelDepth #3\n")
    nodes = [(f"{d}/{f}", lab) for d, _a, _t, _s, outs, _i in JOBS for f, lab in outs]
    nodes.append(("Class2D/job005/run_it002_data.star", "ParticlesData.star.relion.class2d"))
    for n, lab in nodes:
        out.append(f"{n} {lab}" + (" 1\n" if depth else "\n"))
    out += [h, "data_pipeline_input_edges\n\nloop_\n_rlnPipeLineEdgeFromNode #1\n_rlnPipeLineEdgeProcess #2\n"]
    for d, _a, _t, _s, _o, ins in JOBS:
        out.extend(f"{n} {d}/\n" for n in ins)
    out += [h, "data_pipeline_output_edges\n\nloop_\n_rlnPipeLineEdgeProcess #1\n_rlnPipeLineEdgeToNode #2\n"]
    for d, _a, _t, _s, outs, _i in JOBS:
        out.extend(f"{d}/ {d}/{f}\n" for f, _lab in outs)
    out.append("Class2D/job005/ Class2D/job005/run_it002_data.star\n")
    return "".join(out)


def _write(path: Path, size: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        fh.write(b"\0" * size)


def build_project(root: Path, layout: str = "4.0", movies: Path | None = None) -> Path:
    """A RELION project of :data:`JOBS` with small synthetic files, a Movies link and alias links."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "default_pipeline.star").write_text(pipeline_text(layout))
    for d, alias, t, st, outs, _i in JOBS:
        jd = root / d
        jd.mkdir(parents=True)
        (jd / "job.star").write_text(f"\ndata_job\n\n_rlnJobTypeLabel {t}\n_rlnJobIsContinue 0\n\n"
                                     "data_joboptions_values\n\nloop_\n_rlnJobOptionVariable #1\n"
                                     "_rlnJobOptionValue #2\nnr_classes 50\nfn_img particles.star\n")
        (jd / "note.txt").write_text("relion command\n")
        (jd / "run.out").write_text("log\n")
        marker = {"Succeeded": "RELION_JOB_EXIT_SUCCESS", "Failed": "RELION_JOB_EXIT_FAILURE"}[st]
        (jd / marker).write_text("")
        for f, _lab in outs:
            _write(jd / f, 1000)
        if alias:
            os.symlink(f"../{d}/", root / alias)
    # bulky data per job type, where RELION's cleanup rules look
    _write(root / "MotionCorr/job002/Movies/mic1.mrc", 50_000)
    _write(root / "MotionCorr/job002/Movies/mic1.log", 100)
    _write(root / "CtfFind/job003/Movies/mic1_PS.mrc", 20_000)
    _write(root / "CtfFind/job003/gctf_1.out", 10)
    _write(root / "Extract/job004/Movies/mic1.mrcs", 80_000)
    _write(root / "Extract/job004/Movies/mic1_extract.star", 300)
    for it in (1, 2, 3):
        for part in ("data.star", "model.star", "optimiser.star", "classes.mrcs"):
            if not (root / f"Class2D/job005/run_it{it:03d}_{part}").exists():
                _write(root / f"Class2D/job005/run_it{it:03d}_{part}", 2000 + it)
    # raw data outside the project, reached through the Movies link
    if movies is None:
        movies = root.parent / (root.name + "-raw")
    _write(movies / "m1.tiff", 123_456)
    os.symlink(movies, root / "Movies")
    return root


def copy_tutorial(realdata: Path, dest: Path) -> Path:
    """A writable copy of the real 3.1 tutorial project (its files are read-only in /work/shared)."""
    shutil.copytree(realdata / "relion31_tutorial", dest, symlinks=True)
    for dirpath, _dirnames, filenames in os.walk(dest):
        os.chmod(dirpath, 0o755)
        for f in filenames:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                os.chmod(p, 0o644)
    return dest


def write_bulky(root: Path, star: str, size: int = 4096) -> list[Path]:
    """Synthetic stacks/micrographs at every path the STAR file ``star`` (relative to ``root``) points to."""
    from cryodesk.io.star import read_star

    blocks = read_star(root / star)
    paths: set[str] = set()
    for blk in blocks.values():
        for label in ("rlnImageName", "rlnMicrographName"):
            if label in blk.columns:
                paths.update(v.split("@", 1)[-1] for v in blk.columns[label].tolist())
    out = []
    for rel in sorted(paths):
        p = root / rel
        if not p.exists():
            _write(p, size)
            out.append(p)
    return out
