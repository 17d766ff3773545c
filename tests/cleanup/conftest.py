"""Fixtures for the cleanup tests: the ``c`` family of test job types (one per preprocessing
category too) and random-project builders; database/project fixtures come from tests/conftest.py."""

from __future__ import annotations

import jobtypes

# the c_* family: one step type per preprocessing category, a file outside the outputs, growing iterations
CLEANUP_FAMILY = dict(preprocessing=tuple(jobtypes.SHORT), step_extra=77, iter_bytes=(100, 1), iter_multiple=True)
TEST_TYPES = jobtypes.family("c", **CLEANUP_FAMILY)

