"""Benchmark: opening a RELION project (pipeline + job.star + sizes from disk) vs ``du -sb`` of the same tree.

Builds a RELION 4.0 project of ``--jobs`` jobs (default 1,000) with ``--files``
files each (default 200: 200,000 files), a ``default_pipeline.star`` chaining
them (each job reads its predecessor's output node), alias links, a ``Movies``
link to raw data outside and a ``Trash/``; then, in ``--rounds`` interleaved
rounds, times ``du -sb`` (the baseline) and
:func:`cryodesk.core.foreign.service.open_project` (parse the pipeline, read every
``job.star`` and exit marker, register 1,000 jobs and their edges in SQLite, measure
every job and the whole tree).  ``--cold`` evicts the tree's files from the page
cache (``posix_fadvise`` DONTNEED) before each measurement.  Prints the median and
min–max of each, the ratio, peak RSS, and checks that the sizes agree with du.
Target: open < 10 s.

Usage::

    .venv/bin/python benchmarks/relion_open.py [--jobs 1000] [--files 200] [--rounds 3] [--cold] [--dir DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from coldcache import evict_tree  # noqa: E402

TYPES = [("MotionCorr", "relion.motioncorr.own", "MicrographsData.star.relion.motioncorr", "corrected_micrographs.star"),
         ("CtfFind", "relion.ctffind.ctffind4", "MicrographsData.star.relion.ctf", "micrographs_ctf.star"),
         ("Extract", "relion.extract", "ParticlesData.star.relion", "particles.star"),
         ("Class2D", "relion.class2d", "ParticlesData.star.relion.class2d", "run_it025_data.star")]


def build(root: Path, n_jobs: int, n_files: int) -> int:
    raw = root.parent / (root.name + "-raw")
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "movie.tiff").write_bytes(b"r" * 100_000)
    h = "\n# version 30001\n\n"
    procs, nodes, ins, outs = [], [], [], []
    made = 0
    prev = None
    for j in range(1, n_jobs + 1):
        kind, label, node_label, out = TYPES[j % len(TYPES)]
        d = f"{kind}/job{j:03d}"
        jd = root / d
        (jd / "Movies").mkdir(parents=True)
        alias = f"{kind}/a{j}" if j % 10 == 0 else None
        procs.append(f"{d}/ {alias + '/' if alias else 'None'} {label} Succeeded")
        nodes.append(f"{d}/{out} {node_label}")
        outs.append(f"{d}/ {d}/{out}")
        if prev:
            ins.append(f"{prev} {d}/")
        prev = f"{d}/{out}"
        (jd / "job.star").write_text(f"\ndata_job\n\n_rlnJobTypeLabel {label}\n_rlnJobIsContinue 0\n\n"
                                     "data_joboptions_values\n\nloop_\n_rlnJobOptionVariable #1\n"
                                     "_rlnJobOptionValue #2\nnr_classes 50\nangpix 1.06\n")
        (jd / "RELION_JOB_EXIT_SUCCESS").write_text("")
        (jd / out).write_text("data_\n")
        for f in range(n_files - 3):
            with open(jd / ("Movies" if f % 2 else ".") / f"f{f}.mrc", "wb") as fh:
                fh.write(b"x" * ((j * 31 + f * 17) % 3000))
        if alias:
            os.symlink(f"../{d}/", root / alias)
        made += n_files
    text = [h, "data_pipeline_general\n\n_rlnPipeLineJobCounter ", str(n_jobs + 1), "\n\n",
            h, "data_pipeline_processes\n\nloop_\n_rlnPipeLineProcessName #1\n_rlnPipeLineProcessAlias #2\n"
            "_rlnPipeLineProcessTypeLabel #3\n_rlnPipeLineProcessStatusLabel #4\n", "\n".join(procs), "\n",
            h, "data_pipeline_nodes\n\nloop_\n_rlnPipeLineNodeName #1\n_rlnPipeLineNodeTypeLabel #2\n",
            "\n".join(nodes), "\n",
            h, "data_pipeline_input_edges\n\nloop_\n_rlnPipeLineEdgeFromNode #1\n_rlnPipeLineEdgeProcess #2\n",
            "\n".join(ins), "\n",
            h, "data_pipeline_output_edges\n\nloop_\n_rlnPipeLineEdgeProcess #1\n_rlnPipeLineEdgeToNode #2\n",
            "\n".join(outs), "\n"]
    (root / "default_pipeline.star").write_text("".join(text))
    (root / "Trash/Class2D/job9999").mkdir(parents=True)
    (root / "Trash/Class2D/job9999/run_it001_data.star").write_bytes(b"t" * 12345)
    os.symlink(raw, root / "Movies")
    return made


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=1000)
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cold", action="store_true", help="evict the tree from the page cache before each measurement")
    ap.add_argument("--dir", help="build (or reuse) the tree here instead of a temporary directory")
    args = ap.parse_args()
    from cryodesk import db as dbmod
    from cryodesk.core.foreign.service import open_project

    tmp = tempfile.mkdtemp(prefix="cryodesk-relion-bench-")
    root = Path(args.dir) if args.dir else Path(tmp) / "relion"
    try:
        if not (root / "default_pipeline.star").exists():
            t = time.perf_counter()
            n = build(root, args.jobs, args.files)
            print(f"built {n:,} files in {time.perf_counter() - t:.1f} s under {root}")
        database = dbmod.open_database(str(Path(tmp) / "bench.sqlite"))
        times: dict[str, list[float]] = {"du -sb": [], "cryodesk project open": []}
        du_bytes, info = 0, {}
        for _ in range(args.rounds):  # interleaved: the disk's mood changes between rounds, not within
            if args.cold:
                evict_tree(root)
            t = time.perf_counter()
            du_bytes = int(subprocess.run(["du", "-sb", str(root)], capture_output=True, text=True,
                                          check=True).stdout.split()[0])
            times["du -sb"].append(time.perf_counter() - t)
            if args.cold:
                evict_tree(root)
            t = time.perf_counter()
            with database.connection_context():
                _project, info = open_project(root)
            times["cryodesk project open"].append(time.perf_counter() - t)
        size = info["size"]
        print(f"jobs: {info['jobs']:,}  files: {size['files']:,}  measured {size['measured_bytes']:,} B  "
              f"du -sb {du_bytes:,} B  raw (Movies link, apart) {size['linked_bytes']:,} B  "
              f"Trash/ {size['trash_bytes']:,} B  ({'cold' if args.cold else 'warm'} cache)")
        assert size["measured_bytes"] == du_bytes, "the measured size is what du -sb says"
        for name, ts in times.items():
            print(f"  {name:24s} median {statistics.median(ts):7.3f} s   (min {min(ts):.3f} – max {max(ts):.3f}, "
                  f"{len(ts)} rounds)")
        ratio = statistics.median(times["cryodesk project open"]) / statistics.median(times["du -sb"])
        print(f"  open / du -sb (median/median): {ratio:.2f}x   peak RSS "
              f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
        med = statistics.median(times["cryodesk project open"])
        print(f"  target open < 10 s: {'OK' if med < 10 else 'SLOWER THAN TARGET'}")
        dbmod.close_database()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
