"""Job types ``import_particles`` and ``export_particles``.

``import_particles`` reads a CryoSPARC ``.cs`` or ``.csg`` (a result group:
its results joined on uid) or a RELION ``.star`` file (poses, optics and CTF
refinements converted, see :mod:`cryodesk.io.relion`), finds the stacks
(:mod:`cryodesk.io.locate`: relative to ``particle_blob_path`` or the metadata
file, never outside them), validates every one (exists, header sane, indices
in range, shapes agree) *before writing the dataset*, then writes into ``J<n>/`` (the links in a
thread while the dataset is written; for a large STAR file, while it is still being converted, and
removed with everything else if anything then fails):

* ``imported/<stack>``      symlinks to the raw stacks (raw data is never copied or touched)
* ``imported_particles.cs`` with ``blob/path`` relative to the project (``J1/imported/x.mrc``)
* ``imported_particles.csg`` the group manifest

``export_particles`` writes ``J<n>/exported/`` from its ``particles`` input:
``format=cryosparc``: ``particles_exported.cs`` (+ ``.csg`` for "Import Result
Group") whose ``blob/path`` values are ``>stacks/<name>`` (relative to the
``.cs``); ``format=relion``: ``particles.star`` (3.1, with optics).  ``cs_format``
``csdat`` writes the compressed encoding of CryoSPARC >= 4.4.  The
referenced stacks go to ``exported/stacks/`` as symlinks to the real stacks
(as CryoSPARC's exports do), for both formats; with ``copy_stacks`` as real
copies (symlinks followed): a self-contained set to take to another machine.
Either way the metadata names them ``stacks/<name>``, relative to itself.

A STAR conversion (either way) records what it mapped, carried and could not
convert in the job log (a warning for each field not converted) and in
``results["conversion"]``.

A failed run removes everything it wrote.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np

from cryodesk.base.errors import DataError
from cryodesk.base.fsio import AtomicFile
from cryodesk.base.preload import preload
from cryodesk.core.context import JobContext, OutputFileRef
from cryodesk.core.registry import InputSlot, JobType, OutputGroup, Param, register
from cryodesk.io import csg as csg_io
from cryodesk.io.conversion import ConversionReport
from cryodesk.io.cs import CS_FORMATS, ParticleSet, check_particle_rows, read_cs, unique_first, write_cs_replacing
from cryodesk.io.locate import inside, locate_stacks
from cryodesk.io.relion import cs_to_star, star_to_cs
from cryodesk.io.stack_links import Linker, link_batch, link_names
from cryodesk.io.star import read_star, write_star
from cryodesk.io.validate import validate_stacks


def _load(meta: Path, report: ConversionReport, on_paths=None) -> tuple[np.ndarray, Path]:
    """The dataset of ``meta`` and the directory its ``>`` paths are relative to.

    ``on_paths``: for a STAR file, called with the ``blob/path`` column once it is known (see
    :class:`_EarlyLinks`)."""
    suffix = meta.suffix.lower()
    if suffix == ".cs":
        # mapped, not read: the import reads a few columns and streams the rest once into its own .cs
        data = read_cs(meta, mmap=True)
        for f in ("blob/path", "blob/idx"):
            if f not in data.dtype.names:
                raise DataError(f"{meta}: not a particle dataset (no {f!r} field)")
        return data, meta.parent
    if suffix == ".csg":
        data, main = csg_io.load_group(meta)
        return data, main.parent
    if suffix == ".star":
        # (its columns, not the array: the .cs is written from them once; cs_columns)
        return star_to_cs(read_star(meta), str(meta), report=report, consume=True, on_paths=on_paths,
                          columns=True), meta.parent
    raise DataError(f"{meta}: unsupported particle metadata file (expected .cs, .csg or .star)")


def _located(data: np.ndarray, meta: Path, meta_dir: Path, base: Path, root: Path
             ) -> tuple[list[Path], np.ndarray]:
    """Where each distinct stack was found (first-seen order) and each row's index into that list."""
    return _located_paths(data["blob/path"], meta, meta_dir, base, root)


def _located_paths(paths: np.ndarray, meta: Path, meta_dir: Path, base: Path, root: Path
                   ) -> tuple[list[Path], np.ndarray]:
    """:func:`_located` of the ``blob/path`` column ``paths`` (or of its ``unique_first``, a tuple)."""
    raw, inv = paths if isinstance(paths, tuple) else unique_first(paths)
    where = locate_stacks(raw, base, meta_dir, root, str(meta))
    found = [where[r.decode("utf-8") if isinstance(r, bytes) else str(r)] for r in raw.tolist()]
    distinct: dict[Path, int] = {}
    remap = np.array([distinct.setdefault(p, len(distinct)) for p in found], dtype=np.int64)
    return list(distinct), remap[inv]


def _missing_hint(exc: DataError, base: Path, meta_dir: Path, blob_given: bool) -> DataError:
    if "not found" not in str(exc):
        return exc
    places = str(base) if base == meta_dir else f"{base} and {meta_dir}"
    advice = ("check particle_blob_path" if blob_given else
              "set particle_blob_path to the directory the stack paths are relative to "
              "(the RELION or CryoSPARC project directory)")
    return DataError(f"{exc}\n  (relative stack paths were looked up under {places}; {advice})")


def _warm_export() -> None:
    """The STAR export's kernels (numba's first load: ~0.5-1 s of CPU), for a thread started while the main
    thread reads the .cs."""
    from cryodesk.io import poses, star_write, symlinks

    symlinks.load_kernel()
    star_write.warm()
    poses.warm()


def _replacements(data: np.ndarray, stacks: list[Path], inv: np.ndarray, infos: dict, names: dict[Path, str],
                  job_dir_name: str) -> dict:
    """The fields an import writes anew: paths to the links, image shapes and pixel sizes from the headers."""
    names_col = np.array([f"{job_dir_name}/imported/{names[p]}" for p in stacks], dtype=str)
    shapes = np.array([infos[p].shape for p in stacks], dtype=np.uint32).reshape(-1, 2)  # a row per stack
    psize = (data["blob/psize_A"].astype(np.float32) if "blob/psize_A" in data.dtype.names
             else np.zeros(len(data), np.float32))
    header_psize = np.array([infos[p].voxel_size for p in stacks], dtype=np.float32)[inv]
    psize = np.where(_known(psize), psize, header_psize)
    replace = {"blob/path": (names_col, inv), "blob/shape": (shapes, inv), "blob/psize_A": psize}
    if data["blob/idx"].dtype != np.uint32:  # whole numbers (check_particle_rows): CryoSPARC's dtype
        replace["blob/idx"] = data["blob/idx"].astype(np.uint32)
    for f in ("alignments3D/psize_A", "alignments2D/psize_A"):
        if f in data.dtype.names:  # shifts in pixels of an unknown size (RELION 3.0): the images' size
            replace[f] = np.where(_known(data[f]), data[f], psize)
    return replace


def _known(psize: np.ndarray) -> np.ndarray:
    """Pixel sizes that are known: positive and finite (0, a negative, NaN or inf: the header's)."""
    return (psize > 0) & (psize < np.inf)


def _add_links(ctx: JobContext, group: str, links: Path, names) -> None:
    """Register symlinks in ``links`` as ``blob`` outputs.

    ``JobContext.rel`` resolves the *whole* path, i.e. would follow a link to
    the raw data outside the job directory and refuse it; resolving only the
    parent (once) keeps the link itself (inside the job dir) as the output.
    """
    rel = ctx.rel(links)
    for name in names:
        ctx.outputs.append((group, OutputFileRef(kind="blob", path=f"{rel}/{name}", version=0, size_bytes=0)))


def _cleanup(created: list[Path]) -> None:
    for p in reversed(created):
        if p.is_symlink() or p.is_file():
            p.unlink(missing_ok=True)
        elif p.is_dir():
            shutil.rmtree(p, ignore_errors=True)


#: a STAR file of at least this many bytes is imported with its links made while it is converted (numba is
#: loaded for such a file anyway, see star_split.warm); smaller ones are linked after the validation
EARLY_LINK_BYTES = 1 << 22


def _warm_links() -> None:
    from cryodesk.io import symlinks

    symlinks.load_kernel()


class _EarlyLinks:
    """The STAR import's links, begun as soon as the stack paths are known (``star_to_cs``'s ``on_paths``).

    The stacks are located (in a thread) and the links made by the compiled loop in a thread that holds no
    GIL, while the main thread converts the rest of the file, checks and validates: the links (up to 0.5 ms of kernel time
    each) cost no time of their own.  Nothing that fails here is raised: the import then goes the ordinary
    way (located after the conversion, linked after the validation), which raises the same error at the same
    place.  If anything fails later, run_import waits for the thread and removes what it made.
    """

    def __init__(self, ctx: JobContext, meta: Path, base: Path, root: Path, created: list[Path]):
        self.ctx, self.meta, self.base, self.root, self.created = ctx, meta, base, root, created
        self.index: tuple[list[Path], np.ndarray] | None = None
        self.names: dict[Path, str] | None = None
        self.links: Path | None = None
        self.linker: Linker | None = None
        self.begun: threading.Thread | None = None
        self.error: BaseException | None = None
        try:
            large = meta.stat().st_size >= EARLY_LINK_BYTES
        except OSError:
            large = False  # (read_star says what is wrong)
        # the compiled loop loaded while the file is read (numba's first load holds the GIL)
        self.warm = preload("import-links-warm", _warm_links) if large else None

    def __call__(self, paths: tuple[np.ndarray, np.ndarray]) -> None:
        """Begin with the stack paths ``(distinct paths, each row's index)``: in a thread of its own (locating
        5,000 stacks and resolving their link targets is ~0.3 s of system calls that the conversion need not
        wait for; run_import waits for it, :meth:`ready`, once the file is converted)."""
        if self.warm is None or self.begun is not None:
            return
        self.begun = threading.Thread(target=self._begin, args=(paths,), name="import-links-begin", daemon=True)
        self.begun.start()

    def ready(self) -> None:
        """Wait until the stacks are located and the links begun (``index``, ``names``, ``linker`` are set
        then, or stay None: the ordinary way)."""
        if self.begun is not None:
            self.begun.join()
        if self.error is not None:  # (what would have been raised had it run in the caller's thread)
            error, self.error = self.error, None
            raise error

    def _begin(self, paths: tuple[np.ndarray, np.ndarray]) -> None:
        try:
            self._begin_links(paths)
        except BaseException as exc:  # noqa: BLE001 - raised by ready(), in run_import's thread
            self.error = exc

    def _begin_links(self, paths: tuple[np.ndarray, np.ndarray]) -> None:
        self.warm.join()
        from cryodesk.io import symlinks

        if not symlinks.load_kernel():
            return  # no numba: the plain loop, after the validation (as before)
        try:
            stacks, inv = _located_paths(paths, self.meta, self.meta.parent, self.base, self.root)
        except DataError:
            return  # raised again by _located, after the conversion (its errors come first, as before)
        self.index = (stacks, inv)
        names = link_names(stacks)
        links = self.ctx.job_dir / "imported"
        try:
            self.ctx.job_dir.mkdir(parents=True, exist_ok=True)
            links.mkdir(exist_ok=False)
        except OSError:
            return  # (the ordinary way meets it again)
        self.created.append(links)
        try:
            batch = link_batch(links, names, self.ctx.project_dir)
        except Exception:  # noqa: BLE001 - the ordinary way (its thread) raises it again, at its place
            self.created.remove(links)
            links.rmdir()
            return
        self.names, self.links = names, links
        self.linker = Linker(links, names, self.ctx.project_dir, batch=batch)

    def wait(self) -> None:
        if self.begun is not None:
            self.begun.join()
        if self.linker is not None:
            self.linker.wait()


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
    clock = [time.perf_counter()]
    timings: dict[str, float] = {}

    def lap(name: str) -> None:  # the phases, logged at the end (benchmarks/particles_1m.py prints them)
        now = time.perf_counter()
        timings[name] = round(now - clock[0], 3)
        clock[0] = now

    root = base if blob else meta.parent
    created: list[Path] = []
    early = _EarlyLinks(ctx, meta, base, root, created) if meta.suffix.lower() == ".star" else None
    linker: Linker | None = None
    try:
        data, meta_dir = _load(meta, report, early)
        check_particle_rows(data, meta)
        lap("read")
        if not (inside(meta_dir, root) or inside(meta_dir, meta.parent)):
            # a .csg's blob metafile elsewhere: its '>' stack paths would be relative to a place the user
            # did not point at
            raise DataError(f"{meta}: the particle dataset it lists is in {meta_dir}, outside the particle "
                            f"data directory {root}; set particle_blob_path to a directory that contains it")
        if early is not None:
            early.ready()
        if early is not None and early.index is not None:
            stacks, inv = early.index  # (what _located gives: the same column, located the same way)
        else:
            stacks, inv = _located(data, meta, meta_dir, base, root)
        pset = ParticleSet(data, meta, base, _index=(stacks, inv))
        lap("locate")
        try:
            infos = validate_stacks(pset, ctx.check_cancel, lambda f, m: ctx.progress(0.8 * f, m))
        except DataError as exc:
            raise _missing_hint(exc, base, meta_dir, bool(blob)) from None
        ctx.check_cancel()
        lap("validate")

        if early is not None and early.linker is not None:
            names, links, linker = early.names, early.links, early.linker
        else:
            names = link_names(stacks)
            ctx.job_dir.mkdir(parents=True, exist_ok=True)
            links = ctx.job_dir / "imported"
            links.mkdir(exist_ok=False)
            created.append(links)
            # A link is a file-system entry of its own (30 us to 0.5 ms of kernel time each here): they are
            # made in a thread while the .cs is written (not while the stacks are validated: two threads
            # trading the GIL at each of their 25,000 system calls slowed validation 2x; a large STAR import
            # makes them earlier, by the compiled loop that holds no GIL: _EarlyLinks); if anything fails,
            # the thread is waited for and everything is removed, as before.
            linker = Linker(links, names, ctx.project_dir)
        replace = _replacements(data, stacks, inv, infos, names, ctx.job_dir.name)
        cs_path = ctx.job_dir / "imported_particles.cs"
        ctx.progress(0.85, f"writing {cs_path.name}")
        write_cs_replacing(cs_path, data, replace)
        created.append(cs_path)
        del replace
        lap("write")
        linker.join()
        timings["link"] = round(linker.seconds, 3)  # (in its thread, alongside the conversion or the write)
        lap("link wait")
        group = csg_io.group_for_dataset("imported_particles", "particle", cs_path.name, data,
                                         title="Imported particles",
                                         description=f"Particles imported from {meta}")
        csg_path = csg_io.write_csg(ctx.job_dir / "imported_particles.csg", group)
        created.append(csg_path)
    except BaseException:
        if early is not None:
            early.wait()  # before the removal: no link is made after it
        if linker is not None:
            linker.wait()
        _cleanup(created)
        raise
    out = data
    ctx.add_output("particles", cs_path, kind="dataset")
    ctx.add_output("particles", csg_path, kind="csg")
    _add_links(ctx, "particles", links, names.values())
    ctx.results.update(num_particles=len(out), num_stacks=len(names), source=str(meta))
    if meta.suffix.lower() == ".star":
        report.log_to(ctx.log, meta.name)
        ctx.results["conversion"] = report.as_dict()
    ctx.log.info("imported %d particles from %d stacks (%s)", len(out), len(names), meta)
    lap("rest")
    ctx.log.info("import timings: %s", json.dumps(timings))
    ctx.progress(1.0, f"imported {len(out)} particles")


def _copy(src: Path, dst: Path) -> int:
    """Copy ``src`` (symlinks followed) to the new file ``dst``; its size."""
    with AtomicFile(dst, durable=False) as out:
        try:
            shutil.copyfile(src, out.tmp, follow_symlinks=True)  # by name: the kernel copies (sendfile)
        except OSError as exc:
            # shutil names the source first: a full disk is the copy's, not the stack's (another job's file)
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
                raise OSError(exc.errno, exc.strerror, str(dst)) from exc
            raise
        return os.stat(out.tmp).st_size


def _add_files(ctx: JobContext, group: str, folder: Path, files: list[tuple[str, int]]) -> None:
    """Register regular files ``(name, size)`` just written in ``folder`` as ``blob`` outputs (one ``rel``)."""
    rel = ctx.rel(folder)
    for name, size in files:
        ctx.outputs.append((group, OutputFileRef(kind="blob", path=f"{rel}/{name}", version=0, size_bytes=size)))


def run_export(ctx: JobContext) -> None:
    fmt = ctx.params.get("format", "cryosparc")
    if fmt not in ("cryosparc", "relion"):
        raise DataError(f"{ctx.uid}: unknown export format {fmt!r} (cryosparc or relion)")
    cs_format = ctx.params.get("cs_format", "numpy")
    if cs_format not in CS_FORMATS:
        raise DataError(f"{ctx.uid}: unknown cs_format {cs_format!r} ({' or '.join(CS_FORMATS)})")
    report = ConversionReport(".cs -> STAR")
    copy = bool(ctx.params.get("copy_stacks", False))  # linked by default, either format
    src = ctx.input("particles").path("dataset")
    clock, timings = [time.perf_counter()], {}

    def lap(name: str) -> None:  # the phases, logged at the end (benchmarks/particles_1m.py prints them)
        now = time.perf_counter()
        timings[name], clock[0] = round(now - clock[0], 3), now

    # numba's first load while the .cs is mapped and checked
    warm = preload("export-warm", _warm_export) if fmt == "relion" else None
    # mapped, not read (as the import does): every field is read once or twice, nothing is written back
    data = read_cs(src, mmap=True).view(np.ndarray)
    for f in ("blob/path", "blob/idx"):
        if f not in data.dtype.names:
            raise DataError(f"{src}: not a particle dataset (no {f!r} field)")
    pset = ParticleSet(data, src, ctx.project_dir)
    lap("read")
    if warm is not None:
        # (not alongside the validation: two threads trading the GIL at each of its 10,000 system calls
        # made it 4x slower and saved nothing)
        warm.join()
        lap("numba wait")
    infos = validate_stacks(pset, ctx.check_cancel, lambda f, m: ctx.progress(0.2 * f, m))
    names = link_names(list(infos))
    lap("validate")
    out_dir = ctx.job_dir / "exported"
    created: list[Path] = []
    files: list[tuple[Path, str]] = []
    copied: list[tuple[str, int]] = []
    linker: Linker | None = None
    try:
        ctx.job_dir.mkdir(parents=True, exist_ok=True)
        out_dir.mkdir(exist_ok=False)
        created.append(out_dir)
        (out_dir / "stacks").mkdir()
        if copy:
            for k, (p, name) in enumerate(names.items()):
                ctx.check_cancel()
                ctx.progress(0.2 + 0.75 * k / max(len(names), 1), f"copying {p.name}")
                copied.append((name, _copy(p, out_dir / "stacks" / name)))
            lap("copy")
        else:
            ctx.progress(0.2, f"linking {len(names)} stacks, converting")
            # in a thread while the metadata is converted and written (as the import does); for STAR, by a
            # compiled loop that holds no GIL (numba loads for the STAR writer anyway)
            links = out_dir / "stacks"
            linker = Linker(links, names, ctx.project_dir, "export",
                             link_batch(links, names, ctx.project_dir) if fmt == "relion" else None)
        ctx.check_cancel()
        stacks, inv = pset.stack_index()
        rel = np.array([f"stacks/{names[p]}" for p in stacks], dtype=str)
        if fmt == "relion":
            try:
                blocks = cs_to_star(pset.data, (rel, inv), report=report, coded=True)
            except DataError as exc:
                raise DataError(f"{src}: cannot convert to RELION STAR: {exc}") from None
            lap("convert")
            star_path = write_star(out_dir / "particles.star", blocks)
            files.append((star_path, "star"))
            del blocks
        else:
            data = pset.data
            cs_path = write_cs_replacing(out_dir / "particles_exported.cs", data,
                                         {"blob/path": (np.char.add(">", rel), inv)}, format=cs_format)
            group = csg_io.group_for_dataset("particles", "particle", cs_path.name, data,
                                             title="Exported particles",
                                             description=f"Exported from {src.name}")
            csg_path = csg_io.write_csg(out_dir / "particles_exported.csg", group)
            files += [(cs_path, "dataset"), (csg_path, "csg")]
        lap("write")
        if linker is not None:
            linker.join()
            timings["link"] = round(linker.seconds, 3)  # (in its thread, alongside the conversion)
            lap("link wait")
    except BaseException:
        if linker is not None:
            linker.wait()  # before the removal: no link is made after it
        _cleanup(created)
        raise
    if copy:
        _add_files(ctx, "exported", out_dir / "stacks", copied)
    else:
        _add_links(ctx, "exported", out_dir / "stacks", names.values())
    for path, kind in files:
        ctx.add_output("exported", path, kind=kind)
    ctx.results.update(num_particles=len(pset), num_stacks=len(names), format=fmt)
    if fmt == "relion":
        report.log_to(ctx.log, "particles.star")
        ctx.results["conversion"] = report.as_dict()
    else:
        ctx.results["cs_format"] = cs_format
    lap("rest")
    ctx.log.info("export timings: %s", json.dumps(timings))
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
              help="cryosparc: .cs + .csg (Import Result Group); relion: .star (3.1, with optics)"),
        Param("copy_stacks", False, "bool",
              help="Copy the stacks into exported/stacks/ instead of linking them (either format): a "
                   "self-contained set to take to another machine"),
        Param("cs_format", "numpy", "str", choices=CS_FORMATS,
              help="Encoding of the .cs (cryosparc format): numpy (every CryoSPARC version) or csdat "
                   "(compressed, CryoSPARC 4.4 and later)"),
    ),
    inputs=(InputSlot("particles", "particle"),),
    outputs=(OutputGroup("exported", "particle", help="Exported particle files under exported/"),),
    run=run_export, resource="io",
    description="Write particles as a self-describing CryoSPARC or RELION file set.",
))
