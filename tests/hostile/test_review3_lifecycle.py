"""Review 3, project lifecycle against a hostile user: cryodesk's own lock files of the wrong kind.

What a user saw before the fix (SQLite and PostgreSQL alike):

* ``cryodesk project attach DIR`` where ``DIR/.cryodesk`` is a plain file: a ``FileExistsError``
  traceback (the lock of ``file_lock`` made its directory with ``mkdir(exist_ok=True)``);
* ``cryodesk project move P1 NEW`` where ``.cryodesk/lock`` is a directory: an
  ``IsADirectoryError`` traceback (other commands taking that lock said it in a sentence).

Now each is one line naming the path and what is wrong, exit code 1, and nothing changed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from throwaway import PG_URL

from cryodesk import db as dbmod
from cryodesk.base.errors import DataError
from cryodesk.base.fsio import file_lock
from cryodesk.core import jobs, projects, runner
from cryodesk.db.migrations import upgrade
from cryodesk.db.models import ALL_MODELS, Project

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", pytest.param("pg", marks=pytest.mark.skipif(not PG_URL,
                                                                             reason="set CRYODESK_TEST_PG_URL"))])
def built(request, tmp_path):
    """``(database URL, project directory)``: P1 with one completed job, in SQLite or PostgreSQL."""
    url = str(tmp_path / "lc.sqlite") if request.param == "sqlite" else os.environ["CRYODESK_TEST_PG_URL"]
    database = dbmod.make_database(url)
    dbmod.db.initialize(database)
    with database.connection_context():
        if request.param == "pg":
            database.drop_tables(ALL_MODELS, cascade=True)
        upgrade(database)
        p = projects.create_project("Lifecycle", tmp_path / "proj")
        projects.create_workspace(p, "main")
        j = jobs.create_job(p, "h_source", "W1", params={"nbytes": 10})
        assert runner.run_job(p, j).status == "completed"
        pdir = Path(p.directory)
    dbmod.close_database()
    yield url, pdir
    dbmod.close_database()


def _cli(url: str, *args) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{REPO / 'tests'}"}
    code = ("import sys; sys.path[:0] = [sys.argv.pop(1)]; import hostile.conftest; "
            "from cryodesk.cli.main import main; sys.exit(main(sys.argv[1:]))")
    return subprocess.run([sys.executable, "-c", code, str(REPO / "tests"), "--db", url, *args],
                          capture_output=True, text=True, timeout=120, env=env)


def _one_clear_line(run: subprocess.CompletedProcess, path: Path, what: str) -> None:
    assert run.returncode == 1, (run.stdout, run.stderr)
    assert "Traceback" not in run.stderr and "Error:" not in run.stderr, run.stderr
    assert str(path) in run.stderr and what in run.stderr, run.stderr


def _rows(url: str) -> list[tuple[str, str]]:
    database = dbmod.make_database(url)
    dbmod.db.initialize(database)
    try:
        with database.connection_context():
            return [(p.uid, p.directory) for p in Project.select()]
    finally:
        dbmod.close_database()


def test_attach_with_a_state_directory_that_is_a_file(built):
    url, pdir = built
    run = _cli(url, "project", "detach", "P1")
    assert run.returncode == 0, run.stderr
    state = pdir / ".cryodesk"
    for p in sorted(state.rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    state.rmdir()
    state.write_text("a file where cryodesk keeps its state")
    run = _cli(url, "project", "attach", str(pdir))
    _one_clear_line(run, state, "not a directory")
    assert _rows(url) == []
    assert state.read_text() == "a file where cryodesk keeps its state"


def test_move_with_a_project_lock_that_is_a_directory(built, tmp_path):
    url, pdir = built
    lock = pdir / ".cryodesk" / "lock"
    if lock.exists():
        lock.unlink()
    lock.mkdir(parents=True)
    dest = tmp_path / "moved"
    run = _cli(url, "project", "move", "P1", str(dest))
    _one_clear_line(run, lock, "not a regular file")
    assert not dest.exists() and (pdir / "J1").is_dir()
    assert _rows(url) == [("P1", str(pdir))]


@pytest.mark.parametrize("kind", ["file", "dir", "fifo"])
def test_file_lock_names_what_is_wrong(tmp_path, kind):
    state = tmp_path / "state"
    if kind == "file":
        state.write_text("x")
        where, lock, what = state, state / "lock", "not a directory"
    else:
        state.mkdir()
        lock = state / "lock"
        lock.mkdir() if kind == "dir" else os.mkfifo(lock)
        where, what = lock, "not a regular file"
    with pytest.raises(DataError) as err:
        with file_lock(lock, "the test", timeout=0.1):
            pass
    assert str(where) in str(err.value) and what in str(err.value) and "the test" in str(err.value)


# -- a cleanup whose project was moved by another process after the plan was made ------------------------
#
# Before: "project directory /old/place is missing: is its disk mounted? (nothing was changed)" — the
# cleanup and the deletion service used the directory of the row the caller read before the move (the
# GUI's preview, the CLI's plan).  Every item is re-checked when it applies, so the cleanup now runs
# where the project is (the row as committed), and never recreates the old place.


def test_a_cleanup_planned_before_a_move_runs_where_the_project_is_now(built, tmp_path):
    from cryodesk.core import cleanup, project_move
    from cryodesk.db.models import Job

    url, pdir = built
    database = dbmod.make_database(url)
    dbmod.db.initialize(database)
    try:
        with database.connection_context():
            p = projects.get_project("P1")
            j = jobs.create_job(p, "h_source", "W1", params={"nbytes": 20})
            runner.run_job(p, j)
            jobs.set_status(Job.get_by_id(j.id), "killed", error="test")
            kept = sorted(str(q.relative_to(pdir)) for q in (pdir / "J1").rglob("*"))
            stale = projects.get_project("P1")
            plan = cleanup.plan_cleanup(stale, cleanup.CleanupOptions(killed="clear"))
            assert [e.uid for e in plan.entries] == ["J2"]
            dest = tmp_path / "moved"
            project_move.move_project(projects.get_project("P1"), dest)  # another process, in effect
            result = cleanup.execute_cleanup(stale, plan)
            assert result.ok, result.to_dict()
            assert not pdir.exists()  # the old place is never made again
            assert sorted(q.name for q in (dest / "J2").iterdir()) == ["job.json"]
            assert sorted(str(q.relative_to(dest)) for q in (dest / "J1").rglob("*")) == kept
    finally:
        dbmod.close_database()
