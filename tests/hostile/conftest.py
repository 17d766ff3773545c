"""Hostile tests: the ``h`` family of test job types (database/project fixtures: tests/conftest.py)."""

from __future__ import annotations

import jobtypes

TEST_TYPES = jobtypes.family("h", iter_multiple=True)
