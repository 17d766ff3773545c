"""The SSD cache's effective configuration is the settings, level by level."""

from __future__ import annotations

from cryodesk.cache import connect_worker, resolve_config
from cryodesk.cache.config import MB
from cryodesk.core import settings_service

from .conftest import WORKER


def test_every_field_follows_its_setting(database, tmp_path, monkeypatch):
    ssd = tmp_path / "ssd"
    ssd.mkdir()
    cfg = resolve_config()
    assert (cfg.worker, cfg.ssd_path, cfg.usable, cfg.source) == (WORKER, None, False, "default")
    assert (cfg.threads, cfg.reserve_bytes, cfg.fsync, cfg.space_wait_s) == (2, 0, True, 600.0)  # no reserve: the guide
    connect_worker(ssd_path=str(ssd), quota_mb=300, settings={"cache_num_threads": 3})
    settings_service.set_setting("user", "cache_num_threads", "5")  # the worker's 3 wins
    settings_service.set_setting("user", "cache_fsync", "no")
    settings_service.set_setting("worker", "cache_subset_threshold", "0.25")
    cfg = resolve_config()
    assert cfg.usable and cfg.ssd_path == ssd and cfg.quota_bytes == 300 * MB
    assert (cfg.threads, cfg.fsync, cfg.subset_threshold) == (3, False, 0.25)
    assert cfg.source == "worker, user"
    assert cfg.sources["fsync"] == "user" and cfg.sources["threads"] == "worker"
    monkeypatch.setenv("CRYODESK_CACHE_NUM_THREADS", "1")
    monkeypatch.setenv("CRYODESK_SSD_QUOTA_MB", "50")
    cfg = resolve_config()
    assert (cfg.threads, cfg.quota_bytes, cfg.source) == (1, 50 * MB, "environment, worker, user")


def test_environment_ssd_path_re_enables_a_nossd_worker(database, tmp_path, monkeypatch):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    connect_worker(no_ssd=True)
    assert not resolve_config().usable
    monkeypatch.setenv("CRYODESK_SSD_PATH", str(scratch))
    cfg = resolve_config()
    assert cfg.usable and cfg.ssd_path == scratch and cfg.sources["ssd_path"] == "environment"
    monkeypatch.delenv("CRYODESK_SSD_PATH")
    settings_service.set_setting("worker", "ssd_path", str(scratch))  # a stored path does not: no_ssd still holds
    assert not resolve_config().usable
    settings_service.set_setting("worker", "no_ssd", "false")
    assert resolve_config().usable


def test_no_database_still_gets_environment_and_user(tmp_path, monkeypatch):
    monkeypatch.setenv("CRYODESK_SSD_PATH", str(tmp_path))
    settings_service.set_setting("user", "cache_lifetime_days", "3")
    cfg = resolve_config("elsewhere", use_db=False)
    assert cfg.ssd_path == tmp_path and cfg.lifetime_days == 3 and cfg.worker == "elsewhere"
