"""Bad input on the command line gets a clear error (exit 2 or 1), never a traceback.

A uid or a number too large for a 64-bit database integer reaches SQLite
as a Python int and peewee raises ``OverflowError: Python int too large to
convert to SQLite INTEGER`` (PostgreSQL: "integer out of range"), which the
CLI does not catch: the user sees a traceback, even for read commands.
Float settings accept ``nan``, which silently turns "purge cache entries
unused for N days" and the subset threshold into never / always.
"""

from __future__ import annotations

import pytest
from clirun import cli_runner

from cryodesk.cli.main import main

HUGE = "99999999999999999999"


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    run = cli_runner(tmp_path, monkeypatch, capsys)
    run("project", "create", "--title", "X", "--dir", str(tmp_path / "x"))
    run("workspace", "create", "P1", "--title", "main")
    run("job", "create", "P1", "h_source")
    return run


@pytest.mark.parametrize("argv", [
    ("job", "show", "P1", f"J{HUGE}"),
    ("job", "show", f"P{HUGE}", "J1"),
    ("job", "list", "P1", "--workspace", f"W{HUGE}"),
    ("job", "clear", "P1", f"J{HUGE}", "--dry-run"),
    ("job", "delete", "P1", f"J{HUGE}"),
])
def test_huge_uid_is_a_usage_error(cli, argv):
    code, _, err = cli(*argv)
    assert code in (1, 2) and HUGE in err


@pytest.mark.parametrize("argv", [
    ("worker", "connect", "--worker", "w2", "--ssdpath", "/tmp", "--ssdquota", HUGE),
    ("settings", "set", "ssd_reserve_mb", HUGE, "--worker", "w1"),
])
def test_huge_worker_number_is_a_usage_error(cli, argv):
    assert cli("worker", "connect", "--worker", "w1", "--nossd")[0] == 0
    code, _, err = cli(*argv)
    assert code == 2 and "ssd" in err


@pytest.mark.parametrize("name", ["cache_lifetime_days", "cache_subset_threshold"])
def test_nan_is_not_a_number_for_a_setting(cli, name):
    code, _, err = cli("settings", "set", name, "nan", "--user")
    assert code == 2 and name in err


def test_database_in_a_directory_that_cannot_be_made(tmp_path, capsys):
    """``--db`` (or ``db_url``) below a directory that cannot be created: ``FileNotFoundError`` traceback."""
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the database's directory should be")
    code = main(["--db", str(blocker / "sub" / "cryodesk.sqlite"), "project", "list"])
    err = capsys.readouterr().err
    assert code == 1 and str(blocker) in err


def test_deeply_nested_user_settings_file_is_a_clear_error(tmp_path, monkeypatch, capsys):
    """A settings.json that json cannot parse for depth raises RecursionError (not ValueError): a traceback."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    path = tmp_path / "config" / "cryodesk" / "settings.json"
    path.parent.mkdir(parents=True)
    path.write_text("[" * 100000)
    code = main(["--db", str(tmp_path / "x.sqlite"), "settings", "show"])
    err = capsys.readouterr().err
    assert code == 2 and "settings.json" in err
