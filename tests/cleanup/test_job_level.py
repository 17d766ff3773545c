"""Issue 12, item 2: intermediate results cleared "at the project, workspace, or job level", and
automatic deletion disabled "at the project or individual job level" (a per-job setting)."""

from __future__ import annotations

import json

import pytest

from cryodesk.base.errors import Refused, UsageError
from cryodesk.cli.main import build_parser
from cryodesk.core import jobs, runner, settings_service
from cryodesk.core.cleanup import plan_clear_intermediate, set_project_setting
from cryodesk.db.models import Job, OutputFile

from .helpers import build_mixed


@pytest.fixture
def mixed(project, tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "movie.mrc").write_bytes(b"m" * 1000)
    return build_mixed(project, raw)


def cli(*argv) -> int:
    args = build_parser().parse_args(list(argv))
    return int(args.func(args) or 0)  # in the test's open database, as main() counts it


def versions(job) -> list[int]:
    return sorted({f.version for f in OutputFile.select().where(OutputFile.job == job)})


def test_job_clear_intermediate_on_named_jobs(project, mixed, capsys):
    assert cli("job", "clear-intermediate", "P1", "J3", "J5", "--dry-run", "--json") == 0
    plan = json.loads(capsys.readouterr().out)
    assert {e["uid"]: e["action"] for e in plan["entries"]} == {"J3": "clear_intermediate",
                                                               "J5": "clear_intermediate"}
    assert versions(Job.get_by_id(mixed["iter"].id)) == [0, 1, 2, 3]  # a dry run changes nothing
    assert cli("job", "clear-intermediate", "P1", "J3", "J5") == 0
    out = capsys.readouterr().out
    assert "J3: clear intermediate results done" in out and "J5: clear intermediate results done" in out
    assert versions(Job.get_by_id(mixed["iter_anc"].id)) == [2]
    assert versions(Job.get_by_id(mixed["iter"].id)) == [1, 3]  # v1 is read by J6
    # a final job keeps its intermediate results: refused, saying why (exit 1)
    assert cli("job", "clear-intermediate", "P1", "J4") == 1
    err = capsys.readouterr().err
    assert "J4" in err and "final" in err
    # a job without intermediate results: nothing to do, said so
    assert cli("job", "clear-intermediate", "P1", "J2") == 0
    assert "J2: no intermediate results" in capsys.readouterr().out


def test_workspace_and_project_forms(project, mixed, capsys):
    assert cli("workspace", "clear-intermediate", "P1", "W1", "--dry-run", "--json") == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["workspace"] == "W1" and {e["uid"] for e in plan["entries"]} == {"J3", "J5"}
    assert cli("project", "clear-intermediate", "P1", "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["result"]["ok"] and result["result"]["bytes_freed"] == plan["bytes"]
    assert versions(Job.get_by_id(mixed["iter_anc"].id)) == [2]
    plan = plan_clear_intermediate(project)
    assert not plan.entries  # nothing left to clear


def test_per_job_setting_overrides_the_project(project, capsys):
    # the project deletes intermediate results automatically (the default); this job keeps them
    j = jobs.create_job(project, "c_iter", "W1", params={"iterations": "3"})
    assert cli("job", "set-param", "P1", j.uid, "delete_intermediate=false") == 0
    assert "delete_intermediate" in capsys.readouterr().out
    assert settings_service.effective("delete_intermediate", project=project, job=j)[0] is False
    assert versions(runner.run_job(project, j)) == [0, 1, 2]
    # ... and it can be switched on a completed job (a setting, not a frozen parameter)
    assert cli("job", "set-param", "P1", j.uid, "delete_intermediate=true") == 0
    assert Job.get_by_id(j.id).settings == {"delete_intermediate": True}
    capsys.readouterr()
    # job create --param sets it too; the project says false, the job true: the job wins
    set_project_setting(project, "delete_intermediate", False)
    assert cli("job", "create", "P1", "c_iter", "--param", "iterations=3", "--param", "delete_intermediate=true",
               "--json") == 0
    made = json.loads(capsys.readouterr().out)
    k = jobs.get_job(project, made["uid"])
    assert k.settings == {"delete_intermediate": True} and "delete_intermediate" not in k.params
    assert versions(runner.run_job(project, k)) == [2]
    # a real parameter of a completed job is still refused, and a bad value is a usage error
    with pytest.raises(Refused, match="completed"):
        cli("job", "set-param", "P1", j.uid, "iterations=5")
    with pytest.raises(UsageError, match="delete_intermediate"):
        cli("job", "set-param", "P1", j.uid, "delete_intermediate=maybe")
