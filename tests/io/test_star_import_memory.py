"""``star_to_cs(..., consume=True)`` (the import job's call): the same dataset, the file's text freed first."""

from __future__ import annotations

import gc
import weakref

import numpy as np

from cryodesk.io import relion, star


def _write_star(path, n: int = 12_000) -> None:
    rng = np.random.default_rng(3)
    rows = [f"{k % 200 + 1:06d}@Extract/job007/mic{k // 200:04d}.mrcs MotionCorr/mic{k // 200:04d}.mrc "
            f"{rng.uniform(-180, 180):.6f} {rng.uniform(0, 180):.6f} {rng.uniform(-180, 180):.6f} "
            f"{rng.normal():.5f} {rng.normal():.5f} {rng.uniform(9000, 11000):.3f} {k % 2 + 1}"
            for k in range(n)]
    path.write_text("\ndata_optics\n\nloop_\n_rlnOpticsGroup #1\n_rlnVoltage #2\n_rlnImagePixelSize #3\n"
                    "_rlnImageSize #4\n1 300.0 1.06 64\n2 200.0 0.9 64\n\n\ndata_particles\n\nloop_\n"
                    "_rlnImageName #1\n_rlnMicrographName #2\n_rlnAngleRot #3\n_rlnAngleTilt #4\n_rlnAnglePsi #5\n"
                    "_rlnOriginXAngst #6\n_rlnOriginYAngst #7\n_rlnDefocusU #8\n_rlnOpticsGroup #9\n"
                    + "\n".join(rows) + "\n")


def test_consume_gives_the_same_dataset_and_frees_the_text(tmp_path):
    path = tmp_path / "particles.star"
    _write_star(path)
    kept = star.read_star(path)
    want = relion.star_to_cs(kept, str(path))
    assert len(kept) == 2  # without consume, the caller's blocks are left as they were

    blocks = star.read_star(path)
    mics = blocks["particles"].columns["rlnMicrographName"]
    assert isinstance(mics.base, np.ndarray) and mics.base.nbytes > 2 * mics.nbytes  # bulk-read: one buffer
    body = weakref.ref(mics.base)
    del mics
    got = relion.star_to_cs(blocks, str(path), consume=True)
    assert blocks == {}
    gc.collect()
    assert body() is None  # the micrograph names were copied out of the buffer, which went with the blocks

    assert got.dtype == want.dtype
    for name in got.dtype.names:
        if name != "uid":  # (new random uids: the file has none)
            assert np.array_equal(got[name], want[name]), name
    assert got["location/micrograph_path"][250] == b"MotionCorr/mic0001.mrc"
