"""Lanes without a cluster: the service and CLI, templates, and the tracker against a scripted scheduler.

The scripted scheduler is three small shell scripts (submit / status / cancel) keeping job states in a
file the test edits, so every scheduler answer — pending, running, cancelled, ended, gone, unreachable —
is tested on SQLite in milliseconds.  The real Slurm tests are in test_slurm_lane.py.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from cryodesk.base.errors import NotFound, UsageError
from cryodesk.cli.main import main
from cryodesk.core import lanes, lifecycle
from cryodesk.core.jobs import InputSpec, create_job, get_job
from cryodesk.db.models import Job, utcnow


class FakeScheduler:
    def __init__(self, root: Path):
        self.root = root
        root.mkdir()
        self.states = root / "states"
        self.states.write_text("")
        (root / "submit.sh").write_text(
            'n=$(($(wc -l < "$0.count" 2>/dev/null || echo 0) + 100)); echo x >> "$0.count"\n'
            f'echo "$n|PENDING" >> {self.states}; echo "$n;cluster"\n')
        (root / "cancel.sh").write_text(f'sed -i "s/^$1|.*/$1|CANCELLED/" {self.states}; echo "$1" >> {root}/cancelled\n')

    def options(self) -> dict:
        return {"submit": f"sh {self.root}/submit.sh {{{{ script_path_abs }}}}", "status": f"cat {self.states}",
                "cancel": f"sh {self.root}/cancel.sh {{{{ cluster_job_id }}}}", "cryodesk_cmd": "cryodesk"}

    def set(self, cid: str, state: str | None) -> None:
        lines = [ln for ln in self.states.read_text().splitlines() if not ln.startswith(f"{cid}|")]
        if state:
            lines.append(f"{cid}|{state}")
        self.states.write_text("".join(f"{ln}\n" for ln in lines))

    def cancelled(self) -> list[str]:
        path = self.root / "cancelled"
        return path.read_text().split() if path.exists() else []


@pytest.fixture
def fake(project, tmp_path):
    sched = FakeScheduler(tmp_path / "sched")
    lanes.add_lane("fake", "slurm", **sched.options(), vars={"queue": "short"})
    return sched


def _job(project, **kw):
    return create_job(project, "n_source", params=kw or None)


# -- service and templates ------------------------------------------------------------------

def test_lane_settings_are_checked_with_clear_errors(project):
    with pytest.raises(UsageError, match=r"\{\{ cpus \}\}, which is not a variable"):
        lanes.add_lane("c", "slurm", script="#!/bin/sh\n#SBATCH -c {{ cpus }}\n{{ run_cmd }}\n")
    with pytest.raises(UsageError, match="must contain"):
        lanes.add_lane("c", "slurm", script="#!/bin/sh\necho hi\n")
    with pytest.raises(UsageError, match="ram_gb must be a whole number"):
        lanes.add_lane("c", "slurm", ram_gb="lots")
    with pytest.raises(UsageError, match="lane type 'pbs'"):
        lanes.add_lane("c", "pbs")
    with pytest.raises(UsageError, match="takes no prefix"):
        lanes.add_lane("w", "worker", prefix="ssh x")
    with pytest.raises(UsageError, match="NAME=VALUE"):
        lanes.parse_vars(["no_equals"])
    lanes.add_lane("c", "slurm", script="{{ run_cmd }} {{ partition }}", vars={"partition": "gpu"})
    with pytest.raises(UsageError, match="exists already"):
        lanes.add_lane("c", "slurm")
    with pytest.raises(NotFound, match="no lane 'x'.*lanes: c"):
        lanes.get_lane("x")


def test_script_gets_documented_variables_and_per_job_ones(project, fake):
    job = _job(project)
    lane = lanes.get_lane("fake")
    values = lanes.script_values(lane, project, job, {"queue": "long"})
    assert set(lanes.SCRIPT_VARIABLES) <= set(values)
    assert values["queue"] == "long" and values["num_cpu"] == 1 and values["ram_gb"] == 1
    assert values["job_dir_abs"] == str(Path(project.directory).resolve() / job.uid)
    assert values["run_cmd"].startswith("cryodesk --db ") and values["run_cmd"].endswith(f"run-job P1 {job.uid}")


def test_cli_lane_commands(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("CRYODESK_DB", str(tmp_path / "cli.sqlite"))

    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    script = tmp_path / "t.sh"
    script.write_text("#!/bin/bash\n#SBATCH -p {{ partition }}\n{{ run_cmd }}\n")
    code, out, err = run("lane", "add", "hpc", "--type", "slurm", "--script-file", str(script), "--var",
                         "partition=short", "--prefix", "ssh login", "--num-cpu", "4", "--json")
    assert code == 0, err
    assert json.loads(out)["config"]["prefix"] == "ssh login"
    assert run("lane", "add", "ws2", "--type", "worker", "--host", "ws2.lab")[0] == 0
    code, out, _ = run("lane", "list", "--json")
    assert [(la["name"], la["type"]) for la in json.loads(out)["lanes"]] == [("hpc", "slurm"), ("ws2", "worker")]
    code, out, _ = run("lane", "show", "hpc")
    assert "#SBATCH -p {{ partition }}" in out and "num_cpu: 4" in out
    code, _, err = run("lane", "add", "bad", "--type", "slurm", "--submit", "sbatch {{ script }}")
    assert code == 2 and "{{ script }}" in err and "script_path_abs" in err
    code, _, err = run("lane", "add", "bad", "--type", "slurm", "--script-file", str(tmp_path / "none.sh"))
    assert code == 2 and "none.sh" in err
    code, out, err = run("lane", "status", "hpc")  # "ssh login" cannot answer here
    assert code == 1 and "UNREACHABLE" in out
    assert run("lane", "remove", "ws2")[0] == 0
    code, _, err = run("lane", "show", "ws2")
    assert code == 1 and "no lane 'ws2'" in err


# -- the tracker against the scripted scheduler -------------------------------------------------

def test_submit_follow_and_end_states(project, fake):
    a, b, c = _job(project), _job(project), _job(project)
    result = lanes.send(project, [a.uid, b.uid, c.uid], "fake", {"queue": "long"})
    assert [j for _, j, _ in result.submitted] == [a.uid, b.uid, c.uid]
    a, b, c = (get_job(project, j.uid) for j in (a, b, c))
    assert (a.status, a.cluster_job_id, a.lane) == ("launched", "100", "fake")
    script = lanes.script_path(project, a).read_text()
    assert "worker run-job P1 J1" in script and "--mem=1G" in script
    lanes.sync("fake")  # still pending: nothing changes
    assert get_job(project, a.uid).status == "launched"
    fake.set("100", "RUNNING")
    lanes.sync()
    assert get_job(project, a.uid).status == "started"
    # a: ended with an exit record but cryodesk never recorded the end; b: gone without any; c: cancelled
    (Path(project.directory) / a.uid / "lane" / "exit_code").write_text("2\n")
    fake.set("100", "FAILED")
    fake.set("101", None)
    fake.set("102", "CANCELLED")
    lanes.sync()
    a, b, c = (get_job(project, j.uid) for j in (a, b, c))
    assert a.status == "failed" and "exit status 2" in a.error and "J1/lane/slurm.out" in a.error
    assert b.status == "failed" and "vanished from the scheduler with no exit record" in b.error
    assert c.status == "killed" and "cancelled on the cluster" in c.error


def test_unreachable_scheduler_changes_nothing(project, fake):
    a = _job(project)
    lanes.send(project, [a.uid], "fake")
    fake.states.unlink()  # "cat" fails: no evidence either way
    report = lanes.sync("fake")
    assert report.errors and "status command failed" in report.errors[0]
    assert get_job(project, a.uid).status == "launched"


def test_children_wait_then_submit_and_a_failed_parent_fails_them(project, fake):
    parent = _job(project)
    child = create_job(project, "n_step", inputs=[InputSpec("particles", parent.uid)])
    lanes.send(project, [parent.uid, child.uid], "fake")
    assert get_job(project, child.uid).status == "queued" and get_job(project, child.uid).cluster_job_id is None
    Job.update(status="failed", error="boom").where(Job.id == parent.id).execute()
    lanes.sync("fake")
    assert get_job(project, child.uid).status == "failed" and parent.uid in get_job(project, child.uid).error


def test_kill_calls_cancel_and_restart_recovery_leaves_cluster_jobs_alone(project, fake):
    a, b = _job(project), _job(project)
    lanes.send(project, [a.uid, b.uid], "fake")
    assert lifecycle.recover_interrupted() == []  # an app starting again must not kill what the cluster runs
    assert lanes.kill(project, a.uid) == "killed"
    assert fake.cancelled() == ["100"]
    assert get_job(project, a.uid).status == "killed"
    # b runs on the node (owned by a run-job there): the kill is requested and the cancel command called
    owner = {**lifecycle.new_owner(), "host": "node7"}
    assert lifecycle.take_lane_job(get_job(project, b.uid), owner)
    Job.update(status="running").where(Job.id == b.id).execute()
    assert lanes.kill(project, b.uid) == "requested"
    assert fake.cancelled() == ["100", "101"] and get_job(project, b.uid).kill_requested_at is not None


def test_dead_node_is_found_by_its_heartbeats(project, fake):
    a = _job(project)
    lanes.send(project, [a.uid], "fake")
    owner = {**lifecycle.new_owner(), "host": "node7"}
    assert lifecycle.take_lane_job(get_job(project, a.uid), owner)
    Job.update(status="running").where(Job.id == a.id).execute()
    fake.set("100", "RUNNING")
    lanes.sync("fake")
    assert get_job(project, a.uid).status == "running"  # fresh heartbeat: alive
    stale = utcnow() - dt.timedelta(seconds=lifecycle.HEARTBEAT_TIMEOUT + 5)
    Job.update(heartbeat_at=stale).where(Job.id == a.id).execute()
    lanes.sync("fake")
    job = get_job(project, a.uid)
    assert job.status == "killed" and job.error == lifecycle.INTERRUPTED_REMOTE


def test_worker_lane_jobs_go_only_to_its_workers(project):
    lanes.add_lane("ws2", "worker", host="ws2")
    a, b = _job(project), _job(project)
    lanes.send(project, [a.uid], "ws2")
    lifecycle.mark_queued([b])
    assert [j.uid for j in lifecycle.claimable()] == [b.uid]
    assert [j.uid for j in lifecycle.claimable(lane="ws2")] == [a.uid]
    with pytest.raises(UsageError, match="has 1 queued or running"):
        lanes.remove_lane("ws2")


def test_a_submission_cut_short_fails_saying_what_to_check(project, fake):
    a = _job(project)
    lifecycle.mark_queued([a], lane="fake")
    Job.update(cluster_job_id="submitting:0:dead").where(Job.id == a.id).execute()  # its submitter died long ago
    lanes.sync("fake")
    job = get_job(project, a.uid)
    assert job.status == "failed" and f"cryodesk_P1_{a.uid}" in job.error and fake.cancelled() == []


def test_worker_lane_from_the_command_line(qapp, tmp_path, monkeypatch, capsys):
    # qapp: a QApplication exists before the engine would make a QCoreApplication (GUI tests follow)
    monkeypatch.setenv("CRYODESK_DB", str(tmp_path / "cli.sqlite"))

    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    assert run("project", "create", "--title", "t", "--dir", str(tmp_path / "proj"))[0] == 0
    run("workspace", "create", "P1", "--title", "main")
    for _ in range(3):
        run("job", "create", "P1", "n_source")
    assert run("lane", "add", "ws2", "--type", "worker", "--host", "ws2")[0] == 0
    code, out, err = run("job", "queue", "P1", "J1", "--lane", "ws2", "--json")
    assert code == 0 and json.loads(out)["lane"] == "ws2", err
    run("job", "queue", "P1", "J2")
    code, out, err = run("worker", "run", "--once")  # a worker of no lane leaves the lane's job alone
    assert code == 0 and "took P1 J2" in err and "J1" not in err
    code, out, err = run("worker", "run", "--once", "--lane", "ws2")
    assert code == 0 and "took P1 J1" in err and "P1 J1: completed" in out
    code, out, err = run("worker", "run-job", "P1", "J3")  # never sent anywhere: nothing to run
    assert code == 1 and "it is building; nothing to run" in err


def _whoami(ctx):
    from cryodesk.cache.config import resolve_config

    (ctx.job_dir / "ssd.txt").write_text(str(resolve_config().ssd_path))


def test_run_job_on_the_node_uses_that_workers_ssd(project, tmp_path, monkeypatch):
    from cryodesk.cache.workers import connect_worker
    from cryodesk.core import registry
    from cryodesk.core.registry import JobType
    from cryodesk.engine.run_job import run_lane_job

    registry.register(JobType("n_whoami", "who am I", "utilities", run=_whoami))
    monkeypatch.setenv("CRYODESK_WORKER", "this-host")  # restored afterwards; run-job sets it to the lane's worker
    (tmp_path / "ssd7").mkdir()
    connect_worker("gpu7", ssd_path=str(tmp_path / "ssd7"), hostname="gpu7")
    sched = FakeScheduler(tmp_path / "sched")
    lanes.add_lane("fake", "slurm", **sched.options(), worker="gpu7")
    job = create_job(project, "n_whoami")
    lanes.send(project, [job.uid], "fake")
    assert "run-job P1 J1 --worker gpu7" in lanes.script_path(project, get_job(project, job.uid)).read_text()
    done = run_lane_job("P1", job.uid, worker="gpu7", log=lambda _t: None)  # what the node runs
    assert done.status == "completed", done.error
    assert (Path(project.directory) / job.uid / "ssd.txt").read_text() == str(tmp_path / "ssd7")
    assert done.owner_engine is None  # released
    with pytest.raises(Exception, match="it is completed"):
        run_lane_job("P1", job.uid)  # never twice


def _nap(ctx):
    import time

    for _ in range(8):
        time.sleep(0.1)
        ctx.check_cancel()


def test_run_job_stamps_heartbeats_and_obeys_a_kill_request(project, tmp_path, monkeypatch):
    from cryodesk.core import registry
    from cryodesk.core.registry import JobType
    from cryodesk.engine import run_job as node

    registry.register(JobType("n_nap", "nap", "utilities", run=_nap))
    monkeypatch.setattr(lifecycle, "HEARTBEAT_INTERVAL", 0.05)
    monkeypatch.setattr(node, "POLL_S", 0.05)
    beats = []
    real = lifecycle.heartbeat
    monkeypatch.setattr(lifecycle, "heartbeat", lambda ids, owner: beats.append(owner["engine"]) or real(ids, owner))
    sched = FakeScheduler(tmp_path / "sched")
    lanes.add_lane("fake", "slurm", **sched.options())
    a, b = create_job(project, "n_nap"), create_job(project, "n_nap")
    lanes.send(project, [a.uid, b.uid], "fake")
    assert node.run_lane_job("P1", a.uid, log=lambda _t: None).status == "completed"
    assert len(beats) >= 3 and len(set(beats)) == 1
    Job.update(kill_requested_at=utcnow()).where(Job.id == b.id).execute()  # what `job kill` leaves for the node
    done = node.run_lane_job("P1", b.uid, log=lambda _t: None)
    assert done.status == "killed" and done.error == "cancelled by the user"


# -- what goes into the submission script is safe for bash and the scheduler -------------------------

def test_script_values_are_shell_quoted_and_directives_refuse_unsafe_values(database, tmp_path):
    import subprocess

    from cryodesk.core import projects

    hostile = projects.create_project("t", tmp_path / "p$(touch${IFS}HACKED) x")
    projects.create_workspace(hostile, "main")
    sched = FakeScheduler(tmp_path / "sched")
    body = "#!/usr/bin/env bash\n# {{ job_title }}\n{{ run_cmd }}\necho $? > {{ exit_code_file }}\n"
    lanes.add_lane("body", "slurm", **{**sched.options(), "cryodesk_cmd": "true"}, script=body)
    job = create_job(hostile, "n_source", title="a $(touch TITLE)\nb")
    lanes.send(hostile, [job.uid], "body")
    assert get_job(hostile, job.uid).status == "launched"
    script = lanes.script_path(hostile, job)
    subprocess.run(["bash", str(script)], cwd=tmp_path, check=True)
    assert not (tmp_path / "HACKED").exists() and not (tmp_path / "TITLE").exists()
    assert (script.parent / "exit_code").read_text().strip() == "0"  # written where the tracker looks
    # the default script puts the job's paths in #SBATCH lines, which Slurm reads unquoted: refused clearly
    lanes.add_lane("dflt", "slurm", **sched.options())
    job2 = _job(hostile)
    lanes.send(hostile, [job2.uid], "dflt")
    job2 = get_job(hostile, job2.uid)
    assert job2.status == "failed" and "job_log_path_abs" in job2.error and "directive" in job2.error
    assert "HACKED" in job2.error and not lanes.script_path(hostile, job2).exists()
    with pytest.raises(UsageError, match=r"\{\{ job_title \}\} is inside quotes"):
        lanes.add_lane("q", "slurm", script='{{ run_cmd }}\necho "{{ job_title }}"\n')


def test_control_characters_in_variables_are_refused(project, fake):
    with pytest.raises(UsageError, match="partition.*control character"):
        lanes.parse_vars(["partition=debug\ntouch /tmp/VARPWN"])  # what lane add / job queue --var call
    with pytest.raises(UsageError, match="control character"):
        lanes.add_lane("c", "slurm", vars={"partition": "a\rb"})
    job = _job(project)
    with pytest.raises(UsageError, match="queue.*control character"):
        lanes.send(project, [job.uid], "fake", {"queue": "x\x00y"})
    assert get_job(project, job.uid).status == "building"
    # a lane config edited by hand: the job fails saying why, nothing is submitted
    lane = lanes.get_lane("fake")
    lane.config = {**lane.config, "vars": {"queue": "short\ntouch /tmp/VARPWN"}}
    lane.save()
    lanes.send(project, [job.uid], "fake")
    job = get_job(project, job.uid)
    assert job.status == "failed" and "control character" in job.error and "queue" in job.error


def test_custom_variables_cannot_replace_cryodesks_own(project, fake):
    for name in ("run_cmd", "exit_code_file", "job_dir_abs", "project_dir_abs", "job_log_path_abs",
                 "project_uid", "job_uid", "lane_name", "worker"):
        with pytest.raises(UsageError, match=f"variable '{name}' is cryodesk's own"):
            lanes.add_lane("c", "slurm", vars={name: "x"})
    a, b = _job(project), _job(project)
    with pytest.raises(UsageError, match="'run_cmd' is cryodesk's own"):
        lanes.send(project, [a.uid], "fake", {"run_cmd": "rm -rf /tmp/nothing"})
    assert get_job(project, a.uid).status == "building"
    lanes.send(project, [a.uid], "fake", {"ram_gb": "32", "num_cpu": "8"})  # the resources may be set
    script = lanes.script_path(project, a).read_text()
    assert "--mem=32G" in script and "--cpus-per-task=8" in script
    lane = lanes.get_lane("fake")  # edited by hand
    lane.config = {**lane.config, "vars": {"exit_code_file": "/tmp/EXITHERE"}}
    lane.save()
    lanes.send(project, [b.uid], "fake")
    b = get_job(project, b.uid)
    assert b.status == "failed" and "'exit_code_file' is cryodesk's own" in b.error


def test_unbalanced_quoting_is_refused_and_a_hand_edited_lane_fails_clearly(project, fake):
    with pytest.raises(UsageError, match="prefix \"ssh 'unterminated\" cannot be split"):
        lanes.add_lane("c", "slurm", prefix="ssh 'unterminated")
    with pytest.raises(UsageError, match="the status command .* cannot be split"):
        lanes.add_lane("c", "slurm", status="squeue 'x")
    lane = lanes.get_lane("fake")
    lane.config = {**lane.config, "prefix": "ssh 'unterminated"}
    lane.save()
    status = lanes.lane_status("fake")
    assert status["ok"] is False and "lane 'fake'" in status["message"] and "split" in status["message"]
    job = _job(project)
    lanes.send(project, [job.uid], "fake")
    job = get_job(project, job.uid)
    assert job.status == "failed" and "lane 'fake'" in job.error and "No closing quotation" in job.error


def test_session_restore_script_gets_the_same_checks(project, fake, tmp_path):
    from types import SimpleNamespace

    from cryodesk.core.lanes import templates
    from cryodesk.core.sessions import lane_run

    lane = lanes.get_lane("fake")
    s = SimpleNamespace(uid="S1", title="a\tb\nc $(x)")
    values = lane_run._script_values(lane, project, s, tmp_path / "S1")
    assert values["job_title"] == "restore of S1 (a b c $(x))"
    assert "'restore of S1 (a b c $(x))'" in templates.render_script("# {{ job_title }}\n{{ run_cmd }}\n", values, "x")
    lane.config = {**lane.config, "vars": {"run_cmd": "x"}}  # edited by hand
    with pytest.raises(UsageError, match="'run_cmd' is cryodesk's own"):
        lane_run._script_values(lane, project, s, tmp_path / "S1")
