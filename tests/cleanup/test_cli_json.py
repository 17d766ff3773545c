"""Issue 12, item 13: ``job clear|delete --dry-run`` print the plan as JSON (as the README says), and
``job kill`` takes ``--json``."""

from __future__ import annotations

import json

import pytest

from cryodesk.cli.main import main


def run_now(tmp_path, *uids) -> None:
    """Run jobs to completion in this process, without an engine (a Qt application would outlive the test)."""
    from cryodesk import db as dbmod
    from cryodesk.core import runner

    dbmod.open_database(str(tmp_path / "cli.sqlite"))
    with dbmod.db.connection_context():
        for uid in uids:
            assert runner.run_job("P1", uid).status == "completed"


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRYODESK_DB", str(tmp_path / "cli.sqlite"))

    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    assert run("project", "create", "--title", "T", "--dir", str(tmp_path / "p"))[0] == 0
    assert run("workspace", "create", "P1", "--title", "main")[0] == 0
    return run


def test_delete_and_clear_dry_run_print_json(cli, tmp_path):
    assert cli("job", "create", "P1", "c_source", "--param", "nbytes=500")[0] == 0
    assert cli("job", "create", "P1", "c_step", "--input", "particles=J1")[0] == 0
    run_now(tmp_path, "J1")  # not `job run` in-process: it starts a QCoreApplication
    for action in ("delete", "clear"):
        code, out, err = cli("job", action, "P1", "J1", "--dry-run")
        plan = json.loads(out)  # JSON without --json, as the README promises
        assert plan["action"] == action and "refused" in plan
    code, out, err = cli("job", "delete", "P1", "J1", "--dry-run")
    plan = json.loads(out)
    assert code == 1 and plan["items"] == [] and "J2" in plan["refused"][0]["message"]  # its child stays
    code, out, _ = cli("job", "delete", "P1", "J1", "J2", "--dry-run")
    plan = json.loads(out)
    assert code == 0 and [i["job"] for i in plan["items"]] == ["J2", "J1"] and plan["bytes"] > 500
    assert (tmp_path / "p" / "J1").exists()  # a dry run changes nothing


def test_kill_has_json(cli, tmp_path):
    assert cli("job", "create", "P1", "c_source")[0] == 0
    assert cli("job", "create", "P1", "c_source")[0] == 0
    run_now(tmp_path, "J2")  # not `job run` in-process: it starts a QCoreApplication
    assert cli("job", "queue", "P1", "J1")[0] == 0
    code, out, err = cli("job", "kill", "P1", "J1", "J2", "--json")
    d = json.loads(out)
    assert code == 1
    by = {j["uid"]: j for j in d["jobs"]}
    assert by["J1"]["outcome"] == "killed" and by["J1"]["status"] == "killed"
    assert by["J2"]["outcome"] == "refused" and "completed" in by["J2"]["message"]
