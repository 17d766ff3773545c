"""Symlinks to particle stacks in a job's directory (what ``import_particles`` and ``export_particles`` make).

``link_names(paths)``        a distinct flat file name for each stack (basename, de-duplicated)
``link_target(p, cache)``    ``p.resolve()``, each directory resolved once
``link_pairs(links, names, project)``  ``(link text, name)``: relative for a stack inside the project
``make_links(links, names, project, batch=None)``  the links, made in ``links`` by a descriptor of it
``link_batch(links, names, project)``  the same packed for the compiled loop (:mod:`cryodesk.io.symlinks`)
``Linker(...)``              :func:`make_links` in a thread of its own; ``join()`` raises what it raised
"""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

__all__ = ["link_names", "link_target", "link_pairs", "make_links", "link_batch", "Linker"]


def link_names(paths: list[Path]) -> dict[Path, str]:
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


def link_target(p: Path, real_dirs: dict[str, str]) -> str:
    """``p.resolve()``, with each directory resolved once (thousands of stacks share a few)."""
    raw_parent, name = os.path.split(os.fspath(p))
    if name in ("", ".", "..") or not raw_parent:
        raw_parent, name = os.path.split(os.path.abspath(p))
    # (for a plain last name, abspath(p)'s directory is abspath(raw_parent): the directory made absolute
    # lexically, then resolved, as before)
    q = os.path.join(_real_dir(raw_parent, real_dirs), name)
    # a link's target read (one readlink, EINVAL for a file) and its directory resolved once (cached):
    # what realpath(q) gives without its lstat of every component of every target
    for _hop in range(40):
        try:
            target = os.readlink(q)
        except OSError as exc:
            if exc.errno == errno.EINVAL or isinstance(exc, (FileNotFoundError, NotADirectoryError)):
                return q  # not a link (or nothing there: realpath gives the path as it is, too)
            break
        parent, name = os.path.split(os.path.join(os.path.dirname(q), target))  # (q's directory is real)
        if name in ("", ".", ".."):
            break
        q = os.path.join(_real_dir(parent, real_dirs, target=True), name)
    return os.path.realpath(q)


def _real_dir(raw: str, real_dirs: dict[str, str], target: bool = False) -> str:
    """``realpath`` of a directory, once; of a link target's as it is (absolute: abspath would drop the
    ``..`` after a link lexically), of the stack's own made absolute first (as before)."""
    key = "\0" + raw if target else raw  # (no path holds a NUL)
    d = real_dirs.get(key)
    if d is None:
        d = real_dirs[key] = os.path.realpath(raw if target else os.path.abspath(raw))
    return d


def make_links(links: Path, names: dict[Path, str], project: Path | None = None, batch=None) -> None:
    """A symlink in the new directory ``links`` to each stack (by a descriptor of it: no path walk each).

    A stack inside ``project`` (another job's, e.g. a restack's) is linked by a path relative to
    ``links``: the project stays whole when it is moved, archived or attached elsewhere (an absolute
    link would still point at the old place). Stacks outside it (raw data) keep their absolute path.
    ``batch``: the links already packed by :func:`link_batch` (made by its compiled loop, no GIL held).
    """
    fd = os.open(links, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if batch is not None:
            from cryodesk.io import symlinks

            symlinks.symlink_all(fd, batch)
            return
        for target, name in link_pairs(links, names, project):
            os.symlink(target, name, dir_fd=fd)
    finally:
        os.close(fd)


def link_pairs(links: Path, names: dict[Path, str], project: Path | None) -> list[tuple[str, str]]:
    """``(link text, name)`` of each stack's link in ``links`` (relative inside ``project``)."""
    real_dirs: dict[str, str] = {}
    inside = _relative_linker(links, project)
    pairs = []
    for p, name in names.items():
        target = link_target(p, real_dirs)
        pairs.append((inside(target) if inside is not None else target, name))
    return pairs


def _relative_linker(links: Path, project: Path | None):
    """``target -> link text`` for links made in ``links``: relative when both are inside ``project``.

    None when nothing can be relative (no project, or ``links`` itself is not inside it).
    """
    if project is None:
        return None
    root = os.path.realpath(project)
    here = os.path.realpath(links)
    prefix = root.rstrip(os.sep) + os.sep
    if not here.startswith(prefix):
        return None
    rel_dirs: dict[str, str] = {}

    def text(target: str) -> str:
        if not target.startswith(prefix):
            return target  # raw data outside the project: absolute, as before
        d, name = os.path.split(target)
        r = rel_dirs.get(d)
        if r is None:
            r = rel_dirs[d] = os.path.relpath(d, here)
        return os.path.join(r, name)

    return text


def link_batch(links: Path, names: dict[Path, str], project: Path | None):
    """The export's links packed for the compiled loop, its kernel loaded (here, before the thread starts:
    a thread needing the GIL while the main thread converts waits a switch interval at each step)."""
    from cryodesk.io import symlinks

    batch = symlinks.prepare(link_pairs(links, names, project))
    symlinks.load_kernel()
    return batch


class Linker:
    """:func:`make_links` in a thread of its own; :meth:`join` waits and raises what it raised."""

    def __init__(self, links: Path, names: dict[Path, str], project: Path | None = None, what: str = "import",
                 batch=None):
        self.error: BaseException | None = None
        self.seconds = 0.0
        # (a daemon: a process ending on a forced stop never waits for it; every path through
        # run_import / run_export waits for it before returning or removing what it made)
        self._thread = threading.Thread(target=self._run, args=(links, names, project, batch),
                                        name=f"{what}-links", daemon=True)
        self._thread.start()

    def _run(self, links: Path, names: dict[Path, str], project: Path | None, batch) -> None:
        start = time.perf_counter()
        try:
            make_links(links, names, project, batch)
        except BaseException as exc:  # handed to the job's thread by join()
            self.error = exc
        self.seconds = time.perf_counter() - start

    def wait(self) -> None:
        self._thread.join()

    def join(self) -> None:
        self.wait()
        if self.error is not None:
            raise self.error
