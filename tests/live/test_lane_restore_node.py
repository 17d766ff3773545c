"""The node side of a restore on a SLURM lane, in this process (no Slurm needed): ``run_lane_session``.

A kill requested in the database (as ``cryodesk session kill`` records it, should the cancel command
not reach the node) stops the node's restore; the session stays restoring, and a second submission
continues it to the same bytes.  The scheduler is a scripted one (``echo`` commands).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from livehelpers import checksums, deliver

from cryodesk.base.errors import Refused
from cryodesk.core import lanes, sessions
from cryodesk.core.sessions import lane_run
from cryodesk.engine.live import run_session
from cryodesk.engine.run_job import run_lane_session


def _outputs(s) -> list[str]:
    return sorted(o["path"] for e in sessions.exposures(s) for o in (e.outputs or {}).values())


def test_node_restore_obeys_a_kill_request_and_a_resubmission_continues(project, session, movie_source, watched,
                                                                        tmp_path, monkeypatch):
    deliver(movie_source, watched, 3)
    sessions.transition(project, session, "start")
    assert run_session(project, session, idle_exit_s=0.3) == ("idle", [])
    sessions.transition(project, session, "complete")
    pdir = Path(project.directory)
    before = checksums(pdir, _outputs(session))
    sessions.compact(project, session)
    lanes.add_lane("hpc", "slurm", submit="echo 77", status="echo 77|RUNNING", cancel="true")
    s = lane_run.restore(project, session, "hpc")
    assert s.status == "restoring" and s.lane_run["state"] == "launched" and s.lane_run["cluster_job_id"] == "77"
    real_begin = lane_run.node_begin

    def begin_then_kill(p, sess):  # the user kills it just after the node took it
        real_begin(p, sess)
        assert lane_run.kill(p, sess) == "requested"

    monkeypatch.setattr(lane_run, "node_begin", begin_then_kill)
    state, message = run_lane_session(project.uid, s.uid)
    assert state == "killed" and "the next restore continues" in message
    s = sessions.get_session(project, s.uid)
    assert s.status == "restoring" and s.lane_run["state"] == "killed" and s.lane_run["kill_requested"]
    assert sessions.stage_counts(s)["ready"] < 3
    monkeypatch.setattr(lane_run, "node_begin", real_begin)
    with pytest.raises(Refused, match="its lane restore is killed"):
        run_lane_session(project.uid, s.uid)  # a stale node start never runs it
    s = lane_run.restore(project, s, "hpc")  # submitted again: it continues
    assert s.lane_run["state"] == "launched" and not s.lane_run["kill_requested"]
    assert run_lane_session(project.uid, s.uid)[0] == "completed"
    s = sessions.get_session(project, s.uid)
    assert s.status == "completed" and s.lane_run["state"] == "completed"
    assert checksums(pdir, _outputs(s)) == before
