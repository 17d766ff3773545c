"""Shared test fixtures.  Qt runs headless: the platform is set before Qt loads."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO / "test-artifacts"


@pytest.fixture(scope="session")
def realdata_dir() -> Path:
    """Real cryo-EM files written by other software (``../shared/realdata``)."""
    path = Path(os.environ.get("CRYODESK_REALDATA", REPO.parent / "shared" / "realdata"))
    if not (path / "empiar_10076_7.mrc").exists():
        pytest.skip(f"real test data not found at {path}")
    return path


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """Where tests save screenshots and other things a person should look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
