"""Fixtures for the SSD cache tests: a fake SSD (tmpfs of fixed size when mount works), stacks, workers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from mounts import small_tmpfs

from cryodesk.cache.config import CacheConfig
from cryodesk.io.mrc import make_header

WORKER = Path(__file__).with_name("_worker.py")
MB = 1_000_000


def write_stack(path: Path, n: int, box: int = 32, seed: int = 0) -> Path:
    """An MRC stack of ``n`` float32 images, pixels depending on ``seed`` and the image."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    data = rng.standard_normal((n, box, box)).astype(np.float32)
    with open(path, "wb") as fh:
        fh.write(make_header(box, box, n, 2, 1.5))
        fh.write(data.tobytes())
    return path


@pytest.fixture
def stacks(tmp_path):
    """Factory: ``stacks(k, n=..., box=...)`` -> k stacks in the 'project'."""
    def make(k: int, n: int = 20, box: int = 32, prefix: str = "s") -> list[Path]:
        return [write_stack(tmp_path / "proj" / "J1" / "extract" / f"{prefix}{i:03d}.mrc", n, box, seed=i)
                for i in range(k)]
    return make


@pytest.fixture
def ssd(tmp_path) -> Path:
    d = tmp_path / "ssd"
    d.mkdir()
    return d


def config(ssd: Path, quota_mb: float | None = None, reserve_mb: float = 0, **kw) -> CacheConfig:
    return CacheConfig(ssd_path=ssd, quota_bytes=None if quota_mb is None else int(quota_mb * MB),
                       reserve_bytes=int(reserve_mb * MB), **kw)


@pytest.fixture
def tmpfs_ssd(tmp_path):
    """A 64 MB tmpfs: 'disk full' is real.  Skipped where mounting is not permitted
    (the quota-based variants cover the same logic)."""
    with small_tmpfs(tmp_path, "64m") as d:
        yield d


def start_worker(ssd: Path, files, out: Path, *, quota_mb=None, reserve_mb=0.0, hold=0.0, slow=0.0,
                 threads=2, on_full="fallback", particles: dict | None = None,
                 lifetime_days: float = 30, gate: Path | None = None) -> subprocess.Popen:
    """A separate process staging ``files`` (see _worker.py); results in ``out`` (JSON)."""
    args = [sys.executable, str(WORKER), "--ssd", str(ssd), "--out", str(out), "--hold", str(hold),
            "--slow", str(slow), "--threads", str(threads), "--reserve-mb", str(reserve_mb),
            "--on-full", on_full, "--lifetime-days", str(lifetime_days)]
    if quota_mb is not None:
        args += ["--quota-mb", str(quota_mb)]
    if gate is not None:
        args += ["--gate", str(gate)]
    if particles is not None:
        args += ["--particles", json.dumps(particles)]
    args += [str(f) for f in files]
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, out: Path, timeout: float = 120) -> dict:
    stdout, stderr = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, f"worker failed ({proc.returncode}):\n{stdout}\n{stderr}"
    return json.loads(out.read_text())
