"""Fixtures for the lane tests: a real single-node Slurm (``.ci/slurm-start``) and PostgreSQL.

The Slurm tests skip, saying why, without ``sbatch`` or a controller that answers;
``.ci/run`` starts both and sets ``CRYODESK_TEST_SLURM=1``, and then a Slurm that
does not answer fails the tests instead of skipping them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import jobtypes
import pytest

TEST_TYPES = jobtypes.family("n")
HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:  # importlib mode: for lanehelp
    sys.path.insert(0, str(HERE))


def slurm_problem() -> str | None:
    """Why a real Slurm cannot be used here, or None."""
    if shutil.which("sbatch") is None or shutil.which("squeue") is None:
        return "sbatch/squeue not installed (.ci/slurm-start installs and starts a single-node Slurm)"
    try:
        proc = subprocess.run(["squeue", "--noheader"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"squeue did not answer: {exc}"
    if proc.returncode != 0:
        return f"the Slurm controller does not answer (.ci/slurm-start starts it): {proc.stderr.strip()}"
    return None


@pytest.fixture(scope="session")
def slurm():
    problem = slurm_problem()
    if problem:
        if os.environ.get("CRYODESK_TEST_SLURM"):
            pytest.fail(f"CRYODESK_TEST_SLURM is set but Slurm is not usable: {problem}")
        pytest.skip(problem)
    return True
