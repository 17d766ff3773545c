"""The settings service on a real database: one precedence, every level written and read where it lives."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cryodesk.base import settings
from cryodesk.base.errors import NotFound, Refused, UsageError
from cryodesk.cache import connect_worker, resolve_config
from cryodesk.core import cleanup, jobs, settings_service
from cryodesk.core.runner import run_job
from cryodesk.db.models import Change, Job, Project

from .conftest import WORKER


def _reader_cache(project, **params) -> bool:
    """What a job of ``project`` decides, run through the real runner (it reads project.json, not the db)."""
    job = run_job(project, jobs.create_job(project, "s_reader", params=params))
    assert job.status == "completed", job.error
    return json.loads((Path(project.directory) / job.uid / "cache.json").read_text())["cache"]


def test_precedence_environment_job_project_worker_user_default(project, tmp_path, monkeypatch):
    ssd = tmp_path / "ssd"
    ssd.mkdir()
    connect_worker(WORKER, ssd_path=str(ssd))
    job = jobs.create_job(project, "s_reader")

    def now():
        value, level = settings_service.effective("cache_particles", project=project, job=job)
        row = next(r for r in settings_service.settings_view(project=project, job=job)["settings"]
                   if r["name"] == "cache_particles")
        assert (row["value"], row["level"]) == (value, level)
        return value, level

    assert now() == (True, "default")
    steps = [("user", False, {}), ("worker", True, {"worker": WORKER}), ("project", False, {"project": project}),
             ("job", True, {"project": project, "job": job.uid})]
    for level, value, target in steps:
        settings_service.set_setting(level, "cache_particles", str(value).lower(), **target)
        assert now() == (value, level)
    monkeypatch.setenv("CRYODESK_CACHE_PARTICLES", "off")
    assert now() == (False, "environment")
    monkeypatch.delenv("CRYODESK_CACHE_PARTICLES")
    # unset from the top: each level below decides again
    for (level, _value, target), (below, expected) in zip(reversed(steps), [("project", False), ("worker", True),
                                                                            ("user", False), ("default", True)]):
        settings_service.unset_setting(level, "cache_particles", **target)
        assert now() == (expected, below)
    assert jobs.get_job(project, job.uid).params["cache_particles"] is None  # the job level is its param


def test_running_jobs_follow_the_setting(project, monkeypatch):
    """The job body decides from project.json, this worker's row, the user file and the environment."""
    connect_worker(WORKER, no_ssd=True)
    assert _reader_cache(project) is True
    settings_service.set_setting("user", "cache_particles", "false")
    assert _reader_cache(project) is False
    settings_service.set_setting("worker", "cache_particles", "true", worker=WORKER)
    assert _reader_cache(project) is True
    settings_service.set_setting("project", "cache_particles", "false", project=project)
    assert _reader_cache(project) is False
    assert _reader_cache(project, cache_particles=True) is True
    monkeypatch.setenv("CRYODESK_CACHE_PARTICLES", "0")
    assert _reader_cache(project, cache_particles=True) is False


def test_project_and_job_writes_keep_manifests_and_publish_events(project):
    pdir = Path(project.directory)
    job = jobs.create_job(project, "s_plain")
    last = Change.select().order_by(Change.id.desc()).first().id
    cleanup.set_project_setting(project, "delete_intermediate", "false")
    assert json.loads((pdir / "project.json").read_text())["settings"]["delete_intermediate"] is False
    assert project.settings["delete_intermediate"] is False  # the caller's object follows
    cleanup.set_job_setting(project, job, "delete_intermediate", True)
    assert Job.get_by_id(job.id).settings == {"delete_intermediate": True}
    kinds = [(c.kind, c.jobs) for c in Change.select().where(Change.id > last).order_by(Change.id)]
    assert kinds == [("project", None), ("updated", [job.number])]
    assert cleanup.effective_setting(project, Job.get_by_id(job.id), "delete_intermediate") is True
    assert cleanup.get_project_setting(project, "delete_intermediate") is False
    cleanup.set_job_setting(project, job, "delete_intermediate", None)
    assert Job.get_by_id(job.id).settings == {}
    assert cleanup.effective_setting(project, Job.get_by_id(job.id), "delete_intermediate") is False


def test_legacy_job_defaults_are_read_and_moved_on_write(project):
    """A project from before one settings module kept cache_particles under settings["job_defaults"]."""
    Project.update(settings={"job_defaults": {"cache_particles": False, "other": 3}}).where(
        Project.id == project.id).execute()
    from cryodesk.core import manifest

    manifest.write_project(Project.get_by_id(project.id))  # and so did its project.json
    assert settings_service.effective("cache_particles", project=project.uid) == (False, "project")
    assert _reader_cache(project) is False
    settings_service.set_setting("project", "cache_particles", "true", project=project.uid)
    stored = Project.get_by_id(project.id).settings
    assert stored == {"cache_particles": True, "job_defaults": {"other": 3}}  # moved to the one place
    assert _reader_cache(project) is True
    settings_service.unset_setting("project", "cache_particles", project=project.uid)
    assert Project.get_by_id(project.id).settings == {"job_defaults": {"other": 3}}
    assert settings_service.effective("cache_particles", project=project.uid) == (True, "default")


def test_job_level_of_a_job_parameter_follows_the_parameter_rules(project):
    job = jobs.create_job(project, "s_reader")
    run_job(project, job)  # completed: its parameters are frozen until it is cleared
    with pytest.raises(Refused, match="cannot change parameters"):
        settings_service.set_setting("job", "cache_particles", "false", project=project, job=job.uid)
    plain = jobs.create_job(project, "s_plain")
    with pytest.raises(UsageError, match="has no parameter 'cache_particles'"):
        settings_service.set_setting("job", "cache_particles", "false", project=project, job=plain.uid)


@pytest.mark.parametrize("level,name,value,message", [
    ("project", "delete_intermediate", "maybe", "setting 'delete_intermediate' (project P1) takes true or false"),
    ("worker", "ssd_quota_mb", "-1", "setting 'ssd_quota_mb' (worker node1) must be at least 0"),
    ("worker", "cache_num_threads", "0", "must be at least 1"),
    ("worker", "ssd_path", "relative/dir", "setting 'ssd_path' must be an absolute path"),
    ("project", "colour", "blue", "unknown project setting 'colour' (settings per project: "),
    ("project", "ssd_path", "/tmp", "setting 'ssd_path' cannot be set per project: it may be set per worker, "
                                    "or by the environment variable CRYODESK_SSD_PATH"),
    ("user", "disable_numba", "1", "it may be set only by the environment variable CRYODESK_DISABLE_NUMBA"),
    ("everywhere", "cache_fsync", "1", "unknown settings level 'everywhere'"),
])
def test_bad_input_is_a_clear_usage_error(project, level, name, value, message):
    connect_worker(WORKER, no_ssd=True)
    with pytest.raises(UsageError) as err:
        settings_service.set_setting(level, name, value, project=project, worker=WORKER)
    assert message in str(err.value)


def test_unknown_worker_and_broken_user_file(project, clean_settings):
    with pytest.raises(NotFound, match="no worker 'elsewhere'"):
        settings_service.set_setting("worker", "cache_fsync", "0", worker="elsewhere")
    clean_settings.parent.mkdir(parents=True)
    clean_settings.write_text('{"cache_fsync": tru')
    for call in (lambda: settings_service.settings_view(), lambda: resolve_config(),
                 lambda: settings_service.set_setting("user", "cache_fsync", "0")):
        with pytest.raises(UsageError, match=f"user settings {clean_settings} are unreadable.*fix or remove"):
            call()
    clean_settings.write_text('{"cache_fsync": "sometimes", "colour": 1, "ssd_path": "/x"}')
    view = settings_service.settings_view()
    row = next(r for r in view["settings"] if r["name"] == "cache_fsync")
    assert row["value"] is None and "takes true or false, got 'sometimes'" in row["error"]
    assert str(clean_settings) in row["error"]
    assert any("unknown setting 'colour'" in p for p in view["problems"])
    assert any("'ssd_path' cannot be set per user" in p for p in view["problems"])


def test_user_file_is_written_atomically_and_only_with_what_was_set(clean_settings):
    settings_service.set_setting("user", "cache_lifetime_days", "7")
    settings_service.set_setting("user", "db_url", "/data/shared.sqlite")
    assert json.loads(clean_settings.read_text()) == {"cache_lifetime_days": 7.0, "db_url": "/data/shared.sqlite"}
    settings_service.unset_setting("user", "db_url")
    assert settings.read_user_settings() == {"cache_lifetime_days": 7.0}
    assert resolve_config(use_db=False).lifetime_days == 7.0
