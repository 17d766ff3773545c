"""Job types ``import_particles`` and ``export_particles``.

``import_particles`` reads a CryoSPARC ``.cs`` or ``.csg`` (a result group:
its results joined on uid) or a RELION ``.star`` file (poses, optics and CTF
refinements converted, see :mod:`cryodesk.io.relion`), finds the stacks
(:mod:`cryodesk.io.locate`: relative to ``particle_blob_path`` or the metadata
file, never outside them), validates every one (exists, header sane, indices
in range, shapes agree) *before writing anything*, then writes into ``J<n>/``:

* ``imported/<stack>``      symlinks to the raw stacks (raw data is never copied or touched)
* ``imported_particles.cs`` with ``blob/path`` relative to the project (``J1/imported/x.mrc``)
* ``imported_particles.csg`` the group manifest

``export_particles`` writes ``J<n>/exported/`` from its ``particles`` input:
``format=cryosparc``: ``particles_exported.cs`` (+ ``.csg`` for "Import Result
Group") whose ``blob/path`` values are ``>stacks/<name>`` (relative to the
``.cs``); ``format=relion``: ``particles.star`` (3.1, with optics).  ``cs_format``
``csdat`` writes the compressed encoding of CryoSPARC >= 4.4.  The
referenced stacks go to ``exported/stacks/`` as real copies (symlinks
followed) for ``relion`` or when ``copy_stacks`` is set, else as symlinks.

A STAR conversion (either way) records what it mapped, carried and could not
convert in the job log (a warning for each field not converted) and in
``results["conversion"]``.

A failed run removes everything it wrote.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np

from cryodesk.base.errors import DataError
from cryodesk.base.fsio import AtomicFile
from cryodesk.core.context import JobContext, OutputFileRef
from cryodesk.core.registry import InputSlot, JobType, OutputGroup, Param, register
from cryodesk.io import csg as csg_io
from cryodesk.io.conversion import ConversionReport
from cryodesk.io.cs import CS_FORMATS, ParticleSet, check_particle_rows, from_columns, read_cs, write_cs
from cryodesk.io.locate import inside, locate_stacks
from cryodesk.io.relion import cs_to_star, star_to_cs
from cryodesk.io.star import read_star, write_star
from cryodesk.io.validate import validate_stacks


def _load(meta: Path, report: ConversionReport) -> tuple[np.ndarray, Path]:
    """The dataset of ``meta`` and the directory its ``>`` paths are relative to."""
    suffix = meta.suffix.lower()
    if suffix == ".cs":
        data = read_cs(meta)
        for f in ("blob/path", "blob/idx"):
            if f not in data.dtype.names:
                raise DataError(f"{meta}: not a particle dataset (no {f!r} field)")
        return data, meta.parent
    if suffix == ".csg":
        data, main = csg_io.load_group(meta)
        return data, main.parent
    if suffix == ".star":
        return star_to_cs(read_star(meta), str(meta), report=report), meta.parent
    raise DataError(f"{meta}: unsupported particle metadata file (expected .cs, .csg or .star)")


def _located(data: np.ndarray, meta: Path, meta_dir: Path, base: Path, root: Path) -> np.ndarray:
    """``data`` with every ``blob/path`` replaced by where the stack was found."""
    where = locate_stacks(data["blob/path"], base, meta_dir, root, str(meta))
    raw, inv = np.unique(data["blob/path"], return_inverse=True)
    found = np.array([str(where[r.decode("utf-8") if isinstance(r, bytes) else str(r)]) for r in raw.tolist()],
                     dtype=str)
    cols = {n: data[n] for n in data.dtype.names}
    cols["blob/path"] = found[np.asarray(inv).ravel()]
    return from_columns(cols, len(data))


def _missing_hint(exc: DataError, base: Path, meta_dir: Path, blob_given: bool) -> DataError:
    if "not found" not in str(exc):
        return exc
    places = str(base) if base == meta_dir else f"{base} and {meta_dir}"
    advice = ("check particle_blob_path" if blob_given else
              "set particle_blob_path to the directory the stack paths are relative to "
              "(the RELION or CryoSPARC project directory)")
    return DataError(f"{exc}\n  (relative stack paths were looked up under {places}; {advice})")


def _link_names(paths: list[Path]) -> dict[Path, str]:
    """A distinct flat file name for each stack (basename, de-duplicated)."""
    names: dict[Path, str] = {}
    used: set[str] = set()
    for p in paths:
        name, k = p.name, 1
        while name in used:
            name, k = f"{k:03d}_{p.name}", k + 1
        used.add(name)
        names[p] = name
    return names


def _with_blobs(data: np.ndarray, new_path: np.ndarray, shape: np.ndarray, psize: np.ndarray) -> np.ndarray:
    cols = {n: data[n] for n in data.dtype.names}
    cols["blob/path"] = new_path
    cols["blob/shape"] = shape
    cols["blob/psize_A"] = psize
    return from_columns(cols, len(data))


def _add_link(ctx: JobContext, group: str, link: Path) -> None:
    """Register a symlink as a ``blob`` output.

    ``JobContext.rel`` resolves the *whole* path, i.e. follows the link to
    the raw data outside the job directory and refuses it; resolving only
    the parent keeps the link itself (inside the job dir) as the output.
    """
    rel = f"{ctx.rel(link.parent)}/{link.name}"
    ctx.outputs.append((group, OutputFileRef(kind="blob", path=rel, version=0, size_bytes=0)))


def _cleanup(created: list[Path]) -> None:
    for p in reversed(created):
        if p.is_symlink() or p.is_file():
            p.unlink(missing_ok=True)
        elif p.is_dir():
            shutil.rmtree(p, ignore_errors=True)


def run_import(ctx: JobContext) -> None:
    raw_meta = ctx.params.get("particle_meta_path")
    if not raw_meta:
        raise DataError(f"{ctx.uid}: parameter particle_meta_path is required")
    meta = Path(raw_meta)
    meta = meta if meta.is_absolute() else ctx.project_dir / meta
    blob = ctx.params.get("particle_blob_path")
    base = (Path(blob) if Path(blob).is_absolute() else ctx.project_dir / blob) if blob else meta.parent
    ctx.progress(0.0, f"reading {meta.name}")
    report = ConversionReport("STAR -> .cs")
    data, meta_dir = _load(meta, report)
    check_particle_rows(data, meta)
    root = base if blob else meta.parent
    if not (inside(meta_dir, root) or inside(meta_dir, meta.parent)):
        # a .csg's blob metafile elsewhere: its '>' stack paths would be relative to a place the user
        # did not point at
        raise DataError(f"{meta}: the particle dataset it lists is in {meta_dir}, outside the particle data "
                        f"directory {root}; set particle_blob_path to a directory that contains it")
    pset = ParticleSet(_located(data, meta, meta_dir, base, root), meta, base)
    try:
        infos = validate_stacks(pset, ctx.check_cancel, lambda f, m: ctx.progress(0.8 * f, m))
    except DataError as exc:
        raise _missing_hint(exc, base, meta_dir, bool(blob)) from None
    ctx.check_cancel()

    stacks, inv = pset.stack_index()
    names = _link_names(list(infos))
    data = pset.data
    rel = np.array([f"{ctx.job_dir.name}/imported/{names[p]}" for p in stacks], dtype=str)[inv]
    shape = np.array([infos[p].shape for p in stacks], dtype=np.uint32).reshape(-1, 2)[inv]
    psize = (data["blob/psize_A"].astype(np.float32) if "blob/psize_A" in data.dtype.names
             else np.zeros(len(data), np.float32))
    header_psize = np.array([infos[p].voxel_size for p in stacks], dtype=np.float32)[inv]
    psize = np.where(psize > 0, psize, header_psize)
    out = _with_blobs(data, rel, shape, psize)
    for f in ("alignments3D/psize_A", "alignments2D/psize_A"):
        if f in out.dtype.names:  # shifts in pixels of an unknown size (RELION 3.0): the images' size
            out[f] = np.where(out[f] > 0, out[f], psize)

    created: list[Path] = []
    try:
        ctx.job_dir.mkdir(parents=True, exist_ok=True)
        links = ctx.job_dir / "imported"
        links.mkdir(exist_ok=False)
        created.append(links)
        for p, name in names.items():
            os.symlink(p.resolve(), links / name)
        cs_path = ctx.job_dir / "imported_particles.cs"
        write_cs(cs_path, out)
        created.append(cs_path)
        group = csg_io.group_for_dataset("imported_particles", "particle", cs_path.name, out,
                                         title="Imported particles",
                                         description=f"Particles imported from {meta}")
        csg_path = csg_io.write_csg(ctx.job_dir / "imported_particles.csg", group)
        created.append(csg_path)
    except BaseException:
        _cleanup(created)
        raise
    ctx.add_output("particles", cs_path, kind="dataset")
    ctx.add_output("particles", csg_path, kind="csg")
    for name in names.values():
        _add_link(ctx, "particles", links / name)
    ctx.results.update(num_particles=len(out), num_stacks=len(names), source=str(meta))
    if meta.suffix.lower() == ".star":
        report.log_to(ctx.log, meta.name)
        ctx.results["conversion"] = report.as_dict()
    ctx.log.info("imported %d particles from %d stacks (%s)", len(out), len(names), meta)
    ctx.progress(1.0, f"imported {len(out)} particles")


def _copy(src: Path, dst: Path) -> None:
    with AtomicFile(dst, durable=False) as out:
        shutil.copyfile(src, out.tmp, follow_symlinks=True)  # by name: the kernel copies (sendfile)


def run_export(ctx: JobContext) -> None:
    fmt = ctx.params.get("format", "cryosparc")
    if fmt not in ("cryosparc", "relion"):
        raise DataError(f"{ctx.uid}: unknown export format {fmt!r} (cryosparc or relion)")
    cs_format = ctx.params.get("cs_format", "numpy")
    if cs_format not in CS_FORMATS:
        raise DataError(f"{ctx.uid}: unknown cs_format {cs_format!r} ({' or '.join(CS_FORMATS)})")
    report = ConversionReport(".cs -> STAR")
    copy = fmt == "relion" or bool(ctx.params.get("copy_stacks", False))
    src = ctx.input("particles").path("dataset")
    pset = ParticleSet.load(src, ctx.project_dir)
    infos = validate_stacks(pset, ctx.check_cancel, lambda f, m: ctx.progress(0.2 * f, m))
    names = _link_names(list(infos))
    out_dir = ctx.job_dir / "exported"
    created: list[Path] = []
    files: list[tuple[Path, str]] = []
    try:
        ctx.job_dir.mkdir(parents=True, exist_ok=True)
        out_dir.mkdir(exist_ok=False)
        created.append(out_dir)
        (out_dir / "stacks").mkdir()
        for k, (p, name) in enumerate(names.items()):
            ctx.check_cancel()
            ctx.progress(0.2 + 0.75 * k / max(len(names), 1), f"{'copying' if copy else 'linking'} {p.name}")
            dst = out_dir / "stacks" / name
            _copy(p, dst) if copy else os.symlink(p.resolve(), dst)
            files.append((dst, "blob"))
        stacks, inv = pset.stack_index()
        rel = np.array([f"stacks/{names[p]}" for p in stacks], dtype=str)[inv]
        if fmt == "relion":
            try:
                blocks = cs_to_star(pset.data, rel, report=report)
            except DataError as exc:
                raise DataError(f"{src}: cannot convert to RELION STAR: {exc}") from None
            star_path = write_star(out_dir / "particles.star", blocks)
            files.append((star_path, "star"))
        else:
            cols = {n: pset.data[n] for n in pset.data.dtype.names}
            cols["blob/path"] = np.char.add(">", rel)
            data = from_columns(cols, len(pset))
            cs_path = write_cs(out_dir / "particles_exported.cs", data, format=cs_format)
            group = csg_io.group_for_dataset("particles", "particle", cs_path.name, data,
                                             title="Exported particles",
                                             description=f"Exported from {src.name}")
            csg_path = csg_io.write_csg(out_dir / "particles_exported.csg", group)
            files += [(cs_path, "dataset"), (csg_path, "csg")]
    except BaseException:
        _cleanup(created)
        raise
    for path, kind in files:
        if path.is_symlink():
            _add_link(ctx, "exported", path)
        else:
            ctx.add_output("exported", path, kind=kind)
    ctx.results.update(num_particles=len(pset), num_stacks=len(names), format=fmt)
    if fmt == "relion":
        report.log_to(ctx.log, "particles.star")
        ctx.results["conversion"] = report.as_dict()
    else:
        ctx.results["cs_format"] = cs_format
    ctx.progress(1.0, f"exported {len(pset)} particles as {fmt}")


register(JobType(
    name="import_particles", title="Import Particles", category="import",
    params=(
        Param("particle_meta_path", None, "str", required=True,
              help="CryoSPARC .cs or .csg, or RELION .star file describing the particles"),
        Param("particle_blob_path", None, "str",
              help="Directory the stack paths are relative to (a RELION or CryoSPARC project directory; "
                   "default: the metadata file's directory); no stack outside it is used"),
    ),
    outputs=(OutputGroup("particles", "particle", help="Imported particles (stacks linked, not copied)"),),
    run=run_import, resource="io",
    description="Import a particle stack with its metadata, validating every stack; raw data is linked.",
))

register(JobType(
    name="export_particles", title="Export Particles", category="utilities",
    params=(
        Param("format", "cryosparc", "str", choices=("cryosparc", "relion"),
              help="cryosparc: .cs + .csg (Import Result Group); relion: .star + copied stacks"),
        Param("copy_stacks", False, "bool", help="Copy the stacks instead of linking them (cryosparc format)"),
        Param("cs_format", "numpy", "str", choices=CS_FORMATS,
              help="Encoding of the .cs (cryosparc format): numpy (every CryoSPARC version) or csdat "
                   "(compressed, CryoSPARC 4.4 and later)"),
    ),
    inputs=(InputSlot("particles", "particle"),),
    outputs=(OutputGroup("exported", "particle", help="Exported particle files under exported/"),),
    run=run_export, resource="io",
    description="Write particles as a self-describing CryoSPARC or RELION file set.",
))
