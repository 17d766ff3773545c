"""Fixtures for the cleanup tests: the ``c`` family of test job types (one per preprocessing
category too) and random-project builders; database/project fixtures come from tests/conftest.py."""

from __future__ import annotations

import jobtypes
import pytest

# the c_* family: one step type per preprocessing category, a file outside the outputs, growing iterations
CLEANUP_FAMILY = dict(preprocessing=tuple(jobtypes.SHORT), step_extra=77, iter_bytes=(100, 1), iter_multiple=True)
TEST_TYPES = jobtypes.family("c", **CLEANUP_FAMILY)



@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """``run(*argv) -> (code, out, err)`` of the real CLI on a project P1 with workspace W1
    (its own SQLite database; test_cli.py builds a bigger project under the same name)."""
    from cryodesk.cli.main import main

    monkeypatch.setenv("CRYODESK_DB", str(tmp_path / "cli.sqlite"))

    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    assert run("project", "create", "--title", "T", "--dir", str(tmp_path / "p"))[0] == 0
    assert run("workspace", "create", "P1", "--title", "main")[0] == 0
    return run
