"""Helpers of the live-session tests (tiny movies, delivery into the watched directory, checksums)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

#: four 192 px, 4-frame movies with a few 38 px particles: each exposure takes well under a second
TINY = {"n_micrographs": 4, "shape": 192, "n_frames": 4, "particles_per_micrograph": 5}
#: stage parameters that suit them (the batch jobs' names; see cryodesk.core.sessions.params)
PARAMS = {"pick.diameter_A": "76", "extract.box_size_px": "32", "ctf.tile_px": "128", "ctf.res_max_A": "6",
          "runner.settle_s": "0.2", "runner.poll_s": "0.1", "runner.max_parallel": "2",
          "motion.iterations": "3"}


def deliver(sources, watched: Path, n: int | None = None) -> list[Path]:
    """Copy (the first ``n``) movies into the watched directory, each under its final name at once."""
    out = []
    for src in list(sources)[:n]:
        dest = watched / src.name
        tmp = watched / f".{src.name}.part"
        shutil.copyfile(src, tmp)
        tmp.rename(dest)
        out.append(dest)
    return out


def checksums(root: Path, rels) -> dict[str, str]:
    return {r: hashlib.sha256((root / r).read_bytes()).hexdigest() for r in rels}


def js(cli, *argv):
    """The JSON a CLI command prints with ``--json`` (it must succeed)."""
    import json

    code, out, err = cli(*argv, "--json")
    assert code == 0, err
    return json.loads(out)
