"""``cryodesk job run|queue|kill`` and ``cryodesk worker run``: exit codes and output."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cryodesk.cli.main import main

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]


@pytest.fixture
def cli(qapp, tmp_path, monkeypatch, capsys):
    """Run the CLI in-process on a fresh database (a QApplication exists first, as in the GUI tests)."""
    monkeypatch.setenv("CRYODESK_DB", str(tmp_path / "cli.sqlite"))

    def run(*argv):
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    run("project", "create", "--title", "T", "--dir", tmp_path / "proj")
    run("workspace", "create", "P1", "--title", "main")
    return run


def test_job_run_exit_0_when_all_complete(cli):
    cli("job", "create", "P1", "t_source", "-p", "nbytes=100")
    cli("job", "create", "P1", "t_step", "-i", "particles=J1")
    cli("job", "create", "P1", "t_iter", "-p", "iterations=4")
    code, out, err = cli("job", "run", "P1", "J2", "J1", "J3")
    assert code == 0, err
    lines = sorted(out.splitlines())
    assert lines[0].startswith("P1 J1: completed in ") and "B" in lines[0]
    assert lines[1].startswith("P1 J2: completed") and lines[2].startswith("P1 J3: completed")
    assert "P1 J1: started" in err and "P1 J3: 100% iteration 3" in err  # non-tty progress lines
    code, out, err = cli("job", "list", "P1", "--json")
    assert {d["uid"]: d["status"] for d in json.loads(out)} == {"J1": "completed", "J2": "completed",
                                                                 "J3": "completed"}


def test_job_run_exit_1_on_failure_and_refusal(cli):
    cli("job", "create", "P1", "e_fail")
    cli("job", "create", "P1", "t_step", "-i", "particles=J1")
    code, out, err = cli("job", "run", "P1", "J1", "J2", "--json")
    assert code == 1
    result = {d["uid"]: d for d in json.loads(out)["jobs"]}
    assert result["J1"]["status"] == "failed" and result["J1"]["error"] == "the input stack is corrupt"
    assert result["J2"]["error"] == "not run: its input J1 failed; fix and re-run J1 first"
    assert "P1 J1: the input stack is corrupt" in err
    # a completed job, and a child of a cleared parent, are refused with the reason
    cli("job", "create", "P1", "t_source")
    cli("job", "create", "P1", "t_step", "-i", "particles=J3")
    assert cli("job", "run", "P1", "J3")[0] == 0
    assert cli("job", "clear", "P1", "J3")[0] == 0
    code, out, err = cli("job", "run", "P1", "J4")
    assert code == 1
    assert "refused: J4: input 'particles' needs J3, which is building; run (or re-run) J3 first" in err
    code, _, err = cli("job", "run", "P1", "J9")
    assert code == 1 and "no job J9 in P1" in err


def test_job_queue_then_worker_once(cli):
    cli("job", "create", "P1", "t_source")
    cli("job", "create", "P1", "t_step", "-i", "particles=J1")
    code, out, _ = cli("job", "queue", "P1", "J2", "J1")
    assert code == 0 and out.startswith("queued J1 J2")
    assert cli("job", "queue", "P1", "J1")[0] == 0  # queued and unowned: queueing again is harmless
    code, out, err = cli("worker", "run", "--once", "--project", "P1")
    assert code == 0, err
    assert "worker: took P1 J2 P1 J1" in err  # oldest queue time first (J1 was queued again)
    assert err.index("P1 J1: completed") < err.index("P1 J2: started") and "P1 J2: completed" in out
    code, _, err = cli("worker", "run", "--once")
    assert code == 0 and "no queued jobs" in err


def test_job_kill_of_a_queued_job(cli):
    cli("job", "create", "P1", "t_source")
    cli("job", "queue", "P1", "J1")
    code, out, _ = cli("job", "kill", "P1", "J1")
    assert code == 0 and out.strip() == "J1: killed"
    code, _, err = cli("job", "kill", "P1", "J1")
    assert code == 1 and "only queued or running jobs can be killed" in err


def _subprocess_cli(db: Path, *argv, **kw):
    code = ("import sys; sys.path[:0] = [%r, %r]; import enginetypes; "
            "from cryodesk.cli.main import main; sys.exit(main(sys.argv[1:]))" % (str(HERE), str(HERE.parent)))
    env = {**os.environ, "CRYODESK_DB": str(db), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-c", code, *map(str, argv)], env=env, cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def _wait_for_line(proc, needle: str, timeout: float = 60) -> list[str]:
    seen = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        seen.append(line)
        if needle in line:
            return seen
    raise AssertionError(f"{needle!r} not seen in: {''.join(seen)}")


def test_ctrl_c_cancels_running_jobs(cli, tmp_path):
    cli("job", "create", "P1", "e_iter", "-p", "iterations=400", "-p", "delay=0.05")
    proc = _subprocess_cli(tmp_path / "cli.sqlite", "job", "run", "P1", "J1")
    try:
        _wait_for_line(proc, "P1 J1: started")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "cancelling running jobs" in err and "P1 J1: killed" in out
    code, out, _ = cli("job", "show", "P1", "J1", "--json")
    d = json.loads(out)
    assert d["status"] == "killed" and d["error"] == "cancelled by the user"
    assert d["outputs"] and d["outputs"][0]["path"] == "J1/iter_000.bin"  # e_iter keeps finished iterations


def test_worker_process_runs_queued_jobs_and_honours_kill(cli, tmp_path):
    cli("job", "create", "P1", "t_source")
    cli("job", "create", "P1", "e_iter", "-p", "iterations=400", "-p", "delay=0.05")
    worker = _subprocess_cli(tmp_path / "cli.sqlite", "worker", "run", "--poll", "0.2")
    try:
        _wait_for_line(worker, "waiting for queued jobs")
        assert cli("job", "queue", "P1", "J1", "J2")[0] == 0
        _wait_for_line(worker, "P1 J2: started")
        code, out, err = cli("job", "kill", "P1", "J2", "--wait", "30")
        assert code == 0, err
        assert out.splitlines() == ["J2: kill requested; its engine stops it at its next cancellation point",
                                    "J2: killed"]
        worker.send_signal(signal.SIGTERM)
        out, err = worker.communicate(timeout=60)
    finally:
        worker.kill()
    assert "P1 J1: completed" in out and "P1 J2: killed" in out
    assert worker.returncode == 143  # stopped by SIGTERM; J2 did not complete
