"""Issue 12, item 15: leftovers after a kill are collected by the next command that writes to the project.

Stray ``.job.json.*.tmp`` / ``.results.json.*.tmp`` / a restack's ``.batch_000.mrc.*.tmp`` / a copy's
``.*.cryodesk-part``, and jobs left "running" after their process was SIGKILLed.  Nothing that is not
cryodesk's own temp file is ever removed, and no link is followed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from cryodesk import db as dbmod
from cryodesk.base.fsio import du_size
from cryodesk.core import recovery

from .helpers import run_now

REPO = Path(__file__).parents[2]


def _age(path: Path, seconds: float = 120) -> None:
    t = time.time() - seconds
    os.utime(path, (t, t), follow_symlinks=False)


def test_only_cryodesk_temp_files_are_collected_by_the_next_write(cli, tmp_path):
    assert cli("job", "create", "P1", "c_source", "--param", "nbytes=300")[0] == 0
    run_now(tmp_path, "J1")  # not `job run` in-process: it starts a QCoreApplication
    pdir, j1 = tmp_path / "p", tmp_path / "p" / "J1"
    (j1 / "sub").mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("not cryodesk's")
    ours = [j1 / ".job.json.deadbeef.tmp", j1 / ".results.json.0123abcd.tmp",
            j1 / "sub" / ".batch_000.mrc.89abcdef.tmp", j1 / ".stack.mrc.cryodesk-part",
            pdir / ".project.json.cccccccc.tmp"]
    theirs = [j1 / "notes.tmp", j1 / ".hidden.tmp", j1 / ".a.b.tmp", j1 / ".job.json.DEADBEEF.tmp"]
    for p in ours + theirs:
        p.write_bytes(b"t" * 100)
        _age(p)
    link = j1 / ".link.json.aaaaaaaa.tmp"
    link.symlink_to(outside)
    _age(link)
    (j1 / ".dir.json.bbbbbbbb.tmp").mkdir()
    fresh = j1 / ".job.json.11111111.tmp"  # may be another process's write in progress: left for later
    fresh.write_bytes(b"f" * 10)
    assert cli("job", "list", "P1")[0] == 0  # a read never deletes
    assert all(p.exists() for p in ours)
    # every job directory was walked a moment ago (by `job create`), and nothing says a dead process
    # wrote in J1: a write within the hour walks no job directory (only the project's own)
    assert cli("job", "create", "P1", "c_source")[0] == 0
    assert all(p.exists() for p in ours[:-1]) and not os.path.lexists(ours[-1])
    ours[-1].write_bytes(b"t" * 100)
    _age(ours[-1])
    base, name = recovery.scan_stamp(pdir)
    _age(base / recovery.SCAN_STAMP / name, recovery.TEMP_SCAN_INTERVAL_S + 60)  # an hour later
    code, out, err = cli("job", "final", "P1", "J1")  # the next command that writes
    assert code == 0, err
    assert "removed 5 unfinished write(s)" in err
    assert not any(os.path.lexists(p) for p in ours)
    assert all(p.exists() for p in theirs) and link.is_symlink() and outside.read_text() == "not cryodesk's"
    assert (j1 / ".dir.json.bbbbbbbb.tmp").is_dir() and fresh.exists()
    shown = json.loads(cli("job", "show", "P1", "J1", "--json")[1])
    assert shown["size_bytes"] == du_size(j1)  # measured again without the debris
    assert shown["is_final"]  # a final job's debris goes too; its data never


def test_between_full_walks_only_where_a_dead_process_wrote(cli, tmp_path):
    """A dead process's pending record names J1: J1's debris goes at the next write, J2's waits for the
    next full walk (an hour after the last); a stamp that is a link is not trusted (a full walk)."""
    for _ in range(2):
        assert cli("job", "create", "P1", "c_source", "--param", "nbytes=300")[0] == 0
    pdir = tmp_path / "p"
    debris = {uid: pdir / uid / ".job.json.deadbeef.tmp" for uid in ("J1", "J2")}
    for p in debris.values():
        p.write_bytes(b"t" * 10)
        _age(p)
    dead = subprocess.Popen(["true"])
    dead.wait()
    pending = pdir / ".cryodesk" / "pending"
    pending.mkdir(parents=True, exist_ok=True)
    (pending / "dead.json").write_text(json.dumps({"owner": {"host": socket.gethostname(), "pid": dead.pid},
                                                   "database": None, "jobs": ["J1"], "final": []}))
    code, _out, err = cli("job", "set-param", "P1", "J2", "nbytes=400")
    assert code == 0, err
    assert not debris["J1"].exists() and debris["J2"].exists()
    assert not (pending / "dead.json").exists()
    assert not os.path.lexists(pdir / ".cryodesk" / recovery.SCAN_STAMP)  # nothing of it in the project
    base, name = recovery.scan_stamp(pdir)
    stamp = base / recovery.SCAN_STAMP / name
    stamp.unlink()
    outside = tmp_path / "outside"
    outside.write_text("x")
    stamp.symlink_to(outside)  # planted: never trusted, never written through
    code, _out, err = cli("job", "set-param", "P1", "J2", "nbytes=500")
    assert code == 0, err
    assert not debris["J2"].exists()
    assert stamp.is_symlink() and outside.read_text() == "x"


def _wait(predicate, timeout=60.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def _status(db_path: Path, uid: str) -> str | None:
    import sqlite3

    with sqlite3.connect(db_path) as con:
        row = con.execute("SELECT status FROM job WHERE number = ?", (int(uid[1:]),)).fetchone()
    return row[0] if row else None


def test_a_sigkilled_run_is_marked_killed_and_its_leftovers_go(cli, tmp_path):
    """`job run` killed with SIGKILL: the job stays "running" until the next command (here `job clear`)."""
    db_path = tmp_path / "cli.sqlite"
    assert cli("job", "create", "P1", "external", "--param", "command=sleep 3")[0] == 0
    proc = subprocess.Popen([sys.executable, "-m", "cryodesk.cli.main", "--db", str(db_path), "job", "run", "P1",
                             "J1"], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait(lambda: _status(db_path, "J1") == "running"), "the job never started"
        j1 = tmp_path / "p" / "J1"
        (j1 / ".results.json.feedf00d.tmp").write_bytes(b"{}")  # as if killed while writing its results
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert _status(db_path, "J1") == "running"  # nobody has noticed yet
    code, out, err = cli("job", "clear", "P1", "J1")
    assert code == 0, err
    assert "J1's process is gone: marked killed" in err
    # just made, but its process is known dead (the kill may also catch the run writing its job.json,
    # right after the database said "running": then that temporary file goes too)
    assert re.search(r"removed [12] unfinished write\(s\)", err) and "J1/.results.json.feedf00d.tmp" in err, err
    assert _status(db_path, "J1") == "building"
    assert not (tmp_path / "p" / "J1" / ".results.json.feedf00d.tmp").exists()


def test_a_direct_run_is_owned_by_its_process(project):
    """A job run without an engine (the demo, a script) is not taken for a dead one by another process."""
    import threading

    from cryodesk.core import jobs, lifecycle, runner
    from cryodesk.db.models import Job

    job = jobs.create_job(project, "c_iter", "W1", params={"iterations": "3"})
    seen = {}
    go = threading.Event()

    def progress(fraction, message):
        if "status" not in seen:
            with dbmod.db.connection_context():
                seen["status"] = Job.get_by_id(job.id).status
                seen["recovered"] = [j.uid for j in lifecycle.recover_interrupted(project)]
            go.set()

    done = runner.run_job(project, job, progress=progress)
    assert go.is_set() and seen == {"status": "running", "recovered": []}
    assert done.status == "completed" and done.owner_engine is None
