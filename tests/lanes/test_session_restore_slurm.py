"""A live session's restore on a real single-node Slurm: one cluster job runs ``cryodesk worker run-session``.

A tiny session is processed here (3 movies), completed and compacted; its
restore is submitted through the SLURM lane with ``cryodesk session restore
--lane slurm`` (the CLI, in a process of its own, as a user types it), killed
on the node (scancel), submitted again and it continues: the files come back
bit-identical and the raw movies are untouched.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from lanehelp import NODE_CMD, REPO
from livehelpers import PARAMS, TINY, checksums, deliver
from throwaway import PG_URL, pg_project

from cryodesk.base.errors import Refused, UsageError
from cryodesk.core import lanes, sessions
from cryodesk.core.sessions import lane_run

pytestmark = pytest.mark.skipif(not PG_URL, reason="set CRYODESK_TEST_PG_URL (a lane shares PostgreSQL)")


def _cli(*args, timeout=120):
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.run([sys.executable, "-m", "cryodesk.cli.main", "--db", PG_URL, *args], capture_output=True,
                          text=True, timeout=timeout, env=env, stdin=subprocess.DEVNULL)


def _outputs(s) -> list[str]:
    return sorted(o["path"] for e in sessions.exposures(s) for o in (e.outputs or {}).values())


def _follow(project, uid, states, timeout=90.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lane_run.sync("slurm")
        s = sessions.get_session(project, uid)
        if (s.lane_run or {}).get("state") in states:
            return s
        time.sleep(0.2)
    raise AssertionError(f"{uid}'s lane restore stayed {sessions.get_session(project, uid).lane_run}")


@pytest.fixture
def compacted(slurm, tmp_path, qapp):
    from cryodesk.demo import simulate_dataset
    from cryodesk.engine.live import run_session

    simulate_dataset(tmp_path / "sim", "small", seed=3, **TINY)
    watched = tmp_path / "incoming"
    watched.mkdir()
    movies = deliver(sorted((tmp_path / "sim" / "movies").glob("*.mrc")), watched, 3)
    with pg_project(tmp_path) as p:
        lanes.add_lane("slurm", "slurm", cryodesk_cmd=NODE_CMD, ram_gb=1)
        s = sessions.create(p, str(watched / "*.mrc"), "live", dict(PARAMS))
        sessions.transition(p, s, "start")
        assert run_session(p, s, idle_exit_s=0.3) == ("idle", [])
        sessions.transition(p, s, "complete")
        before = checksums(Path(p.directory), _outputs(s))
        sessions.compact(p, s)
        movie_sums = {str(m): hashlib.sha256(m.read_bytes()).hexdigest() for m in movies}
        yield p, sessions.get_session(p, s.uid), before, movie_sums
        s = sessions.get_session(p, s.uid)
        if lane_run.is_active(s):  # never leave a cluster job behind
            subprocess.run(["scancel", str(s.lane_run["cluster_job_id"])], check=False)


def test_restore_on_slurm_killed_then_resubmitted_is_bit_identical(compacted):
    p, s, before, movie_sums = compacted
    pdir = Path(p.directory)
    assert not any((pdir / r).exists() for r in before)
    # submitted with --no-wait, then killed on the node: scancel; the session stays restoring
    proc = _cli("session", "restore", p.uid, s.uid, "--lane", "slurm", "--no-wait", "--json")
    assert proc.returncode == 0, proc.stderr
    run = json.loads(proc.stdout)["lane_run"]
    assert run["lane"] == "slurm" and run["state"] == "launched" and run["cluster_job_id"].isdigit()
    script = (pdir / "S1" / "lane" / "submit.sh").read_text()
    assert f"worker run-session {p.uid} S1 --restore" in script
    with pytest.raises(Refused, match="already launched on lane 'slurm'"):
        lane_run.restore(p, s, "slurm")
    s = _follow(p, s.uid, ("running",))
    assert lane_run.kill(p, s) == "requested"  # at once (the CLI's start-up could miss the restore running)
    s = _follow(p, s.uid, ("killed",))
    assert s.status == "restoring", s.lane_run
    assert lane_run.active_count() == 0
    # submitted again (the session's lane setting this time), the CLI follows it to its end
    sessions.set_lane(p, s, "slurm")
    proc = _cli("session", "restore", p.uid, s.uid, "--json")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    d = json.loads(proc.stdout)
    assert d["status"] == "completed" and d["lane_run"]["state"] == "completed", d["lane_run"]
    assert d["lane_run"]["cluster_job_id"] != run["cluster_job_id"]
    s = sessions.get_session(p, s.uid)
    assert checksums(pdir, _outputs(s)) == before
    assert {m: hashlib.sha256(Path(m).read_bytes()).hexdigest() for m in movie_sums} == movie_sums
    proc = _cli("session", "kill", p.uid, s.uid)
    assert proc.returncode == 1 and "P1 S1: no restore of it is active on a lane" in proc.stderr
    # session show reports it
    shown = _cli("session", "show", p.uid, s.uid)
    assert "restore on lane slurm: completed" in shown.stdout, shown.stdout + shown.stderr


def test_a_session_lane_must_be_local_or_slurm(tmp_path):
    with pg_project(tmp_path) as p:
        lanes.add_lane("wk", "worker")
        with pytest.raises(UsageError, match="is a worker lane"):
            sessions.create(p, str(tmp_path / "in" / "*.mrc"), lane="wk")
        with pytest.raises(Exception, match="no lane 'nope'"):
            sessions.create(p, str(tmp_path / "in" / "*.mrc"), lane="nope")
        lanes.add_lane("hpc", "slurm")
        s = sessions.create(p, str(tmp_path / "in" / "*.mrc"), lane="hpc")
        with pytest.raises(UsageError, match="is the restore lane of session"):
            lanes.remove_lane("hpc")
        with pytest.raises(UsageError, match="is a worker lane"):
            sessions.set_lane(p, s, "wk")
        with pytest.raises(Refused, match="only a compacted session"):
            lane_run.restore(p, s, "hpc")
        with pytest.raises(Refused, match="no restore of it is active"):
            lane_run.kill(p, s)
        sessions.set_lane(p, s, "local")
        lanes.remove_lane("hpc")
