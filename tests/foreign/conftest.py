"""Fixtures for other programs' projects (issue 16)."""

from __future__ import annotations

import pytest

from cryodesk.core.deletion import trash

from .relion_fixtures import build_project


@pytest.fixture(autouse=True)
def _sync_trash(monkeypatch):
    monkeypatch.setattr(trash, "SYNC", True)  # empty in this process: bytes on disk are final at once


@pytest.fixture
def relion40(database, tmp_path):
    return build_project(tmp_path / "relion40", "4.0")
