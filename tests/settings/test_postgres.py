"""The settings service's writes on PostgreSQL (row locks in one transaction; skipped without a server)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from throwaway import PG_URL, pg_project

from cryodesk.cache import connect_worker, resolve_config
from cryodesk.core import jobs, settings_service

from .conftest import WORKER

pytestmark = pytest.mark.skipif(not PG_URL, reason="set CRYODESK_TEST_PG_URL to test against PostgreSQL")


@pytest.fixture
def pg(tmp_path):
    with pg_project(tmp_path) as p:
        yield p


def test_every_stored_level_on_postgres(pg, tmp_path):
    (tmp_path / "ssd").mkdir()
    connect_worker(WORKER, ssd_path=str(tmp_path / "ssd"))
    job = jobs.create_job(pg, "s_reader")
    settings_service.set_setting("worker", "cache_particles", "false", worker=WORKER)
    settings_service.set_setting("worker", "ssd_quota_mb", "70", worker=WORKER)
    assert settings_service.effective("cache_particles", project=pg, job=job) == (False, "worker")
    settings_service.set_setting("project", "cache_particles", "true", project=pg.uid)
    settings_service.set_setting("job", "cache_particles", "false", project=pg.uid, job=job.uid)
    settings_service.set_setting("job", "delete_intermediate", "false", project=pg.uid, job=job.uid)
    assert settings_service.effective("cache_particles", project=pg, job=job) == (False, "job")
    assert settings_service.effective("delete_intermediate", project=pg, job=job) == (False, "job")
    assert json.loads((Path(pg.directory) / "project.json").read_text())["settings"]["cache_particles"] is True
    assert resolve_config().quota_bytes == 70_000_000
    settings_service.unset_setting("job", "cache_particles", project=pg.uid, job=job.uid)
    assert settings_service.effective("cache_particles", project=pg, job=job) == (True, "project")
