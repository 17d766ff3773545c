"""The core tests' job types: the shared ``t`` family (database/project fixtures: tests/conftest.py)."""

from __future__ import annotations

import jobtypes

TEST_TYPES = jobtypes.family("t")

