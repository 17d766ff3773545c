"""The ``cryodesk session`` commands in-process, and a restore SIGKILLed then resumed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from livehelpers import PARAMS, checksums, deliver, js

CHILD = Path(__file__).with_name("restore_child.py")


def _outputs(d: dict) -> list[str]:
    return sorted(o["path"] for e in d["exposures"] for o in e["outputs"].values())


def test_cli_session_lifecycle_and_sigkill_during_restore(cli, tmp_path, movie_source):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    assert cli("project", "create", "--title", "Live", "--dir", str(tmp_path / "proj"))[0] == 0
    params = [a for k, v in PARAMS.items() for a in ("-p", f"{k}={v}")]
    d = js(cli, "session", "create", "P1", "--movies", str(incoming / "*.mrc"), "--title", "run 1", *params)
    assert (d["uid"], d["status"]) == ("S1", "paused")
    deliver(movie_source, incoming)
    d = js(cli, "session", "start", "P1", "S1", "--exit-when-idle", "0.5")
    assert d["status"] == "running" and d["stage_counts"]["ready"] == 4
    assert [r["uid"] for r in js(cli, "session", "list", "P1")] == ["S1"]
    code, out, err = cli("session", "show", "P1", "S1")
    assert code == 0 and "E4" in out and "accepted" in out
    code, _, err = cli("session", "compact", "P1", "S1")
    assert code == 1 and "only a session marked completed" in err
    assert js(cli, "session", "complete", "P1", "S1")["status"] == "completed"
    plan = js(cli, "session", "compact", "P1", "S1", "--dry-run")
    assert set(plan["bytes_by_kind"]) == {"micrographs", "thumbnails", "CTF spectra", "particle stacks"}
    before = js(cli, "session", "show", "P1", "S1")
    proj = Path(before["directory"]).parent
    sums = checksums(proj, _outputs(before))
    result = js(cli, "session", "compact", "P1", "S1")
    assert result["freed_bytes"] == plan["bytes"] and result["status"] == "compacted"
    code, _, err = cli("session", "set", "P1", "S1", "thresholds.particles_min=2")
    assert code == 1 and "compacted; it cannot be modified until it is restored" in err
    code, _, err = cli("session", "export", "P1", "S1")
    assert code == 1 and "compacted" in err
    # a restore killed (SIGKILL) after its 3rd stage wrote its files but before it was recorded
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[2])] + sys.path))
    child = subprocess.run([sys.executable, str(CHILD), str(tmp_path / "cli.sqlite"), "3"], env=env,
                           capture_output=True, text=True, timeout=120)
    assert child.returncode == -9, child.stderr
    mid = js(cli, "session", "show", "P1", "S1")
    assert mid["status"] == "restoring" and mid["stage_counts"]["ready"] < 4
    debris = proj / "S1" / "motion" / ".E00001_movie_000_aligned.mrc.1a2b3c4d.tmp"  # a write the kill cut short
    debris.parent.mkdir(exist_ok=True)
    debris.write_bytes(b"partial")
    # ... run again: it continues, and the files are the ones compaction removed, byte for byte
    d = js(cli, "session", "restore", "P1", "S1")
    assert d["status"] == "completed" and d["stage_counts"]["ready"] == 4
    after = js(cli, "session", "show", "P1", "S1")
    assert checksums(proj, _outputs(after)) == sums
    assert not debris.exists() and not list((proj / "S1").rglob("*.tmp"))  # the resumed runner removed it
    assert cli("workspace", "create", "P1", "--title", "main")[0] == 0
    code, out, err = cli("session", "export", "P1", "S1")
    assert code == 0 and "P1 J1: exported the accepted particles of S1" in out, err
    job = js(cli, "job", "show", "P1", "J1")
    assert job["status"] == "completed" and job["type"] == "session_export"



def test_demo_live_session_streams_arriving_movies(project, tmp_path):
    """The demo's session: movies arrive (one every 0.3 s here) while it runs; all are processed."""
    from livehelpers import TINY

    from cryodesk.core import sessions
    from cryodesk.demo import simulate_dataset
    from cryodesk.demo.live import add_live_session, feeder
    from cryodesk.engine.live import run_session

    raw = tmp_path / "raw"
    simulate_dataset(raw, "small", seed=1, **dict(TINY, n_micrographs=2))
    s = add_live_session(project, raw, tmp_path / "incoming")
    sessions.set_params(project, s, {"runner.settle_s": "0.1", "runner.poll_s": "0.1"})
    sessions.transition(project, s, "start")
    thread, _ = feeder(raw, tmp_path / "incoming", interval_s=0.3)
    why, errors = run_session(project, s, idle_exit_s=1.0)
    thread.join()
    assert (why, errors) == ("idle", [])
    d = sessions.describe(project, s)
    assert d["exposures_total"] == 2 and all(e["stage"] == "ready" and e["n_particles"] for e in d["exposures"])
