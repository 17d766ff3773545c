"""Hostile contents of a project's ``.cryodesk/`` state directory.

Every write command first rolls forward pending journals (``recover``),
which reads ``journal/*.json`` and ``journal/*.done`` with ``read_text()``.
A FIFO there (or any file whose open blocks) makes every write command —
``job clear``, ``job run``, ``job final``, ``cleanup`` — hang for ever,
instead of setting the journal aside as unreadable like a corrupt one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cryodesk.core import jobs, runner

REPO = Path(__file__).resolve().parents[2]


def _cli(db_path: str, *args, timeout: float = 15) -> subprocess.CompletedProcess | None:
    try:
        return subprocess.run([sys.executable, "-m", "cryodesk.cli.main", "--db", db_path, *args],
                              capture_output=True, text=True, timeout=timeout,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    except subprocess.TimeoutExpired:
        return None


@pytest.mark.parametrize("name", ["abcdefabcdef.json", "abcdefabcdef.done"])
def test_fifo_in_journal_dir_does_not_hang_write_commands(database, project, name):
    j = jobs.create_job(project, "h_source", "W1", params={"nbytes": 10})
    runner.run_job(project, j)
    jdir = Path(project.directory) / ".cryodesk" / "journal"
    jdir.mkdir(parents=True, exist_ok=True)
    if name.endswith(".done"):  # a real journal beside it, so that its .done is read
        (jdir / "abcdefabcdef.json").write_text('{"id": "abcdefabcdef", "project": "P1", "items": []}')
    os.mkfifo(jdir / name)
    run = _cli(database.database, "job", "clear", "P1", j.uid)
    assert run is not None, "cryodesk job clear hung on a FIFO in .cryodesk/journal"
    assert "Traceback" not in run.stderr


def test_done_file_symlink_is_not_followed(project, tmp_path):
    """``mark_done`` appends to ``journal/<plan>.done`` with ``open(..., "a")``, following a symlink there."""
    import json

    from cryodesk.core import deletion

    j = jobs.create_job(project, "h_source", "W1", params={"nbytes": 10})
    runner.run_job(project, j)
    outside = tmp_path / "someone_elses.txt"
    outside.write_text("keep me\n")
    jdir = Path(project.directory) / ".cryodesk" / "journal"
    jdir.mkdir(parents=True)
    # a journal a crashed process left (a clear of J1, nothing done yet) ...
    (jdir / "abcdefabcdef.json").write_text(json.dumps({
        "id": "abcdefabcdef", "project": project.uid,
        "items": [{"job": j.uid, "action": "clear", "paths": [f"{j.uid}/data.bin", f"{j.uid}/job.log"]}]}))
    # ... and its progress file replaced by a link
    (jdir / "abcdefabcdef.done").symlink_to(outside)
    deletion.recover(project)
    assert outside.read_text() == "keep me\n"
