"""Live-session stages (motion → CTF → picking → extraction) and the ``session_export`` job type.

Each stage of one exposure is :func:`run_stage`: it reads what the previous
stage recorded, runs the *same* kernels as the batch jobs
(:func:`~cryodesk.jobs.preprocess_motion.align_frames`,
:func:`~cryodesk.jobs.preprocess_ctf.estimate_ctf`,
:func:`~cryodesk.jobs.preprocess_pick.pick_blobs`,
:func:`~cryodesk.jobs.preprocess_extract.extract_boxes`) with the session's
parameters, writes its files atomically under ``S<n>/`` and returns what
:func:`cryodesk.core.sessions.record_stage` stores.  Everything is
deterministic (fixed MRC labels, tie-broken picking), so a restore rewrites
files bit-identical to those compaction removed.

``session_export`` writes the accepted particles and micrographs of a session
as a job's outputs (``.cs`` datasets whose blobs are the session's stacks and
micrographs, by reference), so restack and other jobs can use them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cryodesk.base.errors import DataError
from cryodesk.base.fsio import du_size
from cryodesk.core import sessions
from cryodesk.core.context import JobContext
from cryodesk.core.registry import JobType, OutputGroup, Param, register
from cryodesk.io.cs import from_columns
from cryodesk.io.mrc import StackWriter

from .preprocess_common import check_mrc, dataset_from_columns, read_mrc, stable_uid, write_dataset, write_mrc
from .preprocess_ctf import estimate_ctf
from .preprocess_extract import background_mask, extract_boxes
from .preprocess_motion import align_frames
from .preprocess_pick import pick_blobs

STAGE_DIRS = {"micrograph": "motion", "thumbnail": "thumbnails", "ctf_spectrum": "ctf", "particles": "extract"}


def _out(project_dir: Path, session, kind: str, name: str, suffix: str) -> tuple[Path, str]:
    # S<n>/<stage>/ checked (made) without following a link: a symlinked one fails the exposure, by path
    sessions.stage_dir(project_dir, session, STAGE_DIRS[kind])
    rel = f"{session.directory}/{STAGE_DIRS[kind]}/{name}{suffix}"
    return project_dir / rel, rel


def _entry(path: Path, rel: str) -> dict:
    return {"path": rel, "bytes": du_size(path)}


def bin_image(image: np.ndarray, factor: int) -> np.ndarray:
    """Block-mean binning by ``factor`` (edges cropped): a thumbnail."""
    if factor <= 1:
        return image.astype(np.float32)
    ny, nx = image.shape[0] // factor, image.shape[1] // factor
    return image[: ny * factor, : nx * factor].reshape(ny, factor, nx, factor).mean(axis=(1, 3)).astype(np.float32)


def _micrograph(project_dir: Path, exposure) -> np.ndarray:
    out = (exposure.outputs or {}).get("micrograph")
    if not out:
        raise DataError(f"{exposure.uid}: its motion-corrected micrograph is not recorded")
    image = read_mrc(project_dir / out["path"])
    return image[0] if image.ndim == 3 else image


def all_picks(exposure) -> list[list[float]]:
    """Automatic picks then manual picks, as ``[x, y]`` in micrograph pixels (the extraction order)."""
    return [[float(p[0]), float(p[1])] for p in (exposure.picks or [])] + \
        [[float(p[0]), float(p[1])] for p in (exposure.manual_picks or [])]


def run_stage(stage: str, project_dir: Path, session, exposure, params: dict) -> dict:
    """Run ``stage`` of ``exposure``; returns ``record_stage`` keyword arguments (outputs, results, picks).

    A :class:`DataError` names the file and what is wrong (the exposure fails
    with that message); nothing is recorded for a stage that raised.
    """
    project_dir = Path(project_dir)
    name = sessions.output_name(exposure)
    movie = Path(exposure.movie)
    if stage == "found":  # the header check: a truncated or unreadable movie fails here, by name
        shape, header_psize = check_mrc(movie)
        if shape[0] < 2:
            raise DataError(f"{movie} has {shape[0]} frame(s); a movie needs at least 2")
        psize = float(params["psize_A"] or 0.0) or header_psize
        if psize <= 0:
            raise DataError(f"{movie} has no pixel size in its header; set the session's psize_A")
        return {"results": {"psize_A": psize, "movie_shape": list(shape)}}
    psize = float(exposure.results["psize_A"])
    if stage == "motion":
        frames = read_mrc(movie)
        if frames.ndim != 3 or frames.shape[0] < 2:
            raise DataError(f"{movie} is not a movie (data shape {frames.shape})")
        m = params["motion"]
        aligned, shifts = align_frames(frames, psize, m["bfactor"], m["max_shift_px"], m["iterations"],
                                       m["tolerance_px"])
        mic, mic_rel = _out(project_dir, session, "micrograph", name, "_aligned.mrc")
        write_mrc(mic, aligned, psize)
        factor = int(params["thumbnail_bin"])
        thumb, thumb_rel = _out(project_dir, session, "thumbnail", name, "_thumb.mrc")
        write_mrc(thumb, bin_image(aligned, factor), psize * factor)
        xy = shifts[:, ::-1]
        return {"outputs": {"micrograph": _entry(mic, mic_rel), "thumbnail": _entry(thumb, thumb_rel)},
                "results": {"shape": list(aligned.shape),
                            "drift_px": round(float(np.hypot(*(xy[-1] - xy[0]))), 3)}}
    if stage == "ctf":
        c = params["ctf"]
        fit = estimate_ctf(_micrograph(project_dir, exposure), psize, params["accel_kv"], params["cs_mm"],
                           c["amp_contrast"], c["tile_px"], c["res_min_A"], c["res_max_A"],
                           (c["df_min_A"], c["df_max_A"]), fit_astigmatism=c["fit_astigmatism"])
        spec, spec_rel = _out(project_dir, session, "ctf_spectrum", name, "_spectrum.mrc")
        write_mrc(spec, np.log1p(fit.pop("spectrum")), psize)
        fit = {k: float(v) for k, v in fit.items()}
        return {"outputs": {"ctf_spectrum": _entry(spec, spec_rel)}, "results": {"ctf": fit}}
    if stage == "picking":
        if exposure.picks is not None:  # restoring: the saved picks are the picks
            return {}
        k = params["pick"]
        picks = pick_blobs(_micrograph(project_dir, exposure), psize, k["diameter_A"], k["diameter_max_A"],
                           k["threshold"], k["min_distance_frac"], k["particle_sign"] == "dark", k["max_picks"])
        return {"picks": [[float(x), float(y), float(s)] for x, y, s in picks],
                "results": {"n_picks": int(len(picks))}}
    if stage == "extraction":
        e = params["extract"]
        box = int(e["box_size_px"])
        mic = _micrograph(project_dir, exposure)
        ny, nx = mic.shape
        pts = np.array(all_picks(exposure), np.float64).reshape(-1, 2)
        x0 = np.floor(pts[:, 0] + 0.5).astype(np.int64) - box // 2
        y0 = np.floor(pts[:, 1] + 0.5).astype(np.int64) - box // 2
        ok = (x0 >= 0) & (y0 >= 0) & (x0 + box <= nx) & (y0 + box <= ny)
        boxes = extract_boxes(mic, y0[ok], x0[ok], box, background_mask(box, e["bg_radius_frac"]), e["normalize"])
        stack, stack_rel = _out(project_dir, session, "particles", name, "_particles.mrc")
        with StackWriter(stack, (box, box), "float32", psize, durable=False) as w:
            if len(boxes):
                w.append(boxes)
        return {"outputs": {"particles": _entry(stack, stack_rel)},
                "results": {"n_particles": int(ok.sum()), "n_skipped_at_edge": int((~ok).sum()),
                            "extracted": np.nonzero(ok)[0].astype(int).tolist(), "box_size_px": box}}
    raise ValueError(f"unknown stage {stage!r}")


# -- export -------------------------------------------------------------------------------
def run_session_export(ctx: JobContext) -> None:
    """Write ``exported_particles.cs`` and ``exported_micrographs.cs`` for the session's accepted exposures."""
    p = ctx.params
    s = sessions.get_session(ctx.project_uid, p["session"])
    if s.status in ("compacted", "compacting", "restoring", "restoration_failed"):
        raise DataError(f"{ctx.uid}: {s.uid} is {s.status.replace('_', ' ')}: its particle images are not on disk; "
                        "restore it first")
    params = sessions.merged(s.params)
    want = {"accepted": ("accepted",), "all": ("accepted", "rejected")}[p["which"]]
    rows: dict[str, list] = {k: [] for k in ("uid", "mic_uid", "path", "idx", "mic_path", "mic_shape", "x", "y",
                                             "psize", "ctf")}
    mics: dict[str, list] = {k: [] for k in ("uid", "path", "shape", "psize", "ctf")}
    box = int(params["extract"]["box_size_px"])
    for e in sessions.exposures(s):
        if e.stage != "ready" or sessions.judge(e.results or {}, params["thresholds"], e.manual_status) not in want:
            continue
        r = e.results
        mic_uid = stable_uid("exposure", e.movie)
        mic_path = e.outputs["micrograph"]["path"]
        mics["uid"].append(mic_uid)
        mics["path"].append(mic_path)
        mics["shape"].append(r["shape"])
        mics["psize"].append(r["psize_A"])
        mics["ctf"].append(r["ctf"])
        picks = all_picks(e)
        ny, nx = r["shape"]
        for j, i in enumerate(r.get("extracted", [])):
            rows["uid"].append(stable_uid("pick", mic_uid, i))
            rows["mic_uid"].append(mic_uid)
            rows["path"].append(e.outputs["particles"]["path"])
            rows["idx"].append(j)
            rows["mic_path"].append(mic_path)
            rows["mic_shape"].append(r["shape"])
            rows["x"].append(picks[i][0] / nx)
            rows["y"].append(picks[i][1] / ny)
            rows["psize"].append(r["psize_A"])
            rows["ctf"].append(r["ctf"])
        ctx.check_cancel()
    n = len(rows["uid"])
    if not n:
        raise DataError(f"{ctx.uid}: {s.uid} has no {p['which']} particles to export "
                        f"({sessions.stage_counts(s)['ready']} exposure(s) ready)")
    sign = -1.0 if params["pick"]["particle_sign"] == "dark" else 1.0

    def ctf_cols(fits, k):
        return {
            "ctf/type": np.full(k, b"builtin"), "ctf/accel_kv": np.full(k, params["accel_kv"], np.float32),
            "ctf/cs_mm": np.full(k, params["cs_mm"], np.float32),
            "ctf/amp_contrast": np.full(k, params["ctf"]["amp_contrast"], np.float32),
            "ctf/df1_A": np.array([f["df1_A"] for f in fits], np.float32),
            "ctf/df2_A": np.array([f["df2_A"] for f in fits], np.float32),
            "ctf/df_angle_rad": np.array([f["df_angle_rad"] for f in fits], np.float32),
            "ctf/phase_shift_rad": np.zeros(k, np.float32),
        }

    particles = from_columns({
        "uid": np.array(rows["uid"], np.uint64),
        "blob/path": np.array(rows["path"], dtype="S"), "blob/idx": np.array(rows["idx"], np.uint32),
        "blob/shape": np.tile(np.array([box, box], np.uint32), (n, 1)),
        "blob/psize_A": np.array(rows["psize"], np.float32), "blob/sign": np.full(n, sign, np.float32),
        "location/micrograph_uid": np.array(rows["mic_uid"], np.uint64),
        "location/exp_group_id": np.ones(n, np.uint32),
        "location/micrograph_path": np.array(rows["mic_path"], dtype="S"),
        "location/micrograph_shape": np.array(rows["mic_shape"], np.uint32).reshape(n, 2),
        "location/center_x_frac": np.array(rows["x"], np.float32),
        "location/center_y_frac": np.array(rows["y"], np.float32),
        "location/micrograph_psize_A": np.array(rows["psize"], np.float32),
        **ctf_cols(rows["ctf"], n), "ctf/exp_group_id": np.ones(n, np.uint32), "ctf/scale": np.ones(n, np.float32),
    })
    k = len(mics["uid"])
    micrographs = dataset_from_columns({
        "uid": np.array(mics["uid"], np.uint64), "micrograph_blob/path": np.array(mics["path"], dtype="S"),
        "micrograph_blob/shape": np.array(mics["shape"], np.uint32).reshape(k, 2),
        "micrograph_blob/psize_A": np.array(mics["psize"], np.float32),
        "mscope_params/accel_kv": np.full(k, params["accel_kv"], np.float32),
        "mscope_params/cs_mm": np.full(k, params["cs_mm"], np.float32),
        "mscope_params/exp_group_id": np.ones(k, np.uint32),
        **ctf_cols(mics["ctf"], k),
        "ctf_stats/cross_corr": np.array([f["cross_corr"] for f in mics["ctf"]], np.float32),
    })
    ctx.add_output("particles", write_dataset(ctx.job_dir / "exported_particles.cs", particles), kind="dataset")
    ctx.add_output("micrographs", write_dataset(ctx.job_dir / "exported_micrographs.cs", micrographs),
                   kind="dataset")
    ctx.results.update(session=s.uid, n_particles=n, n_micrographs=k, which=p["which"])
    ctx.log.info("exported %d particles from %d micrographs of %s", n, k, s.uid)


register(JobType(
    name="session_export", title="Live Session Export", category="import",
    params=(
        Param("session", None, "str", "the live session (S<n>) whose particles are exported", required=True),
        Param("which", "accepted", "str", "which exposures", choices=("accepted", "all")),
    ),
    outputs=(OutputGroup("particles", "particle", help="the session's extracted particles (by reference)"),
             OutputGroup("micrographs", "micrograph", help="the session's micrographs with CTF fits")),
    run=run_session_export, resource="io",
    description=("Exports a live session's accepted particles and micrographs as outputs; the images stay in "
                 "the session (restack them before compacting the session)."),
))
