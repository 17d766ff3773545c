"""``project move``: move a project directory, keeping the database pointing at one complete copy.

On one file system the move is a ``rename`` (atomic).  Across file systems
the directory is copied into a hidden temp directory beside the destination,
made durable (``syncfs``), verified (every file re-read from the destination
with its page cache dropped and its CRC-32 compared with the source's, every
symlink's target and every entry compared, the source checked unchanged),
renamed into place, the database switched, and only then the old copy
removed.  Each step is recorded in the ``project_op`` journal
(:mod:`cryodesk.core.project_ops`), so a process killed at any point leaves
the database pointing at a complete copy, and the next command removes the
other, partial one.

Symlinks (to raw data, say) are moved as links, never followed: their text
is copied as it is.  A *relative* link that points outside the project, and
an absolute one that points into it, would point elsewhere after a move: the
plan lists them (``escaping_links``, ``inside_links``).
Hard links inside the project stay hard links.  Sockets, FIFOs, devices and
other file systems mounted inside the project are refused (nothing is moved).
The deletion reserve (``.cryodesk/reserve``) and retired trash are not
copied: the reserve is made again at the destination.

A project already moved by hand (its recorded directory gone, the
destination holding the same project id) is only re-pointed (``rebind``).
"""

from __future__ import annotations

import errno
import os
import stat
import time
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..base.errors import DataError, JobCancelled, LockedError, UsageError
from ..base.fsio import file_lock, fsync_dir
from ..base.syncfs import sync_filesystem
from ..db import lock_rows, write_transaction
from ..db.models import Project
from . import deletion, events, manifest, ownership, project_ops
from .guard import check_writable, project_write
from .projects import _refuse_nested, _resolve_dir, get_project

CHUNK = 8 << 20
_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
#: what is never copied (relative to the project): the deletion reserve; retired trash (``*.gc``)
SKIP_FILES = {".cryodesk/reserve"}
#: free space a copy leaves on the destination beyond its own size: 1 % of the file system, 1–64 MiB
MARGIN_MIN, MARGIN_MAX = 1 << 20, 64 << 20


@dataclass
class MovePlan:
    project: str
    source: str
    dest: str
    mode: str  # "rename" | "copy" | "rebind"
    bytes: int = 0
    files: int = 0
    dirs: int = 0
    links: int = 0
    hardlinks: int = 0
    escaping_links: list[str] = field(default_factory=list)  # relative, pointing outside the project
    inside_links: list[str] = field(default_factory=list)  # absolute, pointing into the project (its old place)
    free_bytes: int | None = None
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)


def _skip(rel: str) -> bool:
    return rel in SKIP_FILES or (rel.startswith(".cryodesk/trash/") and rel.endswith(".gc")
                                 and rel.count("/") == 2)


def _survey(src: Path, plan: MovePlan) -> None:
    """Count what a copy moves and find what it cannot (specials, mounts)."""
    root_dev = os.lstat(src).st_dev
    seen: set[tuple[int, int]] = set()
    stack = [("", src)]
    while stack:
        rel, path = stack.pop()
        try:
            entries = list(os.scandir(path))
        except OSError as exc:
            plan.problems.append(f"{path}: cannot be read ({exc.strerror})")
            continue
        plan.dirs += 1
        for e in entries:
            r = f"{rel}/{e.name}" if rel else e.name
            if _skip(r):
                continue
            st = e.stat(follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                if st.st_dev != root_dev:
                    plan.problems.append(f"{e.path} is the mount point of another file system; unmount it first")
                    continue
                stack.append((r, Path(e.path)))
            elif stat.S_ISLNK(st.st_mode):
                plan.links += 1
                target = os.readlink(e.path)
                if not os.path.isabs(target):
                    inside = os.path.normpath(os.path.join(os.path.dirname(r), target))
                    if inside == ".." or inside.startswith("../") or os.path.isabs(inside):
                        plan.escaping_links.append(r)
                elif Path(os.path.normpath(target)).is_relative_to(src):
                    plan.inside_links.append(r)
            elif stat.S_ISREG(st.st_mode):
                if st.st_nlink > 1 and (st.st_dev, st.st_ino) in seen:
                    plan.hardlinks += 1
                    continue
                seen.add((st.st_dev, st.st_ino))
                plan.files += 1
                plan.bytes += st.st_size
            else:
                plan.problems.append(f"{e.path} is a socket, FIFO or device; cryodesk does not move those")


def plan_move(project, dest: str | Path) -> MovePlan:
    """Check a move of ``project`` to ``dest`` (a new directory whose parent exists) and measure it."""
    project = get_project(project)
    check_writable(project, allow_archived=True)  # another database's, being moved: refused
    src = Path(project.directory)
    dst = _resolve_dir(dest)
    plan = MovePlan(project.uid, str(src), str(dst), "rename")
    if not os.path.lexists(src) or not _holds(src, project.uuid):
        if _holds(dst, project.uuid):
            plan.mode = "rebind"  # moved by hand already: only the database changes
            return plan
        if not os.path.lexists(src):
            raise DataError(f"{src} is missing (is its disk mounted?), and {dst} does not hold {project.uid}")
    if src.is_symlink():
        raise UsageError(f"{src} is a symlink; move the directory it points to instead")
    if dst == src:
        raise UsageError(f"{project.uid} is already at {dst}")
    if dst.is_relative_to(src):
        raise UsageError(f"{dst} is inside {project.uid}'s own directory")
    if os.path.lexists(dst):
        raise UsageError(f"{dst} exists; the destination must be a new directory (its parent must exist)")
    if not dst.parent.is_dir():
        raise UsageError(f"{dst.parent} is not a directory; make it first")
    _refuse_nested(dst, exclude=project)
    if os.lstat(src).st_dev != os.stat(dst.parent).st_dev:
        plan.mode = "copy"
    _survey(src, plan)
    if plan.mode == "copy":
        st = os.statvfs(dst.parent)
        plan.free_bytes = st.f_bavail * st.f_frsize
        margin = max(MARGIN_MIN, min(MARGIN_MAX, st.f_blocks * st.f_frsize // 100))
        if plan.free_bytes < plan.bytes + margin:
            plan.problems.append(f"{dst.parent} has {plan.free_bytes:,} bytes free; the copy needs "
                                 f"{plan.bytes + margin:,}")
    return plan


def _holds(path: Path, pid: str | None) -> bool:
    if not pid or not (path / manifest.PROJECT_MANIFEST).is_file() or path.is_symlink():
        return False
    try:
        return manifest.read_json(path / manifest.PROJECT_MANIFEST).get("id") == pid
    except DataError:
        return False


# -- the copy ----------------------------------------------------------------------------------

class _Copier:
    """Copy a tree with directory descriptors (never following a link), recording what it copied."""

    def __init__(self, src: Path, dst: Path, total: int, progress=None, cancel=None):
        self.src, self.dst, self.total = src, dst, max(1, total)
        self.progress, self.cancel = progress, cancel
        self.done = 0
        self.files: dict[str, tuple[int, int, int]] = {}  # rel -> (size, mtime_ns, crc)
        self.links: dict[str, str] = {}
        self.dirs: set[str] = {""}
        self.hard: dict[tuple[int, int], str] = {}
        self.hardlinks: dict[str, str] = {}
        self.root = os.geteuid() == 0
        self._shown = 0.0
        self.buf = bytearray(CHUNK)  # one buffer for every file (allocating 8 MiB per file costs more than copying)

    def _tick(self, what: str, force: bool = False) -> None:
        if self.cancel is not None and self.cancel():
            raise JobCancelled("the move was cancelled")
        now = time.monotonic()
        if self.progress is not None and (force or now - self._shown > 0.5):
            self._shown = now
            self.progress(min(1.0, self.done / self.total), what)

    def _meta(self, st, fd=None, name=None, dir_fd=None) -> None:
        if fd is not None:
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
            if self.root:
                os.fchown(fd, st.st_uid, st.st_gid)
            os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))
        else:
            if self.root:
                os.chown(name, st.st_uid, st.st_gid, dir_fd=dir_fd, follow_symlinks=False)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dir_fd, follow_symlinks=False)

    def run(self) -> None:
        os.mkdir(self.dst, 0o700)
        sfd = os.open(self.src, _DIR)
        dfd = os.open(self.dst, _DIR)
        try:
            self._dir(sfd, dfd, "")
            self._meta(os.fstat(sfd), fd=dfd)
        finally:
            os.close(sfd)
            os.close(dfd)
        self._tick("copied", force=True)

    def _dir(self, sfd: int, dfd: int, rel: str) -> None:
        dev = os.fstat(sfd).st_dev
        for entry in sorted(os.scandir(sfd), key=lambda e: e.name):
            name = entry.name
            r = f"{rel}/{name}" if rel else name
            if _skip(r):
                continue
            st = os.lstat(name, dir_fd=sfd)
            if stat.S_ISDIR(st.st_mode):
                if st.st_dev != dev:
                    raise DataError(f"{self.src / r} is the mount point of another file system; nothing was moved")
                os.mkdir(name, 0o700, dir_fd=dfd)
                csfd = os.open(name, _DIR, dir_fd=sfd)
                try:
                    cdfd = os.open(name, _DIR, dir_fd=dfd)
                    try:
                        self.dirs.add(r)
                        self._dir(csfd, cdfd, r)
                        self._meta(os.fstat(csfd), fd=cdfd)
                    finally:
                        os.close(cdfd)
                finally:
                    os.close(csfd)
            elif stat.S_ISLNK(st.st_mode):
                target = os.readlink(name, dir_fd=sfd)
                os.symlink(target, name, dir_fd=dfd)
                self._meta(st, name=name, dir_fd=dfd)
                self.links[r] = target
            elif stat.S_ISREG(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if st.st_nlink > 1 and key in self.hard:
                    os.link(self.dst / self.hard[key], name, dst_dir_fd=dfd, follow_symlinks=False)
                    self.hardlinks[r] = self.hard[key]
                    continue
                self._file(sfd, dfd, name, r, st)
                if st.st_nlink > 1:
                    self.hard[key] = r
            else:
                raise DataError(f"{self.src / r} is a socket, FIFO or device; nothing was moved")

    def _file(self, sfd: int, dfd: int, name: str, rel: str, st) -> None:
        fin = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=sfd)
        try:
            fout = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=dfd)
            try:
                crc = 0
                buf = self.buf
                view = memoryview(buf)
                with os.fdopen(fin, "rb", buffering=0, closefd=False) as reader:
                    while True:
                        n = reader.readinto(buf)
                        if not n:
                            break
                        crc = zlib.crc32(view[:n], crc)
                        off = 0
                        while off < n:
                            off += os.write(fout, view[off:n])
                        self.done += n
                        self._tick(f"copying {rel}")
                after = os.fstat(fin)
                if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
                    raise DataError(f"{self.src / rel} changed while it was copied; nothing was moved")
                self._meta(st, fd=fout)
                self.files[rel] = (st.st_size, st.st_mtime_ns, crc)
            finally:
                os.close(fout)
        finally:
            os.close(fin)


def _crc_of(path: Path, buf: bytearray | None = None) -> int:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    try:
        try:  # read what is on the disk, not what the copy left in the page cache
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        except OSError:
            pass
        crc = 0
        buf = buf if buf is not None else bytearray(CHUNK)
        view = memoryview(buf)
        with os.fdopen(fd, "rb", buffering=0, closefd=False) as fh:
            while True:
                n = fh.readinto(buf)
                if not n:
                    return crc
                crc = zlib.crc32(view[:n], crc)
    finally:
        os.close(fd)


def _listing(root: Path) -> dict[str, str]:
    """rel -> kind ("d", "f", "l") of every entry below ``root`` (never following a link), skipped ones left out."""
    out: dict[str, str] = {"": "d"}
    stack = [("", root)]
    while stack:
        rel, path = stack.pop()
        for e in os.scandir(path):
            r = f"{rel}/{e.name}" if rel else e.name
            if _skip(r):
                continue
            if e.is_symlink():
                out[r] = "l"
            elif e.is_dir(follow_symlinks=False):
                out[r] = "d"
                stack.append((r, Path(e.path)))
            else:
                out[r] = "f"
    return out


def _verify(c: _Copier, progress=None) -> None:
    """The copy is the source: every entry, every link's target, every file's bytes (read from disk)."""
    expected = {**{r: "d" for r in c.dirs}, **{r: "f" for r in c.files}, **{r: "l" for r in c.links},
                **{r: "f" for r in c.hardlinks}}
    got = _listing(c.dst)
    if got != expected:
        diff = sorted(set(got.items()) ^ set(expected.items()))[:5]
        raise DataError(f"the copy in {c.dst} differs from what was copied ({diff}); nothing was moved")
    now = _listing(c.src)
    if now != expected:
        diff = sorted(set(now.items()) ^ set(expected.items()))[:5]
        raise DataError(f"{c.src} changed while it was copied ({diff}); nothing was moved")
    for rel, target in c.links.items():
        if os.readlink(c.dst / rel) != target:
            raise DataError(f"the copy of the link {rel} points elsewhere; nothing was moved")
    done = 0
    for rel, (size, mtime, crc) in c.files.items():
        st = os.lstat(c.src / rel)
        if (st.st_size, st.st_mtime_ns) != (size, mtime):
            raise DataError(f"{c.src / rel} changed while it was copied; nothing was moved")
        dst = c.dst / rel
        if os.lstat(dst).st_size != size or _crc_of(dst, c.buf) != crc:
            raise DataError(f"the copy of {rel} in {c.dst} does not match the original (a disk error?); "
                            "nothing was moved")
        done += size
        if progress is not None:
            progress(min(1.0, done / max(1, c.total)), f"verifying {rel}")
        if c.cancel is not None and c.cancel():
            raise JobCancelled("the move was cancelled")


# -- the move ---------------------------------------------------------------------------------------

def _rebind(project: Project, plan: MovePlan) -> dict:
    dst = Path(plan.dest)
    lock = ownership.read_lock(dst)
    if lock is not None and ownership.problem(project, lock):
        raise ownership.NotOwned(ownership.problem(project, lock))
    _refuse_nested(dst, exclude=project)
    with write_transaction():
        lock_rows(Project, [project.id])
        if Project.get_or_none((Project.directory == str(dst)) & (Project.id != project.id)):
            raise UsageError(f"{dst} is another project's directory; nothing was changed")
        if project_ops.current(project.id) is not None:
            raise LockedError(f"{project.uid} is being moved or deleted")
        Project.update(directory=str(dst)).where(Project.id == project.id).execute()
        if lock is None:
            ownership.write_lock(dst, project.uuid, project.uid, "rebound")
        events.record(project, "project")
        events.record(None, "projects")
    project.directory = str(dst)
    return {"mode": "rebind", "source": plan.source, "dest": plan.dest, "errors": [], "seconds": 0.0}


def move_project(project, dest: str | Path, progress=None, cancel=None) -> dict:
    """Move ``project`` to ``dest`` (see the module doc); returns the plan's figures, ``seconds`` and ``errors``.

    Archived projects may be moved (that is what archiving is for).  Refused
    while a job runs or a deletion is unfinished, for a project another
    database owns, and when the plan finds a problem.
    """
    t0 = time.monotonic()
    project = get_project(project)
    project_ops.recover_all()
    plan = plan_move(project, dest)
    if plan.problems:
        raise DataError(f"{project.uid} cannot be moved to {plan.dest}: " + "; ".join(plan.problems[:5]))
    if plan.mode == "rebind":
        return _rebind(project, plan)
    deletion.recover(project)
    if deletion.pending(project):
        raise LockedError(f"a deletion is running in {project.uid}; move it when it has finished")
    src, dst = Path(plan.source), Path(plan.dest)
    with project_ops.op_lock(dst):
        # no deletion may run in the source meanwhile: its lock is held for the whole copy
        with file_lock(src / ".cryodesk" / "lock", f"project {project.uid}", timeout=10):
            with project_write(project, allow_archived=True):
                project_ops.refuse_busy(Project.get_by_id(project.id), "move it")
                temp = dst.with_name(f".{dst.name}.cryodesk-move")
                if os.path.lexists(temp):
                    raise DataError(f"{temp} exists (left by another program?); remove it, then move again")
                op = project_ops.begin(project, "move", "renaming" if plan.mode == "rename" else "copying",
                                       src, dst, temp if plan.mode == "copy" else None, {"bytes": plan.bytes})
            if plan.mode == "rename":
                try:
                    project_ops._step("rename")
                    os.rename(src, dst)
                    fsync_dir(dst.parent)
                except OSError as exc:
                    if exc.errno != errno.EXDEV:  # (one device, two mounts: copy instead)
                        project_ops._end(op)
                        raise DataError(f"cannot rename {src} to {dst}: {exc.strerror or exc}; nothing was moved") \
                            from None
                    with write_transaction():
                        op.temp = str(temp)
                        op.phase = "copying"
                        op.save()
                    plan.mode = "copy"
                else:
                    project_ops.switch(op)
            if plan.mode == "copy":
                _copy_phase(op, src, temp, plan, progress, cancel)
            errors = project_ops.advance(op)
    project.directory = str(dst)
    out = plan.to_dict()
    out.update(errors=errors, seconds=round(time.monotonic() - t0, 3))
    return out


def _copy_phase(op, src: Path, temp: Path, plan: MovePlan, progress, cancel) -> None:
    """Copy and verify into ``temp``; on any failure the temp copy goes and the project stays."""
    copier = _Copier(src, temp, plan.bytes, progress and (lambda f, m: progress(0.8 * f, m)), cancel)
    try:
        copier.run()
        project_ops._step("sync")
        sync_filesystem(temp)
        _verify(copier, progress and (lambda f, m: progress(0.8 + 0.2 * f, m)))
        project_ops.set_phase(op, "verified")
    except BaseException as exc:
        errors = project_ops.finish_move(op)  # phase copying: removes the temp copy, ends the op
        if isinstance(exc, OSError):
            raise DataError(f"the copy to {temp.parent} failed: {exc.strerror or exc} "
                            f"({getattr(exc, 'filename', '') or ''}); {op.source} is unchanged and the "
                            f"partial copy was removed{'; ' + '; '.join(errors) if errors else ''}") from None
        raise
