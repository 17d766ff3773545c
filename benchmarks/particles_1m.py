"""Benchmark: a 1,000,000-particle CryoSPARC refinement ``.cs`` through the real CLI.

Builds (once, under ``--dir``) a CryoSPARC-v4-refinement-shaped particle set:
``uid``, ``blob/*``, ``ctf/*``, ``alignments3D/*``, ``location/*`` and
``pick_stats/*`` with CryoSPARC's dtypes (those of the EMPIAR-10076 ``.cs`` in
``shared/realdata`` for ``blob``/``ctf``; refinement statistics as float32),
project-relative ``blob/path`` values of CryoSPARC's length
(``J3/extract/<20-digit>_FoilHole_…_patch_aligned_doseweighted_particles.mrc``)
and ``location/micrograph_path`` values, over ``--stacks`` per-micrograph stacks
of tiny images (``--box``, default 8: the image bytes stay small, so what is
measured is the metadata), 80 % of each stack's images selected (as after a
2D selection).

Then, for each round (``--rounds``, interleaved: every operation and baseline
once per round), each in a child process of its own (wall time and peak RSS
from ``os.wait4`` in a small meter process):

* ``import .cs``      ``cryodesk job run`` of ``import_particles`` on the ``.cs``
* ``restack``         ``cryodesk job run`` of ``restack_particles`` on that import
* ``export STAR``     ``cryodesk job run`` of ``export_particles format=relion``
* ``import STAR``     ``cryodesk job run`` of ``import_particles`` on that STAR file

and the baselines, each in its own child process:

* ``job run (1 particle)``  the fixed cost of ``cryodesk job run`` (interpreter, imports, DB, engine)
* ``numpy.load``            of the same ``.cs`` (what reading the file costs)
* ``numpy.load + save``     read and write the same ``.cs`` once (an import's unavoidable I/O)
* ``gather (images only)``  ``plan_gather`` + ``execute_plan`` of the same items, timed inside the child
  (the image part of a restack)
* ``starfile.read`` / ``starfile.write``  the same STAR file (pandas), timed inside the child
* with ``--old TREE`` (e.g. ``/work/main``): the same four CLI operations run from another checkout
  (the code before this change), in a project of their own

Medians over the rounds with [min–max].  ``--cold`` fsyncs and evicts the
benchmark's own files (``posix_fadvise(POSIX_FADV_DONTNEED)``, nothing else) before
every timed step.  ``--steps import`` runs only the ``.cs`` import (and the job-run and numpy baselines); ``--steps star``
only the STAR import (of one ``particles.star`` exported once, the same file for ``--old``).
The import job logs its phases (read, locate, validate, write, link: its thread, link wait) and the
restack job its metadata phases; the benchmark prints them (``restack metadata``: everything but the gather) next to the targets of
issue 19: import <= 2 s and peak RSS <= 2 x file + 100 MB; restack metadata <= 2 s;
STAR import and export <= 5 s each.

Usage::

    .venv/bin/python benchmarks/particles_1m.py --dir /work/tmp-bench-meta [--n 1000000]
        [--rounds 3] [--cold] [--old /work/main] [--keep] [--steps import]
    .venv/bin/python benchmarks/particles_1m.py --steps export --copy --old /work/tmp-old   # the STAR export alone:
        # stacks linked (the default) and copied (copy_stacks=true), the files' sha256 compared, the
        # export's phases as the job logs them; against a tree before the compiled poses the sha256 differs
        # (the angles' last digits: see the README, "The STAR export, second round"); the exports' links
        # are removed after the last round (see round_export: on an ext4 without a journal, links made
        # within minutes of removing thousands of files in the same block group cost ~20x the system time)

Quiet, a new machine (2026-12-02; ``--old`` the tree before in the same rounds): ``--steps import`` 1.66 s
[1.47-1.73], 620 MB; ``--steps restack`` 4.22 s, 697 MB, metadata 2.50 s (old 2.56 s; ``numpy.load + save``
of the ``.cs`` alone 1.93 s here), gather 1.40 s; ``--steps star`` 4.03 s (old 1.08 x); ``all``: export
STAR 4.73 s (old 5.31 s); in ``all`` the later rounds of every step are slower (what a step reads was
idle for minutes, longer than this VM's DAMON keeps page cache).

STAR import with less fresh memory (star_raw, cs_columns, coded paths; ``--steps star --old`` = main, 2026-12-02,
3 warm rounds, the machine shared: load 1.4-1.8; on this VM a first-touched MB costs ~1-3 ms of system time)::

    import STAR           5.73 s [5.30-6.45]  1027 MB    old 7.16 s [6.80-7.72]  1543 MB   (.cs, links identical)
    (read phase in the job 4.37 s against 5.80 s; another run 5.11 s [4.08-5.22] against 6.64 s [6.07-7.55])

Under load 9-10 (2026-12-01, five helpers' test suites) every time was ~5 x an idle machine's (import
.cs 19.6 s, restack 23.9 s, export 107 s, import STAR 100 s; the table is in this file's history).
Peak RSS of the import is 744 MB against the target 2 x 527 MiB + 100 = 1155 MB (the code before,
in one process under cProfile and the same load: 31.0 s and 2,383 MB against 9.7 s and 792 MB).
The STAR conversions alone (``cs_to_star`` + ``write_star``, ``read_star`` + ``star_to_cs``) on the
first 100,000 rows, old code (``/work/main``) and new alternating, two rounds each: export 10.7 /
10.8 s -> 3.8 / 5.2 s, import 9.9 / 10.1 s -> 4.3 / 5.1 s, peak RSS 707 -> 402 MB.  The times are far
above the 2 s / 5 s targets on this loaded machine; STAR export and import are now bound by numpy's
float <-> text conversions (Dragon4 / strtod, one per value), the .cs import by one symlink and one
header read per stack (5,000 here) and the write of the new .cs.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from coldcache import evict_tree  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable

# ---------------------------------------------------------------- the data

_F4 = "<f4"
FIELDS = [
    ("uid", "<u8", ()),
    ("blob/path", None, ()), ("blob/idx", "<u4", ()), ("blob/shape", "<u4", (2,)),
    ("blob/psize_A", _F4, ()), ("blob/sign", _F4, ()), ("blob/import_sig", "<u8", ()),
    ("ctf/type", "S9", ()), ("ctf/exp_group_id", "<u4", ()), ("ctf/accel_kv", _F4, ()),
    ("ctf/cs_mm", _F4, ()), ("ctf/amp_contrast", _F4, ()), ("ctf/df1_A", _F4, ()), ("ctf/df2_A", _F4, ()),
    ("ctf/df_angle_rad", _F4, ()), ("ctf/phase_shift_rad", _F4, ()), ("ctf/scale", _F4, ()),
    ("ctf/scale_const", _F4, ()), ("ctf/shift_A", _F4, (2,)), ("ctf/tilt_A", _F4, (2,)),
    ("ctf/trefoil_A", _F4, (2,)), ("ctf/tetra_A", _F4, (4,)), ("ctf/anisomag", _F4, (4,)),
    ("ctf/bfactor", _F4, ()),
    ("alignments3D/split", "<u4", ()), ("alignments3D/shift", _F4, (2,)), ("alignments3D/pose", _F4, (3,)),
    ("alignments3D/psize_A", _F4, ()), ("alignments3D/error", _F4, ()), ("alignments3D/error_min", _F4, ()),
    ("alignments3D/resid_pow", _F4, ()), ("alignments3D/slice_pow", _F4, ()),
    ("alignments3D/image_pow", _F4, ()), ("alignments3D/cross_cor", _F4, ()), ("alignments3D/alpha", _F4, ()),
    ("alignments3D/alpha_min", _F4, ()), ("alignments3D/weight", _F4, ()), ("alignments3D/pose_ess", _F4, ()),
    ("alignments3D/shift_ess", _F4, ()), ("alignments3D/class_posterior", _F4, ()),
    ("alignments3D/class", "<u4", ()), ("alignments3D/class_ess", _F4, ()),
    ("location/micrograph_uid", "<u8", ()), ("location/exp_group_id", "<u4", ()),
    ("location/micrograph_path", None, ()), ("location/micrograph_shape", "<u4", (2,)),
    ("location/micrograph_psize_A", _F4, ()), ("location/center_x_frac", _F4, ()),
    ("location/center_y_frac", _F4, ()),
    ("pick_stats/ncc_score", _F4, ()), ("pick_stats/power", _F4, ()), ("pick_stats/template_idx", "<u4", ()),
    ("pick_stats/angle_rad", _F4, ()),
]


def _mic_names(n_mics: int, rng) -> list[str]:
    sig = rng.integers(10**18, 10**19, size=n_mics, dtype=np.uint64)
    return [f"{int(s):020d}_FoilHole_{24681357 + k // 4}_Data_{24671234 + k % 4}_{24671236 + k}_"
            f"20230512_{83015 + k:06d}_fractions" for k, s in enumerate(sig)]


def build(root: Path, n: int, n_stacks: int, box: int, seed: int = 0) -> dict:
    """Write the stacks and the ``.cs`` under ``root`` (skipped when already there)."""
    info_path = root / "build.json"
    if info_path.exists():
        info = json.loads(info_path.read_text())
        if info.get("n") == n and info.get("stacks") == n_stacks and info.get("box") == box:
            return info
    sys.path.insert(0, str(REPO))
    from cryodesk.io.mrc import make_header

    shutil.rmtree(root / "csproj", ignore_errors=True)
    rng = np.random.default_rng(seed)
    proj = root / "csproj"  # the CryoSPARC project directory (particle_blob_path)
    (proj / "J3" / "extract").mkdir(parents=True)
    per_stack_sel = -(-n // n_stacks)
    per_stack = int(np.ceil(per_stack_sel / 0.8))
    mics = _mic_names(n_stacks, rng)
    stack_rel = [f"J3/extract/{m}_patch_aligned_doseweighted_particles.mrc" for m in mics]
    mic_rel = [f"J2/motioncorrected/{m}_patch_aligned_doseweighted.mrc" for m in mics]
    image = rng.standard_normal((per_stack, box, box), dtype=np.float32)
    header = make_header(box, box, per_stack, 2, 1.06)
    for k, rel in enumerate(stack_rel):
        with open(proj / rel, "wb") as fh:
            fh.write(header)
            fh.write((image + np.float32(k)).tobytes())
    # 80 % of each stack, in stack order (as an extraction -> 2D selection -> refinement keeps them)
    idx, stack_of = [], []
    for k in range(n_stacks):
        keep = np.sort(rng.choice(per_stack, size=per_stack_sel, replace=False))
        idx.append(keep)
        stack_of.append(np.full(per_stack_sel, k))
    idx = np.concatenate(idx)[:n].astype(np.uint32)
    stack_of = np.concatenate(stack_of)[:n]
    paths = np.array(stack_rel, dtype="S")
    mpaths = np.array(mic_rel, dtype="S")
    dtype = [(name, (paths.dtype if name == "blob/path" else mpaths.dtype) if dt is None else dt, shape)
             for name, dt, shape in FIELDS]
    d = np.zeros(n, dtype=dtype)
    d["uid"] = rng.permutation(np.unique(rng.integers(1, 2**63, size=n + 1000, dtype=np.uint64)))[:n]
    d["blob/path"] = paths[stack_of]
    d["blob/idx"] = idx
    d["blob/shape"] = box
    d["blob/psize_A"] = 1.06
    d["blob/sign"] = -1.0
    d["blob/import_sig"] = rng.integers(0, 2**63, dtype=np.uint64)
    d["ctf/type"] = b"spline"
    group = np.minimum(stack_of // max(n_stacks // 8, 1), 7).astype(np.uint32) + 1  # 8 exposure groups
    d["ctf/exp_group_id"] = group
    d["location/exp_group_id"] = group
    d["ctf/accel_kv"], d["ctf/cs_mm"], d["ctf/amp_contrast"], d["ctf/scale"] = 300.0, 2.7, 0.1, 1.0
    df = rng.uniform(8000, 25000, size=n_stacks).astype(np.float32)[stack_of]
    d["ctf/df1_A"] = df + rng.normal(0, 50, n).astype(np.float32)
    d["ctf/df2_A"] = df - rng.uniform(0, 400, n).astype(np.float32)
    d["ctf/df_angle_rad"] = rng.uniform(-np.pi, np.pi, n).astype(np.float32)
    tilt = rng.normal(0, 0.05, size=(9, 2)).astype(np.float32)
    d["ctf/tilt_A"] = tilt[group]
    d["ctf/trefoil_A"] = rng.normal(0, 0.01, size=(9, 2)).astype(np.float32)[group]
    d["ctf/anisomag"] = rng.normal(0, 1e-3, size=(9, 4)).astype(np.float32)[group]
    d["alignments3D/split"] = rng.integers(0, 2, n).astype(np.uint32)
    d["alignments3D/shift"] = rng.normal(0, 2, (n, 2)).astype(np.float32)
    pose = rng.normal(size=(n, 3))
    pose *= (rng.uniform(0, np.pi, n) / np.linalg.norm(pose, axis=1))[:, None]
    d["alignments3D/pose"] = pose.astype(np.float32)
    d["alignments3D/psize_A"] = 1.06
    for f in ("error", "error_min", "resid_pow", "slice_pow", "image_pow", "cross_cor", "alpha", "alpha_min",
              "weight", "pose_ess", "shift_ess", "class_posterior", "class_ess"):
        d[f"alignments3D/{f}"] = rng.random(n, dtype=np.float32)
    d["location/micrograph_uid"] = rng.integers(1, 2**63, size=n_stacks, dtype=np.uint64)[stack_of]
    d["location/micrograph_path"] = mpaths[stack_of]
    d["location/micrograph_shape"] = (4092, 5760)
    d["location/micrograph_psize_A"] = 1.06
    d["location/center_x_frac"] = rng.random(n, dtype=np.float32)
    d["location/center_y_frac"] = rng.random(n, dtype=np.float32)
    d["pick_stats/ncc_score"] = rng.random(n, dtype=np.float32)
    d["pick_stats/power"] = rng.uniform(100, 1000, n).astype(np.float32)
    d["pick_stats/template_idx"] = rng.integers(0, 50, n).astype(np.uint32)
    d["pick_stats/angle_rad"] = rng.uniform(0, 2 * np.pi, n).astype(np.float32)
    cs = root / "J10_particles.cs"
    with open(cs, "wb") as fh:
        np.save(fh, d)
    small = root / "J10_one.cs"
    with open(small, "wb") as fh:
        np.save(fh, d[:1])
    info = {"n": n, "stacks": n_stacks, "box": box, "cs": str(cs), "one": str(small), "proj": str(proj),
            "cs_bytes": cs.stat().st_size}
    info_path.write_text(json.dumps(info))
    return info


# ---------------------------------------------------------------- measuring


def child(argv: list[str], env: dict, root: Path, cold: bool, cwd: Path = REPO) -> tuple[float, float, str]:
    """Run ``argv`` in ``cwd`` (``python -m`` puts it first on sys.path); (wall s, peak RSS MB, stdout)."""
    if cold:
        evict_tree(root)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, \
            tempfile.NamedTemporaryFile(suffix=".rss") as rss:
        t0 = time.perf_counter()
        # through a small meter process: a child forked from this (large) process would report this
        # process's RSS at fork time as its own peak (Linux carries the old mm's high-water mark over exec)
        proc = subprocess.Popen([sys.executable, "-c", _METER, rss.name, *argv], env=env, stdout=out,
                                stderr=err, cwd=cwd)
        proc.wait()
        wall = time.perf_counter() - t0
        out.seek(0)
        err.seek(0)
        text, etext = out.read().decode(), err.read().decode()
        peak_kb = float(Path(rss.name).read_text() or 0)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv[:6])}... failed ({proc.returncode}):\n{etext[-3000:]}\n{text[-2000:]}")
    return wall, peak_kb / 1024.0, text


_METER = """import os, subprocess, sys
p = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(p.pid, 0)
open(sys.argv[1], "w").write(str(usage.ru_maxrss))
sys.exit(os.waitstatus_to_exitcode(status))
"""


class Cli:
    """``cryodesk`` commands from one checkout (``tree``), in a project of its own."""

    def __init__(self, tree: Path, root: Path, name: str):
        self.tree, self.root = tree, root
        self.db = root / f"{name}.sqlite"
        self.env = {**os.environ, "PYTHONPATH": str(tree), "CRYODESK_DB": str(self.db),
                    "XDG_CONFIG_HOME": str(root / f"{name}-config"), "QT_QPA_PLATFORM": "offscreen"}
        self.proj = root / f"{name}-project"
        if not self.db.exists():
            shutil.rmtree(self.proj, ignore_errors=True)
            self.call("project", "create", "--title", name, "--dir", str(self.proj))
            self.call("workspace", "create", "P1", "--title", "bench")

    def call(self, *args: str) -> str:
        res = subprocess.run([PY, "-m", "cryodesk.cli.main", *args], env=self.env, capture_output=True, text=True,
                             cwd=self.tree)
        if res.returncode != 0:
            raise RuntimeError(f"cryodesk {' '.join(args)} failed:\n{res.stderr[-3000:]}")
        return res.stdout

    def create(self, jtype: str, *extra: str) -> str:
        return json.loads(self.call("job", "create", "P1", jtype, "--json", *extra))["uid"]

    def run(self, uid: str, cold: bool) -> tuple[float, float]:
        wall, rss, _ = child([PY, "-m", "cryodesk.cli.main", "job", "run", "P1", uid], self.env, self.root, cold,
                             cwd=self.tree)
        return wall, rss

    def job_log(self, uid: str) -> str:
        p = self.proj / uid / "job.log"
        return p.read_text() if p.exists() else ""


def _phases(log: str, marker: str = "restack timings:") -> dict:
    """The ``restack timings: {...}`` (or ``marker``) line of a job log, if the code writes one."""
    for line in reversed(log.splitlines()):
        if marker in line:
            try:
                return json.loads(line.split(marker, 1)[1])
            except ValueError:
                return {}
    return {}


def _one_import(cli: Cli, info: dict, tag: str) -> str:
    """The uid of this tree's one import of the ``.cs`` (made, untimed, on first use; kept in ``info``)."""
    key = f"{tag}import uid"
    if key not in info:
        info[key] = cli.create("import_particles", "-p", f"particle_meta_path={info['cs']}",
                               "-p", f"particle_blob_path={info['proj']}")
        cli.run(info[key], False)
    return info[key]


def round_export(cli: Cli, info: dict, cold: bool, results: dict, tag: str, copy: bool) -> None:
    """``--steps export``: the STAR export alone (of one import per tree, made in the first round), stacks
    linked (the default) and, with ``--copy``, copied (``copy_stacks=true``)."""
    j_imp = _one_import(cli, info, tag)
    for variant, extra in [("", ())] + ([(" (copy_stacks)", ("-p", "copy_stacks=true"))] if copy else []):
        j_ex = cli.create("export_particles", "-i", f"particles={j_imp}", "-p", "format=relion", *extra)
        results.setdefault(f"{tag}export STAR{variant}", []).append(cli.run(j_ex, cold))
        for phase, secs in _phases(cli.job_log(j_ex), "export timings:").items():  # as the job logs them
            results.setdefault(f"{tag}  export {phase}{variant} (in job)", []).append((secs, 0.0))
        out = cli.proj / j_ex / "exported"
        info.setdefault("star_sha", {}).setdefault(f"{tag}{variant}", _sha(out / "particles.star"))
        (out / "particles.star").unlink()  # room on the disk
        # The links are removed after the last round, not here: on an ext4 without a journal (this VM's) a new
        # inode is never one freed in the last 60-300 s, and each allocation walks past every such inode of its
        # block group (recently_deleted() in find_inode_bit), so 5,000 links removed just before the next
        # export made its 5,000 links cost ~0.9 ms of system time each instead of ~50 us.
        info.setdefault("remove_after", []).append(out / "stacks")


def round_restack(cli: Cli, info: dict, cold: bool, results: dict, tag: str) -> None:
    """``--steps restack``: the restack alone, of one import per tree (``all``'s rounds take minutes: what a
    restack reads sits idle longer than this VM's DAMON keeps page cache, 60 s)."""
    j_imp = _one_import(cli, info, tag)
    j_rs = _timed_restack(cli, j_imp, cold, results, tag)
    shutil.rmtree(cli.proj / j_rs / "restack", ignore_errors=True)  # room on the disk


def _timed_restack(cli: Cli, j_imp: str, cold: bool, results: dict, tag: str) -> str:  # its uid; phases logged
    j_rs = cli.create("restack_particles", "-i", f"particles={j_imp}", "-p", "particles_per_file=100000")
    results.setdefault(f"{tag}restack", []).append(cli.run(j_rs, cold))
    ph = _phases(cli.job_log(j_rs))
    if ph:
        results.setdefault(f"{tag}restack metadata (in job)", []).append((ph.get("metadata", 0.0), 0.0))
        results.setdefault(f"{tag}restack gather (in job)", []).append((ph.get("gather", 0.0), 0.0))
    return j_rs


def round_star_import(cli: Cli, info: dict, cold: bool, results: dict, tag: str, maker: Cli) -> None:
    """``--steps star``: the STAR import alone, of one ``particles.star`` (exported once, by ``maker``: the same
    file for every tree), its phases as the job logs them; the job's .cs removed after each round, its links
    kept (moved to ``star-trash/`` under ``--dir``; remove it by hand, minutes before a run): ext4 does not reuse
    an inode freed in the last 60 s (360 s while its table block is dirty) and scans past every such inode of
    the group for each new one, so 5,000 links made after 5,000 were removed cost 2-7 s of kernel time instead
    of 0.1-0.5 s (``perf``: ``recently_deleted`` under ``ext4_symlink``)."""
    if "star" not in info:
        j_imp = maker.create("import_particles", "-p", f"particle_meta_path={info['cs']}",
                             "-p", f"particle_blob_path={info['proj']}")
        maker.run(j_imp, False)
        j_ex = maker.create("export_particles", "-i", f"particles={j_imp}", "-p", "format=relion")
        maker.run(j_ex, False)
        (maker.proj / j_imp / "imported_particles.cs").unlink(missing_ok=True)  # the export links the stacks
        info["star"] = str(maker.proj / j_ex / "exported" / "particles.star")
    j_si = cli.create("import_particles", "-p", f"particle_meta_path={info['star']}")
    results.setdefault(f"{tag}import STAR", []).append(cli.run(j_si, cold))
    for phase, secs in _phases(cli.job_log(j_si), "import timings:").items():
        results.setdefault(f"{tag}  import STAR {phase} (in job)", []).append((secs, 0.0))
    job = cli.proj / j_si
    info.setdefault("star_out", {}).setdefault(tag, []).append(_outputs(job, j_si))  # compared at the end
    (job / "imported_particles.cs").unlink(missing_ok=True)  # room on the disk; the links are removed at the end
    trash = cli.root / "star-trash"
    trash.mkdir(exist_ok=True)
    os.rename(job, trash / f"{cli.db.stem}-{j_si}")


def _outputs(job: Path, uid: str) -> tuple[str, str]:
    """sha256 of a STAR import's .cs and of its links (``name -> target``, sorted).

    The .cs names its own job in ``blob/path`` (``J7/imported/...``) and the trees number jobs apart: its
    bytes are hashed with that name masked when both have one length; else (``J9`` and ``J10``) its fields
    are, ``blob/path`` as text without the job's name.
    """
    import hashlib

    links = sorted(os.listdir(job / "imported"))
    text = "".join(f"{n} -> {os.readlink(job / 'imported' / n)}\n" for n in links)
    h = hashlib.sha256()
    data = np.load(job / "imported_particles.cs", mmap_mode="r")
    for name in data.dtype.names:
        col = data[name]
        if name == "blob/path":
            h.update(b"".join(np.unique(col)).replace(f"{uid}/imported/".encode(), b"J?/imported/"))
            h.update(np.unique(col, return_inverse=True)[1].astype("<i8").tobytes())
        else:
            h.update(f"{name}:{col.dtype.str}{col.shape[1:]}".encode())
            h.update(np.ascontiguousarray(col).tobytes())
    return h.hexdigest(), f"{len(links)} links {hashlib.sha256(text.encode()).hexdigest()}"


def _sha(path: Path) -> str:
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


def round_ops(cli: Cli, info: dict, cold: bool, results: dict, tag: str, steps: str = "all") -> None:
    """The four CLI operations (``steps="import"``: the ``.cs`` import only), each timed in its own child."""
    j_imp = cli.create("import_particles", "-p", f"particle_meta_path={info['cs']}",
                       "-p", f"particle_blob_path={info['proj']}")
    results.setdefault(f"{tag}import .cs", []).append(cli.run(j_imp, cold))
    for phase, secs in _phases(cli.job_log(j_imp), "import timings:").items():  # as the job logs them
        results.setdefault(f"{tag}  import {phase} (in job)", []).append((secs, 0.0))
    if steps == "import":  # nothing reads it again: leave room on the disk (553 MB a round and tree)
        (cli.proj / j_imp / "imported_particles.cs").unlink(missing_ok=True)
        return
    j_rs = _timed_restack(cli, j_imp, cold, results, tag)
    j_ex = cli.create("export_particles", "-i", f"particles={j_imp}", "-p", "format=relion")
    results.setdefault(f"{tag}export STAR", []).append(cli.run(j_ex, cold))
    star = cli.proj / j_ex / "exported" / "particles.star"
    j_si = cli.create("import_particles", "-p", f"particle_meta_path={star}")
    results.setdefault(f"{tag}import STAR", []).append(cli.run(j_si, cold))
    info.setdefault("star_bytes", star.stat().st_size)
    info["last_star"] = str(star)
    # leave room on the disk: the exported stack copies and restacked images are not needed again
    shutil.rmtree(cli.proj / j_ex / "exported" / "stacks", ignore_errors=True)
    shutil.rmtree(cli.proj / j_rs / "restack", ignore_errors=True)


_GATHER = r"""
import sys, time, json, numpy as np
from pathlib import Path
from cryodesk.io.gather import plan_gather, execute_plan
from cryodesk.kernels.batch import ParticleTransform
cs, proj, out = sys.argv[1:4]
d = np.load(cs, mmap_mode="r")
paths = d["blob/path"]; idx = d["blob/idx"]
uniq, inv = np.unique(paths, return_inverse=True)
stacks = [Path(proj) / u.decode() for u in uniq.tolist()]
items = list(zip([stacks[i] for i in inv.ravel().tolist()], idx.tolist()))
t0 = time.perf_counter()
plan = plan_gather(items, Path(out), particles_per_file=100000)
tr = ParticleTransform(len(items), plan.in_shape, plan.in_dtype)
plan = plan.with_output(out_shape=tr.out_shape, out_dtype=tr.out_dtype, voxel_size=plan.voxel_size)
execute_plan(plan, tr)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""

_STARFILE = r"""
import sys, time, json
import starfile
star, out, mode = sys.argv[1:4]
t0 = time.perf_counter()
df = starfile.read(star, always_dict=True)
t1 = time.perf_counter()
res = {"read": t1 - t0}
if mode == "write":
    starfile.write(df, out, overwrite=True)
    res["write"] = time.perf_counter() - t1
print(json.dumps(res))
"""


def round_baselines(info: dict, root: Path, cold: bool, results: dict, new: Cli, steps: str = "all") -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    j_one = new.create("import_particles", "-p", f"particle_meta_path={info['one']}",
                       "-p", f"particle_blob_path={info['proj']}")
    results.setdefault("base: job run (1 particle)", []).append(new.run(j_one, cold))
    results.setdefault("base: numpy.load", []).append(
        child([PY, "-c", f"import numpy as np; np.load({info['cs']!r})"], env, root, cold)[:2])
    tmp = root / "npsave.cs"
    results.setdefault("base: numpy.load + save", []).append(child(
        [PY, "-c", f"import numpy as np; np.save(open({str(tmp)!r}, 'wb'), np.load({info['cs']!r}))"],
        env, root, cold)[:2])
    tmp.unlink(missing_ok=True)
    if steps == "import":
        return
    out = root / "gather-out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    wall, rss, text = child([PY, "-c", _GATHER, info["cs"], info["proj"], str(out)], env, root, cold)
    results.setdefault("base: gather (images only, in child)", []).append((json.loads(text)["seconds"], rss))
    shutil.rmtree(out, ignore_errors=True)
    if "last_star" in info:
        wall, rss, text = child([PY, "-c", _STARFILE, info["last_star"], "", "read"], env, root, cold)
        results.setdefault("base: starfile.read (in child)", []).append((json.loads(text)["read"], rss))
        tmp = root / "starfile-out.star"
        wall, rss, text = child([PY, "-c", _STARFILE, info["last_star"], str(tmp), "write"], env, root, cold)
        results.setdefault("base: starfile.write (in child)", []).append((json.loads(text)["write"], rss))
        tmp.unlink(missing_ok=True)


def _fmt(values: list[float], unit: str) -> str:
    return f"{statistics.median(values):7.2f}{unit} [{min(values):.2f}-{max(values):.2f}]"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, default=Path("/work/tmp-bench-meta"))
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--stacks", type=int, default=5000)
    ap.add_argument("--box", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cold", action="store_true", help="evict the benchmark's files before each step")
    ap.add_argument("--old", type=Path, help="another checkout to run the same CLI operations from")
    ap.add_argument("--keep", action="store_true", help="keep the built data (default: keep; --clean removes)")
    ap.add_argument("--clean", action="store_true", help="remove --dir at the end")
    ap.add_argument("--no-baselines", action="store_true")
    ap.add_argument("--steps", choices=("all", "import", "export", "star", "restack"), default="all",
                    help="import: only the .cs import (and the job-run, numpy.load and load + save baselines); "
                         "export: only the STAR export (no baselines), stacks linked; --copy adds copy_stacks=true; "
                         "star: only the STAR import (no baselines), of one exported particles.star; "
                         "restack: only the restack (no baselines), of one import")
    ap.add_argument("--copy", action="store_true", help="with --steps export: also the export that copies the stacks")
    args = ap.parse_args(argv)
    root = args.dir.resolve()
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    info = build(root, args.n, args.stacks, args.box)
    print(f"data: {info['n']:,} particles in {info['stacks']:,} stacks of {info['box']}² images; "
          f".cs {info['cs_bytes'] / 1e6:.0f} MB ({time.perf_counter() - t0:.0f} s to build or check)", flush=True)
    trees = [("", Cli(REPO, root, "new"))]
    if args.old:
        trees.append(("old: ", Cli(args.old.resolve(), root, "old")))
    results: dict[str, list[tuple[float, float]]] = {}
    for r in range(args.rounds):
        for tag, cli in (trees if r % 2 == 0 else trees[::-1]):  # A B, B A, ...
            if args.steps == "export":
                round_export(cli, info, args.cold, results, tag, args.copy)
            elif args.steps == "star":
                round_star_import(cli, info, args.cold, results, tag, trees[0][1])
            elif args.steps == "restack":
                round_restack(cli, info, args.cold, results, tag)
            else:
                round_ops(cli, info, args.cold, results, tag, args.steps)
        if not args.no_baselines and args.steps not in ("export", "star", "restack"):
            round_baselines(info, root, args.cold, results, trees[0][1], args.steps)
        print(f"round {r + 1}/{args.rounds} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    limit = 2 * info["cs_bytes"] / 2**20 + 100
    print(f"\n{'':38s} {'wall (s), median [min-max]':>30s} {'peak RSS (MB)':>28s}"
          f"   ({args.rounds} rounds{', cold' if args.cold else ', warm'})")
    for name, vals in results.items():
        walls = [w for w, _ in vals]
        rss = [m for _, m in vals]
        rss_s = _fmt(rss, "") if any(rss) else ""
        print(f"{name:38s} {_fmt(walls, ' s'):>30s} {rss_s:>28s}")
    med = {k: statistics.median([w for w, _ in v]) for k, v in results.items()}
    rss_med = {k: statistics.median([m for _, m in v]) for k, v in results.items()}
    if args.steps == "export":
        for d in info.get("remove_after", []):
            shutil.rmtree(d, ignore_errors=True)
        shas = info.get("star_sha", {})
        print("\nparticles.star sha256:", ", ".join(f"{k or 'new'}: {v[:16]}" for k, v in shas.items()),
              "(identical)" if len(set(shas.values())) == 1 else "(DIFFERENT)")
        for name in [k for k in med if k.startswith("old: ")]:
            if med.get(name[5:]):
                print(f"  {name[5:]:30s} old / new = {med[name] / med[name[5:]]:.1f} x time")
        return 0
    if args.steps == "star":
        outs = info.get("star_out", {})
        every = {v for runs in outs.values() for v in runs}
        print("\nimported .cs sha256 / links:", ", ".join(f"{k or 'new'}: {runs[0][0][:16]} / {runs[0][1][:28]}"
                                                      for k, runs in outs.items()),
              "(identical in every round)" if len(every) == 1 else f"(DIFFERENT: {len(every)} kinds)")
        if "old: import STAR" in med:
            print(f"\n  import STAR  old / new = {med['old: import STAR'] / med['import STAR']:.2f} x time, "
                  f"{rss_med['old: import STAR'] / rss_med['import STAR']:.2f} x peak RSS (<= 5 s: "
                  f"{med['import STAR']:.2f} s)")
        return 0
    if args.steps == "restack":
        for tag in ("", "old: "):
            if f"{tag}restack metadata (in job)" in med:
                print(f"  {tag or 'new: '}restack {med[f'{tag}restack']:.2f} s, metadata "
                      f"{med[f'{tag}restack metadata (in job)']:.2f} s as the job logs it (<= 2 s), gather "
                      f"{med[f'{tag}restack gather (in job)']:.2f} s, peak RSS {rss_med[f'{tag}restack']:.0f} MB")
        return 0
    base = med.get("base: job run (1 particle)", 0.0)
    print("\ntargets (issue 19):")
    print(f"  import .cs          {med['import .cs']:.2f} s (<= 2 s), peak RSS {rss_med['import .cs']:.0f} MB "
          f"(<= 2 x {info['cs_bytes'] / 2**20:.0f} + 100 = {limit:.0f} MB)")
    if "base: gather (images only, in child)" in med:
        meta = med["restack"] - med["base: gather (images only, in child)"] - base
        print(f"  restack metadata    {meta:.2f} s (restack - gather - job-run fixed cost; <= 2 s)")
    if "restack metadata (in job)" in med:
        print(f"  restack metadata    {med['restack metadata (in job)']:.2f} s as the job logs it "
              f"(gather {med['restack gather (in job)']:.2f} s)")
    if "export STAR" in med:
        print(f"  export STAR         {med['export STAR']:.2f} s (<= 5 s)")
        print(f"  import STAR         {med['import STAR']:.2f} s (<= 5 s)")
    for op in ("import .cs", "restack", "export STAR", "import STAR"):
        if f"old: {op}" in med and op in med:
            print(f"  {op:18s}  old / new = {med[f'old: {op}'] / med[op]:.1f} x time, "
                  f"{rss_med[f'old: {op}'] / rss_med[op]:.1f} x peak RSS")
    if args.clean:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
