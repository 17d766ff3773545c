"""``cryodesk settings show|set|unset`` (and the older ``project set`` / ``project set-default``), in process."""

from __future__ import annotations

import json

import pytest

from cryodesk.cli.main import main

from .conftest import WORKER


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRYODESK_DB", str(tmp_path / "cli.sqlite"))

    def run(*argv):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse's usage errors
            code = exc.code
        out, err = capsys.readouterr()
        assert "Traceback" not in err
        return code, out, err

    assert run("project", "create", "--title", "T", "--dir", str(tmp_path / "p"))[0] == 0
    assert run("workspace", "create", "P1", "--title", "main")[0] == 0
    assert run("job", "create", "P1", "s_reader")[0] == 0
    (tmp_path / "ssd").mkdir()
    assert run("worker", "connect", "--ssdpath", str(tmp_path / "ssd"))[0] == 0  # this worker: node1
    return run


def _view(cli, *args) -> dict:
    code, out, err = cli("settings", "show", "--json", *args)
    assert code == 0, err
    return {r["name"]: (r["value"], r["level"]) for r in json.loads(out)["settings"]}


@pytest.mark.parametrize("where,level", [(["--user"], "user"), (["--worker", WORKER], "worker"),
                                         (["--project", "P1"], "project"), (["--job", "P1", "J1"], "job")])
def test_each_level_set_and_unset(cli, where, level):
    scope = ["--project", "P1", "--job", "J1"]
    assert _view(cli, *scope)["cache_particles"] == (True, "default")
    code, out, err = cli("settings", "set", "cache_particles", "false", *where)
    assert code == 0, err
    assert out.strip().endswith(f"cache_particles = false; in effect: false (from {level})")
    assert _view(cli, *scope)["cache_particles"] == (False, level)
    code, out, err = cli("settings", "unset", "cache_particles", *where, "--json")
    assert code == 0, err
    assert json.loads(out) == {"name": "cache_particles", "level": level, "stored": None, "value": True,
                               "from": "default"}
    assert _view(cli, *scope)["cache_particles"] == (True, "default")


def test_show_names_the_source_of_each_value(cli, monkeypatch):
    cli("settings", "set", "delete_intermediate", "no", "--project", "P1")
    cli("settings", "set", "ssd_reserve_mb", "0", "--worker", WORKER)
    monkeypatch.setenv("CRYODESK_CACHE_FSYNC", "0")
    code, out, _ = cli("settings", "show", "--project", "P1")
    assert code == 0
    lines = {line.split()[0]: line.split()[1:] for line in out.splitlines()[1:-1]}
    assert lines["delete_intermediate"] == ["false", "project"]
    assert lines["ssd_reserve_mb"] == ["0", "worker"]
    assert lines["cache_fsync"] == ["false", "environment", "(CRYODESK_CACHE_FSYNC)"]
    assert lines["cache_num_threads"] == ["2", "default"]
    assert out.splitlines()[-1] == "precedence: environment > job > project > worker > user > default"


@pytest.mark.parametrize("argv,code,message", [
    (["settings", "set", "delete_intermediate", "maybe", "--project", "P1"], 2,
     "setting 'delete_intermediate' (project P1) takes true or false, got 'maybe'"),
    (["settings", "set", "ssd_quota_mb", "-5", "--worker", WORKER], 2,
     "setting 'ssd_quota_mb' (worker node1) must be at least 0, got '-5'"),
    (["settings", "set", "colour", "blue", "--user"], 2, "unknown user setting 'colour'"),
    (["settings", "set", "ssd_path", "/tmp", "--job", "P1", "J1"], 2, "setting 'ssd_path' cannot be set per job"),
    (["settings", "set", "cache_fsync", "0", "--worker", "elsewhere"], 1, "no worker 'elsewhere'"),
    (["settings", "set", "delete_intermediate", "0", "--job", "P1", "J9"], 1, "no job J9 in P1"),
    (["settings", "set", "cache_fsync", "0"], 2, "one of the arguments --user --project --job --worker is required"),
    (["settings", "set", "cache_fsync", "0", "--user", "--project", "P1"], 2, "not allowed with argument"),
    (["settings", "show", "--job", "J1"], 2, "--job needs --project"),
    (["project", "set", "P1", "delete_intermediate=maybe"], 2, "takes true or false"),
    (["project", "set-default", "P1", "cache_particles=perhaps"], 2, "takes true or false"),
])
def test_bad_input_is_one_clear_line(cli, argv, code, message):
    got, out, err = cli(*argv)
    assert got == code and message in err
    assert len([line for line in err.splitlines() if line.startswith("cryodesk")]) == 1


def test_broken_user_settings_file(cli, clean_settings):
    clean_settings.parent.mkdir(parents=True, exist_ok=True)
    clean_settings.write_text("{not json")
    code, _, err = cli("settings", "show")
    assert code == 2 and f"user settings {clean_settings} are unreadable" in err and "fix or remove" in err
    clean_settings.write_text('{"cache_num_threads": "four", "colour": 1}')
    code, _, err = cli("settings", "show")
    assert code == 1
    assert "takes a whole number, got 'four'" in err and "unknown setting 'colour'" in err
    code, _, err = cli("settings", "unset", "cache_num_threads", "--user")  # fixable from the command line
    assert code == 0, err
    assert json.loads(clean_settings.read_text()) == {"colour": 1}


def test_user_level_needs_no_database(cli, tmp_path, monkeypatch):
    """A wrong db_url in the user file must stay fixable: --user never opens the database."""
    monkeypatch.delenv("CRYODESK_DB")
    assert cli("settings", "set", "db_url", "postgresql://nobody@127.0.0.1:9/none", "--user")[0] == 0
    code, _, err = cli("project", "list")
    assert code == 1 and "cannot open the database" in err
    code, out, err = cli("settings", "unset", "db_url", "--user")
    assert code == 0, err


def test_project_set_and_set_default_are_the_project_level(cli):
    code, out, _ = cli("project", "set", "P1", "delete_intermediate=false", "cache_particles=false")
    assert code == 0 and out.splitlines() == ["delete_intermediate = false", "cache_particles = false"]
    assert _view(cli, "--project", "P1")["cache_particles"] == (False, "project")
    assert cli("project", "set-default", "P1", "--unset", "cache_particles")[0] == 0
    assert _view(cli, "--project", "P1")["cache_particles"] == (True, "default")
    code, out, _ = cli("project", "set-default", "P1", "cache_particles=false", "--json")
    assert code == 0 and json.loads(out) == {"cache_particles": False}
    assert _view(cli, "--project", "P1")["cache_particles"] == (False, "project")
    code, _, err = cli("project", "set", "P1", "colour=blue")
    assert code == 2 and "unknown project setting 'colour'" in err
