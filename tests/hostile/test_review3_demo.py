"""Review 3: ``cryodesk demo --dir D`` where D cannot hold the demo.

Before the fix a D that is a file printed a ``NotADirectoryError`` traceback (after
"simulating a small dataset"), and a D below a directory this user cannot write a
``PermissionError`` one.  Now one line names the directory and what is wrong, exit code
2, and nothing is written.
"""

from __future__ import annotations

import subprocess

import pytest
from clirun import cli_runner


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    return cli_runner(tmp_path, monkeypatch, capsys)


def test_demo_dir_that_is_a_file(cli, tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("the user's notes")
    code, out, err = cli("demo", "--dir", str(f))
    assert code == 2, err
    assert "Traceback" not in err and "Error:" not in err
    assert str(f) in err and "not a directory" in err
    assert f.read_text() == "the user's notes"


def test_demo_dir_that_cannot_be_written(cli, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    if subprocess.run(["chattr", "+i", str(locked)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        for d in (locked, locked / "sub"):
            code, out, err = cli("demo", "--dir", str(d))
            assert code == 2, err
            assert "Traceback" not in err and "Error:" not in err
            assert str(locked) in err and "cannot write" in err, err
    finally:
        subprocess.run(["chattr", "-i", str(locked)], capture_output=True)
    assert list(locked.iterdir()) == []
