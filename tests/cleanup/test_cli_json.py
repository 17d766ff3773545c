"""Issue 12, item 13: ``job clear|delete --dry-run`` print the plan as JSON (as the README says), and
``job kill`` takes ``--json``."""

from __future__ import annotations

import json

from .helpers import run_now


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
