"""Review 3: ``project attach`` of a directory whose lock file (``.cryodesk/owner.json``) is damaged.

Before the fix:

* a lock naming a project id that is not text (``"project": 7``) printed a ``TypeError`` traceback;
* an unreadable lock (not JSON, empty) or one naming no database said "attach the project again
  with --force" — and ``--force`` said the same again: the user could only delete the file by hand.

Now a damaged lock is one line naming it, and ``--force`` takes the directory over, keeping the
damaged file beside the new lock (``owner.json.unreadable-<time>``) for whoever wants to look at it;
an attach that then fails puts it back.
"""

from __future__ import annotations

import json

import pytest
from clirun import cli_runner

from cryodesk import db as dbmod
from cryodesk.core import jobs, projects, runner
from cryodesk.core.project_lifecycle import detach_project


@pytest.fixture
def detached(tmp_path):
    """A detached project directory (with a completed job) and its lock file path."""
    dbmod.open_database(str(tmp_path / "first.sqlite"))
    with dbmod.db.connection_context():
        p = projects.create_project("Locked", tmp_path / "proj")
        projects.create_workspace(p, "main")
        runner.run_job(p, jobs.create_job(p, "h_source", "W1", params={"nbytes": 10}))
        detach_project(p)
    dbmod.close_database()
    lock = tmp_path / "proj" / ".cryodesk" / "owner.json"
    return tmp_path / "proj", lock


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    return cli_runner(tmp_path, monkeypatch, capsys)


DAMAGED = {
    "not JSON": b"{{{",
    "empty": b"",
    "a list": b"[1, 2]",
    "no database": json.dumps({"project": "x", "uid": "P1"}).encode(),
    "project id a number": json.dumps({"database": "0123456789abcdef", "project": 7, "uid": "P1"}).encode(),
}


@pytest.mark.parametrize("case", sorted(DAMAGED))
def test_a_damaged_lock_is_one_line_and_force_takes_the_directory_over(detached, cli, case):
    pdir, lock = detached
    lock.write_bytes(DAMAGED[case])
    code, out, err = cli("project", "attach", str(pdir))
    assert code == 1, (out, err)
    assert "Traceback" not in err and "Error:" not in err, err
    assert str(lock) in err and "--force" in err
    assert lock.read_bytes() == DAMAGED[case]
    code, out, err = cli("project", "attach", str(pdir), "--force")
    assert code == 0, err
    assert "attached" in out and "unreadable" in out, out
    kept = [p for p in lock.parent.iterdir() if p.name.startswith("owner.json.unreadable-")]
    assert len(kept) == 1 and kept[0].read_bytes() == DAMAGED[case]
    assert json.loads(lock.read_text())["uid"] == "P1"
    code, out, err = cli("job", "list", "P1")
    assert code == 0 and "J1" in out


def test_a_forced_attach_that_fails_puts_the_damaged_lock_back(detached, cli):
    pdir, lock = detached
    lock.write_bytes(b"{{{")
    (pdir.parent / "project.json").write_text("{}")  # refused after the lock was read: inside a project
    code, out, err = cli("project", "attach", str(pdir), "--force")
    assert code == 2 and "inside the project directory" in err, err
    assert lock.read_bytes() == b"{{{"
    assert [p.name for p in lock.parent.iterdir() if p.name.startswith("owner.json.")] == []


def test_an_attached_project_whose_lock_was_damaged_is_taken_back_with_force(detached, cli):
    """What the other commands' refusal says to do ("attach the project again with --force") works."""
    pdir, lock = detached
    assert cli("project", "attach", str(pdir))[0] == 0
    lock.write_bytes(b"{{{")
    code, out, err = cli("job", "clear", "P1", "J1")
    assert code == 1 and str(lock) in err and "--force" in err, err
    code, out, err = cli("project", "attach", str(pdir), "--force")
    assert code == 0 and "unreadable" in out, err
    code, out, err = cli("job", "clear", "P1", "J1")
    assert code == 0, err
    assert cli("project", "list")[1].count("P1") == 1
