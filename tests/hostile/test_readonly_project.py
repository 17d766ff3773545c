"""A project directory that became read-only (or full): clear errors, and the database never runs ahead.

Manifests (``job.json``, ``project.json``) are the project's own record —
``project attach`` rebuilds the database from them.  On a read-only (or
full) file system every manifest write raises a raw ``OSError``, which the
CLI does not catch: ``job final``, ``job mark-complete``, ``job link``,
``settings set --project``, ``workspace create`` and ``job create`` print a
traceback.  Worse, ``set_final`` commits the flags first and writes the
manifests after the transaction: the database says *final* while every
``job.json`` says not, so a re-attach (or anything rebuilt from the
manifests) has lost the final flag and its protection of the ancestors.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from mounts import small_tmpfs

from cryodesk import db as dbmod
from cryodesk.cli.main import main
from cryodesk.core import jobs, projects, runner
from cryodesk.db.models import Job


@pytest.fixture
def ro_project(tmp_path, monkeypatch, capsys):
    """P1 with a completed J1 <- J2 chain, a killed J3, workspaces W1 W2 on a tmpfs, then the tmpfs remounted read-only; yields run(argv)."""
    monkeypatch.setenv("CRYODESK_DB", str(tmp_path / "cli.sqlite"))
    with small_tmpfs(tmp_path, "16m") as fs:
        def run(*argv):
            try:
                code = main(list(argv))
            except Exception as exc:  # what a user of the console script sees as a traceback
                out, err = capsys.readouterr()
                return None, out, err + f"Traceback: {type(exc).__name__}: {exc}"
            out, err = capsys.readouterr()
            return code, out, err

        assert run("project", "create", "--title", "X", "--dir", str(fs / "p"))[0] == 0
        with dbmod.db.connection_context():
            projects.create_workspace("P1", "main")
            a = jobs.create_job("P1", "h_source", "W1", params={"nbytes": 10})
            runner.run_job("P1", a)
            b = jobs.create_job("P1", "h_step", "W1", [jobs.InputSpec("particles", a.uid)], {"nbytes": 5})
            runner.run_job("P1", b)
            c = jobs.create_job("P1", "h_source", "W1", params={"nbytes": 10})
            runner.run_job("P1", c)
            jobs.set_status(Job.get_by_id(c.id), "killed", error="test")  # J3, to be marked complete
            projects.create_workspace("P1", "second")  # W2, to link into
        ro = subprocess.run(["mount", "-o", "remount,ro", str(fs)], capture_output=True, text=True)
        if ro.returncode != 0:
            pytest.skip(f"cannot remount read-only: {ro.stderr}")
        run.dir = fs / "p"
        yield run


def test_mark_final_on_read_only_project_is_a_clear_error_and_changes_nothing(ro_project):
    code, _, err = ro_project("job", "final", "P1", "J2")
    with dbmod.db.connection_context():
        db_flags = {j.uid: (j.is_final, j.is_ancestor_of_final) for j in Job.select()}
    disk_flags = {}
    for uid in db_flags:
        d = json.loads((Path(ro_project.dir) / uid / "job.json").read_text())
        disk_flags[uid] = (d["is_final"], d["is_ancestor_of_final"])
    assert db_flags == disk_flags  # the database did not run ahead of the project's own record
    assert code == 1 and "Read-only file system" in err and "Traceback" not in err, err


@pytest.mark.parametrize("argv", [
    ("job", "mark-complete", "P1", "J3"),
    ("job", "link", "P1", "J2", "--workspace", "W2"),
    ("settings", "set", "delete_intermediate", "false", "--project", "P1"),
    ("workspace", "create", "P1", "--title", "third"),
    ("job", "create", "P1", "h_source", "--workspace", "W1"),
])
def test_writes_to_read_only_project_are_clear_errors(ro_project, argv):
    code, _, err = ro_project(*argv)
    assert code == 1 and "Read-only file system" in err and "Traceback" not in err, err
