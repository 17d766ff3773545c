"""The CLI end to end, in-process (same services as the GUI)."""

from __future__ import annotations

import json

import pytest

from cryodesk.cli.main import main


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRYODESK_DB", str(tmp_path / "cli.sqlite"))

    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def js(cli, *argv):
    code, out, err = cli(*argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_cli_builds_and_queries_a_project(cli, tmp_path):
    assert cli("project", "create", "--title", "Apo", "--dir", str(tmp_path / "apo"))[0] == 0
    assert cli("workspace", "create", "P1", "--title", "main")[0] == 0
    assert js(cli, "job", "create", "P1", "t_source", "--workspace", "W1", "--param", "nbytes=10")["uid"] == "J1"
    d = js(cli, "job", "create", "P1", "t_step", "-w", "W1", "--input", "particles=J1.particles")
    assert d["parents"] == ["J1"] and d["inputs"][0]["output"] == "particles"
    js(cli, "job", "create", "P1", "t_step", "-w", "W1", "--input", "particles=J2")
    rows = js(cli, "job", "list", "P1")
    assert [r["uid"] for r in rows] == ["J1", "J2", "J3"]
    for key in ("uid", "type", "status", "is_final", "is_ancestor_of_final", "size_bytes",
                "workspaces", "parents", "children", "params"):
        assert key in rows[0]
    assert rows[0]["children"] == ["J2"] and rows[0]["params"] == {"nbytes": 10}
    assert [r["uid"] for r in js(cli, "job", "select", "P1", "--ancestors", "J3")] == ["J1", "J2"]
    assert [r["uid"] for r in js(cli, "job", "select", "P1", "--descendants", "J1")] == ["J2", "J3"]
    assert [r["uid"] for r in js(cli, "job", "select", "P1", "--chain", "J3", "J1")] == ["J1", "J2", "J3"]
    code, out, _ = cli("job", "select", "P1", "--ancestors", "J3")
    assert out.strip() == "J1 J2"
    assert js(cli, "project", "show", "P1")["jobs"] == 3


def test_cli_exit_codes_and_messages(cli, tmp_path):
    cli("project", "create", "--title", "X", "--dir", str(tmp_path / "x"))
    cli("workspace", "create", "P1", "--title", "main")
    cli("job", "create", "P1", "t_source")
    # refused -> 1 with the reason on stderr
    code, _, err = cli("job", "final", "P1", "J1")
    assert code == 1 and "only completed jobs can be marked as final (it is building)" in err
    code, _, err = cli("job", "mark-complete", "P1", "J1")
    assert code == 1 and "only killed or failed jobs" in err
    # not found -> 1
    code, _, err = cli("job", "show", "P1", "J9")
    assert code == 1 and "no job J9 in P1" in err
    # usage errors -> 2
    with pytest.raises(SystemExit) as exc:
        cli("job", "select", "P1")
    assert exc.value.code == 2
    code, _, err = cli("job", "create", "P1", "no_such_type")
    assert code == 2 and "unknown job type 'no_such_type'" in err
    code, _, err = cli("job", "set-param", "P1", "J1", "nbytes=lots")
    assert code == 2 and "expects int" in err
    code, _, err = cli("job", "create", "P1", "t_step", "--input", "particles")
    assert code == 2 and "NAME=J<n>" in err


def test_cli_actions_final_clear_delete_and_workspaces(cli, tmp_path):
    from cryodesk.core import runner
    from cryodesk.db import db, open_database

    cli("project", "create", "--title", "X", "--dir", str(tmp_path / "x"))
    cli("workspace", "create", "P1", "--title", "main")
    cli("workspace", "create", "P1", "--title", "branch")
    cli("job", "create", "P1", "t_source", "-w", "W1")
    cli("job", "create", "P1", "t_step", "-w", "W1", "-i", "particles=J1")
    cli("job", "create", "P1", "t_step", "-w", "W1", "-i", "particles=J2")
    open_database(None)
    with db.connection_context():
        for uid in ("J1", "J2", "J3"):
            runner.run_job("P1", uid)
    assert cli("job", "final", "P1", "J2")[0] == 0
    rows = {r["uid"]: r for r in js(cli, "job", "list", "P1")}
    assert rows["J1"]["is_ancestor_of_final"] and rows["J2"]["is_final"]
    code, _, err = cli("job", "delete", "P1", "J1")
    assert code == 1 and "ancestor of a final result" in err
    plan = js(cli, "job", "clear", "P1", "J1", "--dry-run")
    assert plan["items"][0]["job"] == "J1" and plan["bytes"] > 0
    assert (tmp_path / "x" / "J1" / "data.bin").exists()  # dry run changed nothing
    result = js(cli, "job", "clear", "P1", "J1")
    assert result["ok"] and result["bytes_freed"] == plan["bytes"]
    assert cli("job", "link", "P1", "J3", "-w", "W2")[0] == 0
    assert js(cli, "job", "show", "P1", "J3")["workspaces"] == ["W1", "W2"]
    assert cli("job", "move", "P1", "J3", "-w", "W2", "--from", "W1")[0] == 0
    assert [r["uid"] for r in js(cli, "job", "list", "P1", "--workspace", "W2")] == ["J3"]
    code, out, _ = cli("job", "clone", "P1", "J2", "J3", "-w", "W2")
    assert code == 0 and "cloned as J5" in out
    assert js(cli, "job", "show", "P1", "J5")["parents"] == ["J4"]
    assert cli("job", "final", "P1", "J2", "--unset")[0] == 0
    assert cli("job", "delete", "P1", "J5", "J3")[0] == 0
    assert not (tmp_path / "x" / "J5").exists()
