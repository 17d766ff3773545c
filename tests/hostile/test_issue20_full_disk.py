"""Issue 20, item 6: metadata commands on a full disk — a clear message, no traceback, nothing half-applied.

Each command runs as the CLI (a forked child) against a project whose disk has
no free byte.  It either works (clear, delete and cleanup free space — see
test_full_disk.py) or says what could not be written, with exit 1; the
database and every manifest agree afterwards, no ``J<n>/`` of a create that
failed is left, and once space is free again the next command leaves them
agreeing too.  (Before: tracebacks, and a database that had committed
what the manifests never got.)
"""

from __future__ import annotations

from mounts import fill, small_tmpfs
from statecheck import disagreements, run_concurrently

from cryodesk.core import jobs, projects, recovery, runner
from cryodesk.db.models import Job

COMMANDS = [
    (["job", "final", "P1", "J1"], False),
    (["job", "set-param", "P1", "J3", "nbytes=9"], False),
    (["job", "create", "P1", "h_source", "-w", "W1"], False),
    (["job", "link", "P1", "J3", "-w", "W2"], False),
    (["job", "mark-complete", "P1", "J4"], False),
    (["workspace", "create", "P1", "--title", "third"], False),
    (["project", "set", "P1", "delete_intermediate=false"], False),
    (["job", "delete", "P1", "J3"], True),
    (["cleanup", "P1", "--killed", "clear", "--yes"], True),
    (["job", "clear", "P1", "J2"], True),
]


def test_metadata_commands_on_a_full_disk(database, tmp_path):
    with small_tmpfs(tmp_path, "4m") as fs:
        p = projects.create_project("Full", fs / "proj")
        projects.create_workspace(p, "main")
        projects.create_workspace(p, "second")
        for n in (1000, 1_000_000):
            runner.run_job(p, jobs.create_job(p, "h_source", "W1", params={"nbytes": n}))
        jobs.create_job(p, "h_source", "W1", params={"nbytes": 5})
        j4 = jobs.create_job(p, "h_source", "W1", params={"nbytes": 5})
        runner.run_job(p, j4)
        jobs.set_status(Job.get_by_id(j4.id), "killed", error="test")
        fill(fs)
        outcomes = []
        for argv, frees in COMMANDS:
            [(code, text)] = run_concurrently(database.database, [[argv]])
            outcomes.append((" ".join(argv), code, text.strip()))
            assert "Traceback" not in text, text
            if frees:
                assert code == 0, text
            else:
                assert code == 1 and "No space left on device" in text, (argv, code, text)
            assert disagreements(p) == [], (argv, text)
        for f in ("filler.bin", "filler2.bin"):
            (fs / f).unlink()
        recovery.recover_project(p)
        assert disagreements(p) == []
        assert [o for o in outcomes if o[1] not in (0, 1)] == []


def test_nothing_is_left_of_a_create_that_failed(database, tmp_path):
    with small_tmpfs(tmp_path, "1m") as fs:
        p = projects.create_project("Full", fs / "proj")
        projects.create_workspace(p, "main")
        fill(fs)
        [(code, text)] = run_concurrently(database.database, [[["job", "create", "P1", "h_source"]]])
        assert code == 1 and "No space left on device" in text and "Traceback" not in text, text
        assert not (fs / "proj" / "J1").exists()
        assert disagreements(p) == []
