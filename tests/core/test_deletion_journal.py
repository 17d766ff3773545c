"""Hostile state for the deletion service: crafted and stale journals, symlinked state, a full disk.

A journal left in ``.cryodesk/journal/`` is replayed by the next write to the
project.  Whatever it says, nothing may be deleted that the rules protect:
an invalid item is refused with a clear message and every file stays.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from throwaway import disk_files

from cryodesk.base.errors import DataError
from cryodesk.core import actions, deletion, finals, runner
from cryodesk.core.deletion import trash
from cryodesk.db.models import Job, OutputFile

from .helpers import build_dag


def files_of(root: Path) -> dict[str, int]:
    return disk_files(root, skip_state=True)


@pytest.fixture
def ran(project):
    """J1 (source) -> J2 (step), both completed; J2 final (so J1 is an ancestor of final); J3 source."""
    js = build_dag(project, [[], [0], []])
    for j in js:
        runner.run_job(project, j)
    assert finals.set_final(project, [js[1]]).ok
    return project


def plant(project, items, plan_id="0123456789ab", project_uid=None) -> Path:
    jdir = Path(project.directory) / ".cryodesk" / "journal"
    jdir.mkdir(parents=True, exist_ok=True)
    doc = {"id": plan_id, "project": project_uid or project.uid, "items": items}
    path = jdir / f"{plan_id if '/' not in plan_id else 'evil'}.json"
    path.write_text(json.dumps(doc))
    return path


def item(job, action, paths, **versions):
    return {"job": job, "action": action, "paths": paths, "bytes": 0, "reason": "crafted", "versions": versions}


def replay(project):
    before = files_of(Path(project.directory))
    results = deletion.recover(project)
    assert not deletion.pending(project)
    return before, results, files_of(Path(project.directory))


CRAFTED = [
    ("unknown action", item("J3", "shred", ["J3/data.bin"]), "unknown action 'shred'"),
    ("discard of a final job's outputs", item("J2", "discard", ["J2/step.bin"]), "final result"),
    ("clear of a final job", item("J2", "clear", ["J2/step.bin"]), "final result"),
    ("delete of an ancestor of final", item("J1", "delete", ["J1"]), "ancestor of a final result"),
    ("job uid ..", item("..", "clear", ["../outside.txt"]), "is not a job uid"),
    ("path escaping with ..", item("J3", "clear", ["J3/../J2/step.bin"]), "not a plain relative path"),
    ("absolute path", item("J3", "clear", ["/etc/hostname"]), "not a plain relative path"),
    ("another job's path", item("J3", "clear", ["J2/step.bin"]), "outside the job directory J3"),
    ("the project itself", item("J3", "delete", ["."]), "names only the job directory"),
    ("a job's record", item("J3", "clear", ["J3/job.json"]), "its record"),
    ("delete naming a file", item("J3", "delete", ["J3/data.bin"]), "names only the job directory"),
    ("discard of a completed job", item("J3", "discard", ["J3/data.bin"]), "only the partial output"),
    ("versions of a kept output", item("J3", "clear_versions", ["J3/data.bin"], groups={"particles": [7]}),
     "belongs to a version that is kept"),
]


@pytest.mark.parametrize("name,bad,message", CRAFTED, ids=[c[0] for c in CRAFTED])
def test_a_crafted_journal_item_is_refused_and_every_file_stays(ran, tmp_path, name, bad, message):
    outside = Path(ran.directory).parent / "outside.txt"
    outside.write_text("not cryodesk's")
    rows = {j.uid: (j.status, j.is_final) for j in Job.select()}
    plant(ran, [bad])
    before, results, after = replay(ran)
    assert after == before, f"{name}: files changed"
    assert outside.read_text() == "not cryodesk's"
    assert {j.uid: (j.status, j.is_final) for j in Job.select()} == rows
    (r,) = [r for r in results if r.job == bad["job"]]
    assert not r.ok and message in r.message, r.message


def test_a_symlink_inside_a_job_directory_is_never_followed(ran, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "precious.mrc").write_bytes(b"p" * 100)
    os.symlink(elsewhere, Path(ran.directory) / "J3" / "link")
    plant(ran, [item("J3", "clear", ["J3/link/precious.mrc"])])
    before, results, after = replay(ran)
    assert after == before and (elsewhere / "precious.mrc").read_bytes() == b"p" * 100
    assert "resolves outside" in results[0].message
    # clearing the job moves the link itself, never what it points to
    assert actions.clear_jobs(ran, [Job.get(Job.number == 3)]).ok
    assert (elsewhere / "precious.mrc").read_bytes() == b"p" * 100


@pytest.mark.parametrize("doc,why", [
    ("{not json", "unreadable"),
    (json.dumps({"id": "../../../x", "project": "P1", "items": []}), "malformed"),
    (json.dumps({"id": "0123456789ab", "project": "P7", "items": []}), "not for P1"),
    (json.dumps({"id": "0123456789ab", "project": "P1", "items": "J3"}), "no list of items"),
    (json.dumps({"id": "0123456789ab", "project": "P1", "items": [{"job": "J3", "action": "clear",
                                                                    "paths": "J3/data.bin"}]}), "not a list"),
])
def test_a_malformed_journal_is_set_aside_and_reported(ran, doc, why):
    jdir = Path(ran.directory) / ".cryodesk" / "journal"
    jdir.mkdir(parents=True, exist_ok=True)
    (jdir / "0123456789ab.json").write_text(doc)
    before, results, after = replay(ran)
    assert after == before
    assert len(results) == 1 and not results[0].ok and why in results[0].message, results[0].message
    assert (jdir / "rejected" / "0123456789ab.json").read_text() == doc
    assert why in (jdir / "rejected" / "0123456789ab.why").read_text()


def test_a_stale_journal_item_is_skipped_and_what_it_moved_is_put_back(ran):
    """A crash after J3's files went to the trash; before the restart someone marked J3 final."""
    pdir = Path(ran.directory)
    plant(ran, [item("J3", "clear", ["J3/data.bin", "J3/job.log"])])
    tr = pdir / ".cryodesk" / "trash" / "0123456789ab" / "J3"
    tr.mkdir(parents=True)
    os.rename(pdir / "J3" / "data.bin", tr / "data.bin")
    # (mark final checks only the status; the half-moved file is the crash's doing)
    assert finals.set_final(ran, [Job.get(Job.number == 3)]).ok
    _, results, after = replay(ran)
    assert "final result" in results[0].message and not results[0].ok
    assert after["J3/data.bin"] > 0 and OutputFile.select().join(Job).where(Job.number == 3).count() == 1


def test_a_symlinked_state_directory_is_refused(ran, tmp_path):
    pdir = Path(ran.directory)
    evil = tmp_path / "evil-state"
    (evil / "trash").mkdir(parents=True)
    (evil / "trash" / "keep.txt").write_text("x")
    if (pdir / ".cryodesk").exists():
        os.rename(pdir / ".cryodesk", tmp_path / "old-state")
    os.symlink(evil, pdir / ".cryodesk")
    before = files_of(pdir)
    with pytest.raises(DataError, match="symlink"):
        actions.clear_jobs(ran, [Job.get(Job.number == 3)])
    assert files_of(pdir) == before and (evil / "trash" / "keep.txt").exists()


def test_the_trash_is_emptied_in_a_background_process(ran, monkeypatch):
    monkeypatch.setattr(trash, "SYNC", False)
    pdir = Path(ran.directory)
    t0 = time.monotonic()
    result = actions.delete_jobs(ran, [Job.get(Job.number == 3)])
    assert result.ok and not (pdir / "J3").exists()
    assert trash.STARTED, "no emptier process was started"
    proc = trash.STARTED[-1]
    assert isinstance(proc, subprocess.Popen)
    deletion.wait_for_emptiers()
    assert not any((pdir / ".cryodesk" / "trash").iterdir())
    assert time.monotonic() - t0 < 30


def test_a_link_planted_in_the_trash_is_removed_not_followed(ran, tmp_path):
    pdir = Path(ran.directory)
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "data").write_text("mine")
    (pdir / ".cryodesk" / "trash").mkdir(parents=True, exist_ok=True)
    os.symlink(victim, pdir / ".cryodesk" / "trash" / "abcdef012345.gc")
    assert deletion.empty_now(pdir) == []
    assert (victim / "data").read_text() == "mine"
    assert not os.path.lexists(pdir / ".cryodesk" / "trash" / "abcdef012345.gc")


def test_a_plan_for_another_project_is_refused(ran):
    plan = actions.plan_clear(ran, [Job.get(Job.number == 3)])
    plan.plan.project = "P9"
    with pytest.raises(DataError, match="for P9"):
        actions.run_plan(ran, plan)
    assert (Path(ran.directory) / "J3" / "data.bin").exists()


def test_a_full_disk_without_a_reserve_stops_before_anything_is_deleted(project, tmp_path):
    """The project on a 1 MB tmpfs, filled, its reserve gone: the journal cannot be written, so nothing is removed.

    (With its reserve a full disk is no obstacle: tests/hostile/test_full_disk.py.)
    """
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    try:
        from cryodesk.core import jobs, projects

        p = projects.create_project("Small", mnt / "proj")
        projects.create_workspace(p, "main")
        job = jobs.create_job(p, "t_source", "W1", params={"nbytes": 2000})
        runner.run_job(p, job)
        # a project made before the reserve existed (or whose reserve is in use): no room for a journal
        (mnt / "proj" / ".cryodesk" / "reserve").unlink()
        fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while os.write(fd, b"f" * 4096):
                pass
        except OSError:
            pass  # full
        finally:
            os.close(fd)
        before = files_of(mnt / "proj")
        with pytest.raises(DataError) as err:
            actions.clear_jobs(p, [Job.get_by_id(job.id)])
        # a clear message naming the place and the cause, never a traceback; nothing gone
        assert "No space left on device" in str(err.value) and "nothing was deleted" in str(err.value)
    finally:
        after = files_of(mnt / "proj") if (mnt / "proj").exists() else None
        subprocess.run(["umount", str(mnt)], check=False)
    assert after == before
