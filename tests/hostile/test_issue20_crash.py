"""Issue 20, "Done when": metadata commands SIGKILLed at random points; afterwards DB and manifests agree.

A seeded run (the seed is printed; ``CRYODESK_CRASH_SEED`` repeats one) of
``job final / final --unset / clear / set-param / create / link / unlink /
mark-complete`` and ``cleanup --killed clear``, each in a forked CLI child
(:func:`statecheck.run_killed`) that SIGKILLs itself just before a random one
of its state-changing calls (a rename, unlink, rmdir, mkdir, fsync, or a
database statement).  Then recovery runs (what any next writing command
does first) and the database and every ``job.json`` / ``project.json`` must
agree: final flag, status, params, outputs (which exist), workspaces,
inputs, the job counter, and no job directory the database does not know.
"""

from __future__ import annotations

import os
import random
import time

from statecheck import disagreements, run_killed

from cryodesk.core import jobs, projects, recovery, runner
from cryodesk.db.models import Job

BUDGET_S = 6.0


def _commands():
    return [
        ["job", "final", "P1", "J1"], ["job", "final", "P1", "J1", "--unset"],
        ["job", "clear", "P1", "J2"], ["job", "set-param", "P1", "J3", "nbytes=7"],
        ["job", "create", "P1", "h_source", "-w", "W1"], ["job", "link", "P1", "J3", "-w", "W2"],
        ["job", "unlink", "P1", "J3", "-w", "W2"], ["job", "mark-complete", "P1", "J4"],
        ["cleanup", "P1", "--killed", "clear", "--yes"],
    ]


def _prepare(p, argv) -> None:
    """Make the command's job eligible again (in this process, not killed)."""
    if argv[1] in ("clear",) and Job.get(Job.number == 2).status != "completed":
        j = Job.get(Job.number == 2)
        if j.status == "building":
            runner.run_job(p, j)
    if argv[1] == "mark-complete" or argv[0] == "cleanup":
        j = Job.get(Job.number == 4)
        if j.status == "building":
            runner.run_job(p, j)
            j = Job.get(Job.number == 4)
        if j.status != "killed":
            jobs.set_status(j, "killed", error="test")


def test_metadata_commands_killed_at_random_points_leave_db_and_manifests_agreeing(database, tmp_path):
    seed = int(os.environ.get("CRYODESK_CRASH_SEED") or time.time_ns() % 100000)
    rng = random.Random(seed)
    p = projects.create_project("Crash", tmp_path / "proj")
    projects.create_workspace(p, "main")
    projects.create_workspace(p, "second")
    for _ in range(2):
        runner.run_job(p, jobs.create_job(p, "h_source", "W1", params={"nbytes": 50}))
    jobs.create_job(p, "h_source", "W1", params={"nbytes": 5})
    runner.run_job(p, jobs.create_job(p, "h_source", "W1", params={"nbytes": 5}))
    calls = {}
    for argv in _commands():  # how many calls each makes (the kill points to choose from)
        _prepare(p, argv)
        calls[argv[1] + argv[-1]] = max(1, run_killed(database.database, argv, 0)[1])
    recovery.recover_project(p, min_age_s=0)
    assert disagreements(p) == []
    tried = before = after = finished = 0
    problems = []
    start = time.monotonic()
    while time.monotonic() - start < BUDGET_S:
        argv = rng.choice(_commands())
        _prepare(p, argv)
        k = rng.randint(1, calls[argv[1] + argv[-1]])
        how, _ = run_killed(database.database, argv, k)
        tried += 1
        finished += how != "killed"
        if disagreements(p):
            before += 1
        recovery.recover_project(p, min_age_s=0)
        now = disagreements(p)
        if now:
            after += 1
            problems.append((" ".join(argv), k, now))
    print(f"crash test seed={seed}: {tried} cases ({tried - finished} killed, {finished} ran to the end); "
          f"disagreeing right after the kill: {before}; after recovery: {after}")
    assert tried >= 10
    assert not problems, f"seed {seed}: {problems[:3]}"
