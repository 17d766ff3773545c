"""Jobs on a real single-node Slurm through a SLURM lane, with PostgreSQL shared by the "app" and the node.

The node side is what a cluster runs: ``cryodesk worker run-job P J`` started by
the rendered submission script, in a process of its own.  Each test follows its
jobs with :func:`cryodesk.core.lanes.sync` (what the GUI's tracker and
``cryodesk lane sync`` call) and checks the database and the files.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from lanehelp import NODE_CMD, REPO
from throwaway import PG_URL, pg_project

from cryodesk.core import lanes, runner
from cryodesk.core.jobs import InputSpec, create_job, get_job
from cryodesk.db import ACTIVE_STATUSES

pytestmark = pytest.mark.skipif(not PG_URL, reason="set CRYODESK_TEST_PG_URL (a lane shares PostgreSQL)")
# values are shell-quoted (a custom variable is data, never code): {{ pre }} chooses what the script does first
TEMPLATE = lanes.DEFAULT_SCRIPT.replace(
    "{{ run_cmd }}", "case {{ pre }} in sleep) sleep 60;; exit) exit 3;; esac\n{{ run_cmd }}")


def wait_until_done(project, uids, timeout=90.0, lane="slurm"):
    deadline = time.monotonic() + timeout
    while True:
        lanes.sync(lane)
        jobs = [get_job(project, u) for u in uids]
        if all(j.status not in ACTIVE_STATUSES for j in jobs) or time.monotonic() > deadline:
            return jobs
        time.sleep(0.2)


def wait_status(project, uid, statuses, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        lanes.sync("slurm")
        job = get_job(project, uid)
        if job.status in statuses:
            return job
        time.sleep(0.2)
    raise AssertionError(f"{uid} stayed {get_job(project, uid).status}, not {statuses}")


@pytest.fixture
def lane_project(slurm, tmp_path, realdata_dir):
    with pg_project(tmp_path) as p:
        lanes.add_lane("slurm", "slurm", script=TEMPLATE, vars={"pre": ""}, cryodesk_cmd=NODE_CMD, ram_gb=1)
        pdir = Path(p.directory)
        for name in ("empiar_10076_7.mrc", "empiar_10076_7.cs"):
            shutil.copy(realdata_dir / name, pdir / name)
        imp = create_job(p, "import_particles", params={"particle_meta_path": str(pdir / "empiar_10076_7.cs")})
        assert runner.run_job(p, imp).status == "completed"  # here, as the app would
        yield p
        for job in p.jobs:  # never leave a cluster job behind
            if job.cluster_job_id and job.status in ACTIVE_STATUSES:
                subprocess.run(["scancel", job.cluster_job_id], check=False)


def test_restack_and_a_body_failure_run_on_slurm(lane_project):
    p = lane_project
    restack = create_job(p, "restack_particles", inputs=[InputSpec("particles", "J1")])
    bad = create_job(p, "import_particles", params={"particle_meta_path": str(Path(p.directory) / "missing.cs")})
    result = lanes.send(p, [restack.uid, bad.uid], "slurm")
    assert not result.refused and {j for _, j, _ in result.submitted} == {restack.uid, bad.uid}
    launched = get_job(p, restack.uid)
    assert launched.status in ("launched", "started", "running", "completed") and launched.cluster_job_id
    script = lanes.script_path(p, launched).read_text()
    assert f"worker run-job {p.uid} {restack.uid}" in script and "#SBATCH --mem=1G" in script
    done, failed = wait_until_done(p, [restack.uid, bad.uid])
    assert done.status == "completed", done.error
    # the outputs are real: the restacked particles are the imported ones, in new stacks
    cs = [o for o in done.output_files if o.kind == "dataset"][0]
    rows = np.load(Path(p.directory) / cs.path)
    assert len(rows) == 7 and all(b.decode().startswith(f"{restack.uid}/") for b in rows["blob/path"])
    history = [h["status"] for h in done.status_history]
    order = [s for s in history if s in ("queued", "launched", "running", "completed")]
    assert order[0] == "queued" and order.index("launched") < order.index("running") < order.index("completed")
    assert failed.status == "failed" and "missing.cs" in failed.error
    assert (Path(p.directory) / restack.uid / "lane" / "slurm.out").exists()


def test_preprocessing_job_runs_on_slurm(lane_project, tmp_path):
    from cryodesk.demo import simulate_dataset

    p = lane_project
    raw = tmp_path / "raw"
    simulate_dataset(raw, "small", seed=1, n_micrographs=1, shape=128, n_frames=4, particles_per_micrograph=3,
                     box=32)
    imp = create_job(p, "import_movies", params={"path": str(raw / "movies" / "*.mrc")})
    motion = create_job(p, "motion_correction", inputs=[InputSpec("movies", imp.uid)])
    lanes.send(p, [imp.uid, motion.uid], "slurm")  # the child waits for its parent, then is submitted
    assert get_job(p, motion.uid).cluster_job_id is None
    a, b = wait_until_done(p, [imp.uid, motion.uid])
    assert a.status == "completed" and b.status == "completed", (a.error, b.error)
    assert b.cluster_job_id and int(b.cluster_job_id) > int(a.cluster_job_id)
    mics = [o for o in b.output_files if o.kind == "dataset"]
    assert mics and len(np.load(Path(p.directory) / mics[0].path)) == 1


def test_kill_pending_and_running_jobs_calls_scancel(lane_project):
    p = lane_project
    held = create_job(p, "external", params={"command": "sleep 60"})
    body = create_job(p, "external", params={"command": "sleep 60"})
    lanes.send(p, [held.uid], "slurm", {"pre": "sleep"})  # the script sleeps before cryodesk starts
    lanes.send(p, [body.uid], "slurm")
    wait_status(p, held.uid, ("started",))
    wait_status(p, body.uid, ("running",))
    assert lanes.kill(p, held.uid) == "killed"
    assert lanes.kill(p, body.uid) == "requested"
    a, b = wait_until_done(p, [held.uid, body.uid], timeout=40)
    assert a.status == "killed" and "before it ran" in a.error
    assert b.status == "killed" and b.error == "cancelled by the user", b.error  # recorded by the node
    states = lanes.scheduler_states(lanes.get_lane("slurm"))
    assert states.get(a.cluster_job_id, "CANCELLED") not in ("RUNNING", "PENDING")
    assert states.get(b.cluster_job_id, "CANCELLED") not in ("RUNNING", "PENDING")


def test_job_that_vanishes_without_exit_record_fails_saying_so(lane_project):
    p = lane_project
    job = create_job(p, "restack_particles", inputs=[InputSpec("particles", "J1")])
    lanes.send(p, [job.uid], "slurm", {"pre": "exit"})  # the script dies before cryodesk runs
    (done,) = wait_until_done(p, [job.uid])
    assert done.status == "failed" and "no exit record" in done.error and done.cluster_job_id in done.error


def test_app_restart_while_queued_reattaches(lane_project):
    p = lane_project
    job = create_job(p, "restack_particles", inputs=[InputSpec("particles", "J1")])
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    base = [sys.executable, "-m", "cryodesk.cli.main", "--db", PG_URL]
    # the "app": sends the job (held on the cluster, so it stays queued) and dies before it ends
    app = subprocess.Popen(base + ["job", "run", p.uid, job.uid, "--lane", "slurm", "--var", "pre="], env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    # the id Slurm gave, not the marker the sender writes while sbatch runs ("submitting:...")
    while not (get_job(p, job.uid).cluster_job_id or "submitting:").isdigit() and time.monotonic() < deadline:
        time.sleep(0.1)
    cid = get_job(p, job.uid).cluster_job_id
    assert cid and cid.isdigit(), cid
    subprocess.run(["scontrol", "hold", cid], check=True)
    app.send_signal(signal.SIGKILL)
    app.wait(10)
    assert get_job(p, job.uid).status in ("launched", "started")
    # a new "app" (the CLI's follower) finds it on the cluster and follows it to its end
    subprocess.run(["scontrol", "release", cid], check=True)
    follower = subprocess.run(base + ["lane", "sync", "slurm", "--wait", "--interval", "0.2", "--timeout", "60",
                                      "--json"], env=env, capture_output=True, text=True, timeout=90)
    assert follower.returncode == 0, follower.stderr
    done = get_job(p, job.uid)
    assert done.status == "completed" and done.cluster_job_id == cid
