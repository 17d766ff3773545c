"""The demo simulator: deterministic, self-consistent ground truth."""

from __future__ import annotations

import hashlib
import json

import mrcfile
import numpy as np
import pytest

from cryodesk.demo import SIZES, load_truth, simulate_dataset
from cryodesk.demo.phantom import make_phantom, random_rotations

TINY = {"n_micrographs": 2, "shape": 256, "n_frames": 4, "particles_per_micrograph": 6}


def _digest(root):
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny")
    return out, simulate_dataset(out, "small", seed=5, **TINY)


def test_same_seed_same_bytes_other_seed_differs(tiny, tmp_path):
    out, _ = tiny
    simulate_dataset(tmp_path / "a", "small", seed=5, **TINY)
    simulate_dataset(tmp_path / "b", "small", seed=6, **TINY)
    assert _digest(tmp_path / "a") == _digest(out)
    assert _digest(tmp_path / "b")["movies/movie_000.mrc"] != _digest(out)["movies/movie_000.mrc"]


def test_files_and_truth_are_consistent(tiny):
    out, truth = tiny
    assert load_truth(out) == json.loads(json.dumps(truth))
    assert truth["spec"]["shape"] == 256 and len(truth["micrographs"]) == 2
    for mic in truth["micrographs"]:
        with mrcfile.open(out / mic["movie_path"]) as m:
            assert m.data.shape == (4, 256, 256) and m.is_image_stack()
            assert m.voxel_size.x == pytest.approx(2.0)
        assert mrcfile.read(out / mic["micrograph_path"]).shape == (256, 256)
        assert len(mic["particles"]) == 6 and mic["shifts_px"][0] == [0.0, 0.0]
        assert mic["defocus_u_A"] >= mic["defocus_v_A"]
        xy = np.array([[p["x"], p["y"]] for p in mic["particles"]])
        assert xy.min() >= 32 and xy.max() <= 256 - 32  # a full box fits around every particle


def test_frames_are_shifted_by_the_recorded_drift(tiny):
    out, truth = tiny
    mic = truth["micrographs"][0]
    frames = mrcfile.read(out / mic["movie_path"]).astype(np.float64)
    last = np.array(mic["shifts_px"][-1])  # (x, y)
    # The cross-correlation of the first and last frames peaks at the recorded drift.
    a, b = (f - f.mean() for f in (frames[0], frames[-1]))
    cc = np.fft.irfft2(np.fft.rfft2(b) * np.conj(np.fft.rfft2(a)), s=a.shape)
    iy, ix = np.unravel_index(np.argmax(cc), cc.shape)
    peak = np.array([(ix + 128) % 256 - 128, (iy + 128) % 256 - 128])
    assert np.abs(peak - last).max() <= 1.0


def test_micrograph_has_thon_rings_at_the_true_defocus(tiny):
    from cryodesk.jobs.preprocess_ctf import estimate_ctf

    out, truth = tiny
    mic = truth["micrographs"][1]
    fit = estimate_ctf(mrcfile.read(out / mic["micrograph_path"]), 2.0, tile=128)
    true_mean = (mic["defocus_u_A"] + mic["defocus_v_A"]) / 2
    assert abs((fit["df1_A"] + fit["df2_A"]) / 2 - true_mean) / true_mean < 0.05


def test_phantom_is_asymmetric_and_rotations_are_proper():
    ph = make_phantom(np.random.default_rng(0), 76.0)
    moments = np.linalg.eigvalsh(np.cov(ph.centers_A.T, aweights=ph.weights))
    assert np.min(np.diff(moments)) > 1.0  # distinct principal moments: no rotational symmetry axis
    r = random_rotations(np.random.default_rng(0), 50)
    np.testing.assert_allclose(r @ r.transpose(0, 2, 1), np.broadcast_to(np.eye(3), (50, 3, 3)), atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(r), 1.0)


def test_presets():
    assert SIZES["small"].shape == 512 and SIZES["small"].box == 64
    assert SIZES["medium"].n_micrographs * SIZES["medium"].particles_per_micrograph > 1000
