"""Where the stacks of an imported particle set are, never outside what the user pointed at.

Stack paths in metadata are relative to different places: CryoSPARC's to the
project directory (``J3/extract/x.mrc``) or, with a leading ``>``, to the
``.cs`` file itself; RELION's to the project directory (``Extract/job007/x.mrcs``)
or, in files moved about, to the STAR file (``../Extract/job007/x.mrcs``, the
stacks of a sibling job).  A relative path is looked up

1. under ``base`` (``particle_blob_path``, default: the metadata file's directory),
2. then under the metadata file's directory,

and the first candidate inside ``root`` that exists wins (else the first inside
``root``, so that a missing stack is reported where it was looked for).  ``root``
is what the user pointed at: ``particle_blob_path`` when given, else the
metadata file's directory.  The check is lexical (``..`` resolved, symlinks
not followed: raw data is often a link to another disk).  Absolute paths are
taken as they are.

API summary
-----------
``locate_stacks(raw_paths, base, meta_dir, root, source) -> {raw: Path}``
``inside(path, root) -> bool``
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from cryodesk.base.errors import DataError

__all__ = ["locate_stacks", "inside"]


def inside(path: Path | str, root: Path | str) -> bool:
    """``path`` (after resolving ``..`` lexically) is ``root`` or below it."""
    p, r = os.path.normpath(os.path.abspath(path)), os.path.normpath(os.path.abspath(root))
    return p == r or p.startswith(r.rstrip(os.sep) + os.sep)


def _normpath(path: str, dirs: dict[str, str]) -> str:
    """``os.path.normpath(path)``, the directory part normalised once per ``dirs`` (a cache)."""
    head, sep, tail = path.rpartition(os.sep)
    if not sep or not head.strip(os.sep) or tail in ("", ".", ".."):
        return os.path.normpath(path)
    d = dirs.get(head)
    if d is None:
        d = dirs[head] = os.path.normpath(head)
    # a plain last component adds itself to the normalised directory (join keeps "/" and "//" right)
    return os.path.join(d, tail) if d.startswith(os.sep) else os.path.normpath(path)


def locate_stacks(raw_paths, base: Path, meta_dir: Path, root: Path, source: str) -> dict[str, Path]:
    """The resolved path of every distinct raw ``blob/path`` value (see module doc).

    The prefix ``>`` is removed and the rest normalised (``..`` resolved)
    before the bound check, so no spelling gets past it.

    Raises
    ------
    DataError
        An empty path, or one whose every candidate lies outside ``root``.
    """
    out: dict[str, Path] = {}
    base_s, meta_s = os.path.abspath(base), os.path.abspath(meta_dir)
    root_s = os.path.normpath(os.path.abspath(root))
    prefixes = {d: d.rstrip(os.sep) + os.sep for d in (root_s, os.path.normpath(meta_s))}

    def within(path: str, limit: str) -> bool:
        return path == limit or path.startswith(prefixes[limit])

    dirs: dict[str, str] = {}  # thousands of stacks in a few directories: each normalised once

    def norm(path: str) -> str:
        return _normpath(path, dirs)

    # (bases, directory part) -> each base joined with it, normalised, as a prefix ending in "/"; a plain
    # last name is added to it: normpath(join(b, head, name)) == join(normpath(join(b, head)), name)
    prefixes_of: dict[tuple[tuple[str, ...], str], list[str]] = {}

    def candidates(rel: str, bases: tuple[str, ...]) -> list[str]:
        head, _, tail = rel.rpartition(os.sep)
        if tail in ("", ".", "..") or rel.startswith(os.sep):
            return list(dict.fromkeys(norm(os.path.join(b, rel)) for b in bases))
        heads = prefixes_of.get((bases, head))
        if heads is None:
            heads = [d if d.endswith(os.sep) else d + os.sep  # ("/" and "//" end in one already)
                     for d in dict.fromkeys(os.path.normpath(os.path.join(b, head)) for b in bases)]
            prefixes_of[(bases, head)] = heads
        return [d + tail for d in heads]

    both, meta_only = (base_s, meta_s), (meta_s,)
    for raw in dict.fromkeys(np.asarray(raw_paths).tolist()):
        try:
            text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw)
        except UnicodeDecodeError:
            raise DataError(f"{source}: stack path {raw!r} is not UTF-8 text") from None
        if text in out:
            continue
        if not text or text == ">":
            raise DataError(f"{source}: a particle has an empty stack path")
        if "\0" in text:
            raise DataError(f"{source}: stack path {text!r} contains a NUL byte")
        if text.startswith(">"):
            cands, limit = candidates(text[1:], meta_only), os.path.normpath(meta_s)
        elif os.path.isabs(text):
            out[text] = Path(text)
            continue
        else:
            cands, limit = candidates(text, both), root_s
        ok = [c for c in cands if within(c, limit)]
        if not ok:
            raise DataError(f"{source}: stack path {text!r} escapes the particle data directory {limit} "
                            f"(looked up under {', '.join(str(b) for b in dict.fromkeys((base, meta_dir)))}); "
                            f"set particle_blob_path to a directory that contains the stacks")
        out[text] = Path(ok[0] if len(ok) == 1 or os.path.exists(ok[0]) else
                         next((c for c in ok[1:] if os.path.exists(c)), ok[0]))
    return out
