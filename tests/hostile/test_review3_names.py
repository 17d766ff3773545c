"""Review 3: names and paths that are not UTF-8 (legal on Linux: bytes from an old Latin-1 share).

The database stores names and paths as UTF-8 text.  Before the fix, ``cryodesk project create
--dir <non-UTF-8 path>``, ``--title <non-UTF-8>``, ``worker connect --ssdpath <non-UTF-8 path>``
or ``--worker <non-UTF-8 name>`` printed a ``UnicodeEncodeError: 'utf-8' codec can't encode
characters ... surrogates not allowed`` traceback from peewee (and a create left its new directory
behind).  Now: one line naming the argument and what to do, exit code 2, nothing created.
(Files with such names *inside* a project are fine: sizes, clear, cleanup, detach/attach, move
across file systems and delete all handle them.)
"""

from __future__ import annotations

import os

import pytest
from clirun import cli_runner

BAD = b"caf\xe9"  # "café" in Latin-1: not UTF-8


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    return cli_runner(tmp_path, monkeypatch, capsys)


def _bad(tmp_path, name: bytes = BAD) -> str:
    return os.fsdecode(os.fsencode(str(tmp_path)) + b"/" + name)


def _says_so(code, err, what):
    assert code == 2, err
    assert "Traceback" not in err and "UnicodeEncodeError" not in err, err
    assert "UTF-8" in err and repr(what) in err, err


def test_project_directory_that_is_not_utf8(cli, tmp_path):
    d = _bad(tmp_path)
    code, out, err = cli("project", "create", "--title", "T", "--dir", d)
    _says_so(code, err, d)
    assert not os.path.lexists(os.fsencode(d))
    assert cli("project", "list")[1].startswith("no projects")


def test_project_title_that_is_not_utf8(cli, tmp_path):
    title = os.fsdecode(BAD)
    code, out, err = cli("project", "create", "--title", title, "--dir", str(tmp_path / "p"))
    _says_so(code, err, title)
    assert not (tmp_path / "p").exists()


def test_attach_of_a_directory_that_is_not_utf8(cli, tmp_path):
    d = _bad(tmp_path)
    os.mkdir(os.fsencode(d))
    code, out, err = cli("project", "attach", d)
    _says_so(code, err, d)


def test_workspace_title_that_is_not_utf8(cli, tmp_path):
    assert cli("project", "create", "--title", "T", "--dir", str(tmp_path / "p"))[0] == 0
    title = os.fsdecode(BAD)
    code, out, err = cli("workspace", "create", "P1", "--title", title)
    _says_so(code, err, title)


@pytest.mark.parametrize("which", ["--ssdpath", "--worker"])
def test_worker_names_and_ssd_paths_that_are_not_utf8(cli, tmp_path, which):
    d = _bad(tmp_path)
    os.mkdir(os.fsencode(d))
    argv = ["--ssdpath", d] if which == "--ssdpath" else ["--worker", os.fsdecode(BAD), "--ssdpath", str(tmp_path)]
    code, out, err = cli("worker", "connect", *argv)
    _says_so(code, err, d if which == "--ssdpath" else os.fsdecode(BAD))
    assert "caf" not in cli("worker", "list")[1]


@pytest.mark.parametrize("argv", [["job", "create", "P1", "h_source", "-w", "W1", "--title", "TITLE"],
                                  ["session", "create", "P1", "--title", "TITLE", "--movies", "MOVIES"]])
def test_any_other_name_that_is_not_utf8_is_one_line_not_a_traceback(cli, tmp_path, argv):
    """The CLI's net: whatever command meets the database with such a name says which argument it is."""
    assert cli("project", "create", "--title", "T", "--dir", str(tmp_path / "p"))[0] == 0
    assert cli("workspace", "create", "P1", "--title", "main")[0] == 0
    (tmp_path / "movies").mkdir()
    title = os.fsdecode(BAD)
    argv = [title if a == "TITLE" else str(tmp_path / "movies") if a == "MOVIES" else a for a in argv]
    code, out, err = cli(*argv)
    _says_so(code, err, title)
    assert sorted(p.name for p in (tmp_path / "p").iterdir()) == [".cryodesk", "project.json"]
