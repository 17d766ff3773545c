"""Settings tests: each test gets its own user config directory and no ``CRYODESK_*`` settings in
its environment, and job type ``s_reader`` (declares ``cache_particles``; records what ``stage`` would do)."""

from __future__ import annotations

import json

import pytest

from cryodesk.base import settings
from cryodesk.cache import CACHE_PARAM, cache_enabled
from cryodesk.core import registry
from cryodesk.core.registry import JobType, OutputGroup

WORKER = "node1"


def _run_reader(ctx):
    out = ctx.job_dir / "cache.json"
    out.write_text(json.dumps({"cache": cache_enabled(ctx)}))
    ctx.add_output("result", out, kind="blob")


registry.register(JobType("s_reader", "Settings test reader", "classification", params=(CACHE_PARAM,),
                          outputs=(OutputGroup("result", "volume"),), run=_run_reader))
registry.register(JobType("s_plain", "Settings test job without particles", "utilities"))


@pytest.fixture(autouse=True)
def clean_settings(tmp_path, monkeypatch):
    """An empty user config directory; this process is worker ``node1``; no other setting in the environment."""
    for s in settings.SETTINGS.values():
        if s.env and s.env != "CRYODESK_DB":
            monkeypatch.delenv(s.env, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("CRYODESK_WORKER", WORKER)
    assert settings.user_settings_path() == tmp_path / "config" / "cryodesk" / "settings.json"
    return settings.user_settings_path()
