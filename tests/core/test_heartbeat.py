"""Owners on other hosts: alive while their heartbeat is fresh, dead after HEARTBEAT_TIMEOUT of silence."""

from __future__ import annotations

import datetime as dt

from cryodesk.core import jobs, lifecycle
from cryodesk.db.models import Job, utcnow


def _running_elsewhere(project, beat_age_s: float | None) -> Job:
    job = jobs.create_job(project, "t_source", "W1")
    owner = {**lifecycle.new_owner(), "host": "node-17.cluster", "pid": 999_999, "engine": f"e{job.number:011d}"}
    lifecycle.mark_queued([job], owner)
    jobs.set_status(Job.get_by_id(job.id), "running")
    beat = None if beat_age_s is None else utcnow() - dt.timedelta(seconds=beat_age_s)
    Job.update(heartbeat_at=beat).where(Job.id == job.id).execute()
    return Job.get_by_id(job.id)


def test_recovery_kills_jobs_of_a_silent_remote_owner_only(project):
    fresh = _running_elsewhere(project, 5)
    silent = _running_elsewhere(project, lifecycle.HEARTBEAT_TIMEOUT + 30)
    unknown = _running_elsewhere(project, None)  # an owner that never beat: cannot be told
    recovered = {j.uid for j in lifecycle.recover_interrupted(project)}
    assert recovered == {silent.uid}
    assert Job.get_by_id(silent.id).status == "killed"
    assert Job.get_by_id(fresh.id).status == Job.get_by_id(unknown.id).status == "running"


def test_heartbeat_stamps_only_the_jobs_the_owner_still_owns(project):
    mine = _running_elsewhere(project, 60)
    other = _running_elsewhere(project, 60)
    owner = lifecycle.owner_of(mine)
    assert lifecycle.heartbeat([mine.id, other.id], owner) == 1
    assert (utcnow() - Job.get_by_id(mine.id).heartbeat_at).total_seconds() < 5
    assert (utcnow() - Job.get_by_id(other.id).heartbeat_at).total_seconds() > 50


def test_a_claim_is_not_lost_to_a_concurrent_edit_of_the_jobs_settings(project):
    job = jobs.create_job(project, "t_source", "W1")
    lifecycle.mark_queued([job])  # queued by `cryodesk job queue`: nobody owns it yet
    # a user's edit of a per-job setting between the claimer's read and its write
    Job.update(settings={"delete_intermediate": False}).where(Job.id == job.id).execute()
    first = lifecycle.new_owner()
    lifecycle.engine_alive(first)
    try:
        assert lifecycle.claim(job, first)
        assert not lifecycle.claim(job, {**lifecycle.new_owner(), "engine": "second000000"})  # it is taken
        assert Job.get_by_id(job.id).settings == {"delete_intermediate": False}
    finally:
        lifecycle.engine_alive(first, False)
