"""A session writes only inside ``S<n>/``: symlinked stage directories, movies that are project files.

Regressions of the hostile test of 2026-12-01 (findings 1, 2, 10, 11).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from livehelpers import deliver

from cryodesk.base.errors import DataError, Refused
from cryodesk.core import sessions
from cryodesk.engine.live import run_session


@pytest.fixture
def one_done(project, session, movie_source, watched):
    """S1 after one movie was processed and the session was completed."""
    deliver(movie_source, watched, 1)
    sessions.transition(project, session, "start")
    assert run_session(project, session, idle_exit_s=0.3) == ("idle", [])
    sessions.transition(project, session, "complete")
    return sessions.get_session(project, session.uid)


def _relink(real: Path, outside: Path) -> None:
    """Replace directory ``real`` by a symlink to ``outside`` (holding what ``real`` held)."""
    shutil.move(str(real), str(outside))
    real.symlink_to(outside)


def test_the_live_runner_never_writes_through_a_symlinked_stage_directory(project, session, movie_source,
                                                                          watched, tmp_path):
    outside = tmp_path / "precious"
    outside.mkdir()
    (Path(project.directory) / "S1").mkdir(exist_ok=True)
    (Path(project.directory) / "S1" / "motion").symlink_to(outside)
    deliver(movie_source, watched, 1)
    sessions.transition(project, session, "start")
    why, errors = run_session(project, session, idle_exit_s=0.3)
    assert list(outside.iterdir()) == []  # nothing written outside the project
    [e] = sessions.exposures(session)
    assert e.stage == "failed" and e.failed_stage == "motion"
    assert f"{project.directory}/S1/motion" in e.error and "symlink" in e.error, e.error


def test_restore_never_writes_through_a_symlinked_stage_directory(project, one_done, tmp_path):
    s = one_done
    sessions.compact(project, s)
    pdir = Path(project.directory)
    outside = tmp_path / "extdir"
    _relink(pdir / "S1" / "extract", outside)
    sessions.start_restore(project, s)
    run_session(project, s)
    assert list(outside.iterdir()) == []
    s = sessions.get_session(project, s.uid)
    [e] = sessions.exposures(s)
    assert s.status == "restoration_failed" and e.failed_stage == "extraction"
    assert f"{pdir}/S1/extract" in e.error and "symlink" in e.error, e.error


def test_a_symlinked_session_directory_is_named_as_such(project, one_done, tmp_path):
    s = one_done
    sessions.compact(project, s)
    pdir = Path(project.directory)
    _relink(pdir / "S1", tmp_path / "outS1")
    for attempt in (lambda: sessions.lane_run.restore(project, s), lambda: run_session(project, s)):
        with pytest.raises(DataError, match=r"S1 is a symlink") as exc:
            attempt()
        assert "another cryodesk process" not in str(exc.value)
    assert sessions.get_session(project, s.uid).status == "compacted"  # nothing was changed
    assert sessions.runner_active(project, s) is False  # and `session show` still works
    assert sessions.describe(project, s, with_exposures=False)["runner_active"] is False


def test_the_compaction_plan_refuses_a_symlinked_stage_directory(project, one_done, tmp_path):
    s = one_done
    pdir = Path(project.directory)
    outside = tmp_path / "ctfdir"
    _relink(pdir / "S1" / "ctf", outside)
    kept = sorted(p.name for p in outside.iterdir())
    assert kept
    with pytest.raises(Refused, match=r"S1/ctf: ctf is a symlink"):
        sessions.compaction_plan(project, s)  # the dry run: nothing counted through the link
    with pytest.raises(Refused, match=r"S1/ctf: ctf is a symlink"):
        sessions.compact(project, s)
    assert sorted(p.name for p in outside.iterdir()) == kept
    assert sessions.get_session(project, s.uid).status == "completed"


def test_a_wildcard_glob_matching_project_files_registers_none_of_them(project, session, tmp_path):
    pdir = Path(project.directory)
    victim = pdir / "S1" / "motion" / "E00001_m_aligned.mrc"
    victim.parent.mkdir(parents=True)
    victim.write_bytes(b"x" * 1024)
    # the pattern's text does not name the project (the wildcard is in a directory component)
    s2 = sessions.create(project, f"{pdir.parent}/*/S1/motion/*.mrc", "t")
    sessions.transition(project, s2, "start")
    why, errors = run_session(project, s2, idle_exit_s=0.5)
    assert sessions.exposures(s2) == []
    assert len(errors) == 1 and str(victim) in errors[0] and "inside the project directory" in errors[0], errors
    # the core refuses it too, whoever calls it; a file outside every project is a movie
    outside = tmp_path / "incoming" / "m.mrc"
    outside.write_bytes(b"y")
    added = sessions.add_exposures(project, sessions.get_session(project, s2.uid),
                                   [(str(victim), 1024), (str(outside), 1)])
    assert [e.movie for e in added] == [str(outside)]
    assert victim.read_bytes() == b"x" * 1024
