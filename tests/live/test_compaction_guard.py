"""Crafted or stale ``compact_session`` journal items are refused or skipped: nothing but recorded outputs goes."""

from __future__ import annotations

from pathlib import Path

from cryodesk.core import deletion, sessions
from cryodesk.core.deletion.plan import DeletionPlan, PlanItem


def _run(project, paths, action="compact_session", uid="S1"):
    return deletion.execute(project, DeletionPlan(project.uid, [PlanItem(job=uid, action=action, paths=paths)]))


def test_compaction_items_touch_only_recorded_outputs_of_a_session_being_compacted(project, session, tmp_path):
    pdir = Path(project.directory)
    movie = tmp_path / "incoming" / "m.mrc"
    movie.write_bytes(b"raw")
    stray = pdir / "S1" / "motion" / "not_ours.mrc"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"x")
    # a path out of the session directory, a job uid, a movie: refused before anything moves
    for paths, uid in ((["S1/../J1/x"], "S1"), ([str(movie)], "S1"), (["J1/x"], "J1"), (["S1"], "S1")):
        [r] = _run(project, paths, uid=uid)
        assert not r.ok and r.message.startswith("refused:"), r
    # a file in S1 that no exposure recorded, or a session that is not being compacted: skipped
    [r] = _run(project, ["S1/motion/not_ours.mrc"])
    assert not r.ok and "it is paused now" in r.message
    sessions.transition(project, session, "complete")
    sessions.set_status(project, session, "compacting")
    [r] = _run(project, ["S1/motion/not_ours.mrc"])
    assert not r.ok and "not a recorded output" in r.message
    assert stray.read_bytes() == b"x" and movie.read_bytes() == b"raw"
    # a job action naming a session is refused too
    [r] = _run(project, ["S1/motion/not_ours.mrc"], action="clear")
    assert not r.ok and "not a job uid" in r.message


def test_a_runner_stops_when_the_project_becomes_read_only(project, session, movie_source, watched):
    from livehelpers import deliver

    from cryodesk.core import project_lifecycle
    from cryodesk.engine.live import run_session

    deliver(movie_source[:1], watched)
    sessions.transition(project, session, "start")
    project_lifecycle.archive_project(project)
    why, errors = run_session(project, session, idle_exit_s=2.0)
    assert errors and "archived" in why, (why, errors)
    assert sessions.exposures(session) == []  # nothing was written
