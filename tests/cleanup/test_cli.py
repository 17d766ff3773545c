"""``cryodesk cleanup`` / ``project size`` / ``project set`` end to end (in-process)."""

from __future__ import annotations

import io
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

    run("project", "create", "--title", "T", "--dir", str(tmp_path / "p"))
    run("workspace", "create", "P1", "--title", "main")
    assert run("project", "set", "P1", "delete_intermediate=false")[0] == 0
    run("job", "create", "P1", "c_source", "--param", "nbytes=3000")
    run("job", "create", "P1", "c_motion", "--input", "particles=J1")
    run("job", "create", "P1", "c_iter", "--param", "iterations=3")
    from cryodesk import db as dbmod
    from cryodesk.core import runner

    dbmod.open_database(str(tmp_path / "cli.sqlite"))
    with dbmod.db.connection_context():
        for uid in ("J1", "J2", "J3"):
            runner.run_job("P1", uid)
    dbmod.close_database()
    return run


def test_dry_run_prints_the_plan_as_json(cli):
    code, out, err = cli("cleanup", "P1", "--preprocessing", "motion", "--intermediate", "--dry-run")
    assert code == 0, err
    d = json.loads(out)
    assert {e["uid"]: e["action"] for e in d["entries"]} == {"J2": "clear", "J3": "clear_intermediate"}
    for tab in ("estimate", "preprocessing", "intermediate", "non_final", "killed_failed"):
        assert tab in d["tabs"]
    assert d["header"]["jobs"] == 3 and d["header"]["size_known"]


def test_refuses_without_a_terminal_and_runs_with_yes(cli, monkeypatch):
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    code, out, err = cli("cleanup", "P1", "--non-final", "delete")
    assert code == 1 and "stdin is not a terminal" in err and "pass --yes" in err
    code, out, err = cli("cleanup", "P1", "--non-final", "delete", "--yes", "--json")
    assert code == 0, err
    d = json.loads(out)
    assert d["result"]["ok"] and d["result"]["bytes_freed"] == d["plan"]["bytes"] > 3000
    code, out, _ = cli("job", "list", "P1", "--json")
    assert json.loads(out) == []


def test_usage_errors(cli):
    code, _, err = cli("cleanup", "P1")
    assert code == 2 and "nothing to clean up" in err
    code, _, err = cli("cleanup", "P1", "--preprocessing", "movement", "--dry-run")
    assert code == 2 and "unknown preprocessing category 'movement'" in err
    code, _, err = cli("project", "set", "P1", "colour=blue")
    assert code == 2 and "unknown project setting 'colour'" in err
    code, _, err = cli("project", "set", "P1", "delete_intermediate=maybe")
    assert code == 2 and "takes true or false" in err


def test_project_size_and_settings(cli):
    code, out, _ = cli("project", "size", "P1", "--json")
    d = json.loads(out)
    # measured when the project was created, before its jobs ran: known, but out of date
    assert code == 0 and d["known"] and d["stale"]
    code, out, _ = cli("project", "size", "P1", "--refresh", "--json")
    d = json.loads(out)
    assert code == 0 and not d["stale"] and d["jobs"] == 3 and d["size_bytes"] >= d["jobs_bytes"] > 3000
    code, out, _ = cli("project", "size", "P1")
    assert "linked data" in out
    cli("cleanup", "P1", "--preprocessing", "motion", "--yes")
    code, out, _ = cli("project", "size", "P1", "--json")
    assert json.loads(out)["stale"]
    code, out, _ = cli("project", "size", "P1", "--refresh", "--json")
    assert not json.loads(out)["stale"]
    code, out, _ = cli("project", "set", "P1", "delete_intermediate=true")
    assert code == 0 and out.strip() == "delete_intermediate = true"
