"""Jobs through the runner: identical results with caching on and off, project defaults,
the cache_particles job, and the CLI (worker connect, cache status/clear/warm/estimate, set-default)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from cryodesk.cache import CACHE_PARAM, Cache, stage
from cryodesk.cache.config import resolve_config
from cryodesk.cli.main import main as cli
from cryodesk.core import registry
from cryodesk.core.jobs import InputSpec, create_job
from cryodesk.core.registry import InputSlot, JobType, OutputGroup
from cryodesk.core.runner import run_job
from cryodesk.io.cs import read_cs, write_cs

from .conftest import config


def _run_reader(ctx):
    """A stand-in for classification: reads every particle, several times, in random order."""
    with stage(ctx, ctx.input("particles"), cache_on=ctx.params.get("cache_particles")) as st:
        rng = np.random.default_rng(0)
        paths, idx = st.particle_locations()
        n = len(paths)
        acc = None
        for _ in range(3):
            for r in rng.permutation(n).tolist():
                img = st.read_particles([r])[0].astype(np.float64)
                acc = img if acc is None else acc + img
        out = ctx.job_dir / "sum.npy"
        np.save(out, acc)
        ctx.results["cache"] = st.stats()
        ctx.results["read_from"] = sorted({str(p) for p in paths})
    ctx.add_output("result", out, kind="blob")


registry.register(JobType("t_cache_reader", "Test particle reader", "classification", params=(CACHE_PARAM,),
                          inputs=(InputSlot("particles", "particle"),),
                          outputs=(OutputGroup("result", "volume"),), run=_run_reader))


@pytest.fixture
def project(tmp_path, monkeypatch, realdata_dir):
    from cryodesk import db as dbmod
    from cryodesk.core import projects

    url = str(tmp_path / "db.sqlite")
    monkeypatch.setenv("CRYODESK_DB", url)
    dbmod.open_database(url)
    with dbmod.db.connection_context():
        p = projects.create_project("cache", tmp_path / "proj")
        projects.create_workspace(p, "main")
        # a particle set with a subset of the 7 real particles, imported through the real job
        src = tmp_path / "raw"
        src.mkdir()
        shutil.copy(realdata_dir / "empiar_10076_7.mrc", src)
        data = read_cs(realdata_dir / "empiar_10076_7.cs")
        write_cs(src / "sub.cs", data[[5, 1, 3]])
        write_cs(src / "all.cs", data)
        jobs = {}
        for name in ("sub", "all"):
            j = create_job(p, "import_particles", params={"particle_meta_path": str(src / f"{name}.cs")})
            assert run_job(p, j).status == "completed"
            jobs[name] = j.uid
    # no connection context held across the test: the in-process CLI re-opens the database
    yield p, jobs
    dbmod.close_database()


def _reader(p, parent, **params):
    j = create_job(p, "t_cache_reader", inputs=[InputSpec("particles", parent)], params=params)
    j = run_job(p, j)
    assert j.status == "completed", j.error
    res = json.loads((Path(p.directory) / j.uid / "results.json").read_text())
    digest = hashlib.sha1((Path(p.directory) / j.uid / "sum.npy").read_bytes()).hexdigest()
    return res, digest


@pytest.mark.parametrize("which", ["sub", "all"])
def test_identical_results_with_caching_on_and_off(project, ssd, monkeypatch, which):
    p, jobs = project
    monkeypatch.setenv("CRYODESK_SSD_PATH", str(ssd))
    monkeypatch.setenv("CRYODESK_SSD_RESERVE_MB", "0")
    off, d_off = _reader(p, jobs[which], cache_particles=False)
    on, d_on = _reader(p, jobs[which])  # None: project default, else on
    again, d_again = _reader(p, jobs[which], cache_particles=True)
    assert d_off == d_on == d_again
    assert off["cache"]["mode"] == "off" and all(not r.startswith(str(ssd)) for r in off["read_from"])
    assert on["cache"]["mode"] == ("subset" if which == "sub" else "files")
    assert all(r.startswith(str(ssd)) for r in on["read_from"])
    assert on["cache"]["bytes_copied"] > 0 and again["cache"]["bytes_copied"] == 0


def test_project_default_and_cache_particles_job(project, ssd, monkeypatch, capsys):
    p, jobs = project
    monkeypatch.setenv("CRYODESK_SSD_PATH", str(ssd))
    monkeypatch.setenv("CRYODESK_SSD_RESERVE_MB", "0")
    assert cli(["project", "set-default", p.uid, "cache_particles=false"]) == 0
    res, _ = _reader(p, jobs["all"])
    assert res["cache"]["mode"] == "off"
    res, _ = _reader(p, jobs["all"], cache_particles=True)  # the job's own value wins
    assert res["cache"]["mode"] == "files"
    assert cli(["project", "set-default", p.uid, "--unset", "cache_particles"]) == 0
    assert cli(["project", "set-default", p.uid, "cache_particles=perhaps"]) == 2
    Cache(config(ssd)).clear()
    j = run_job(p, create_job(p, "cache_particles", inputs=[InputSpec("particles", jobs["sub"])]))
    assert j.status == "completed", j.error
    res, _ = _reader(p, jobs["sub"])
    assert res["cache"]["mode"] == "subset" and res["cache"]["bytes_copied"] == 0  # pre-staged


def test_cli_worker_and_cache_commands(project, ssd, tmp_path, monkeypatch, capsys):
    p, jobs = project
    monkeypatch.delenv("CRYODESK_SSD_PATH", raising=False)
    assert cli(["worker", "connect", "--worker", "node1", "--ssdpath", "relative"]) == 2
    assert cli(["worker", "connect", "--worker", "node1", "--ssdpath", str(ssd), "--ssdquota", "50",
                "--ssdreserve", "0"]) == 0
    assert cli(["worker", "connect", "--worker", "node1", "--ssdpath", str(ssd)]) == 2  # needs --update
    assert cli(["worker", "connect", "--worker", "node1", "--update", "--ssdquota", "40",
                "--cache-threads", "3", "--lifetime-days", "7"]) == 0
    assert cli(["worker", "connect", "--worker", "node1", "--update", "--cache-threads", "0"]) == 2
    cfg = resolve_config("node1")
    assert cfg.ssd_path == ssd and cfg.quota_bytes == 40_000_000 and cfg.reserve_bytes == 0
    assert cfg.threads == 3 and cfg.lifetime_days == 7
    other = tmp_path / "scratch"
    other.mkdir()
    monkeypatch.setenv("CRYODESK_SSD_PATH", str(other))  # a dynamic path wins
    assert resolve_config("node1").ssd_path == other
    monkeypatch.delenv("CRYODESK_SSD_PATH")
    capsys.readouterr()
    assert cli(["cache", "warm", p.uid, jobs["all"], "--worker", "node1", "--json"]) == 0
    warm = json.loads(capsys.readouterr().out)
    assert warm["mode"] == "files" and warm["bytes_copied"] > 0
    assert cli(["cache", "status", "--worker", "node1", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["entries"] == 1 and st["quota_bytes"] == 40_000_000 and st["by_project"][p.uid]["entries"] == 1
    assert cli(["cache", "estimate", p.uid, jobs["sub"], "--json"]) == 0
    est = json.loads(capsys.readouterr().out)
    assert est["particles"] == 3 and est["auto_mode"] == "subset" and est["subset_bytes"] < est["whole_stacks_bytes"]
    assert cli(["cache", "estimate", "--count", "1000", "--box", "256", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["bytes"] == (4 * 256 * 256 + 128 + 1024) * 1000  # the guide's
    assert cli(["cache", "clear", "--project", "P99", "--worker", "node1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["removed"] == 0
    assert cli(["cache", "clear", "--worker", "node1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["removed"] == 1
    assert cli(["worker", "connect", "--worker", "node1", "--update", "--nossd"]) == 0
    assert not resolve_config("node1").usable
    assert cli(["cache", "status", "--worker", "node1"]) == 1
    assert "no SSD cache is configured" in capsys.readouterr().err


def test_warm_service_progress_and_cancel(project, ssd):
    import functools
    import threading

    from cryodesk.base.errors import JobCancelled
    from cryodesk.cache import warm_job_output

    p, jobs = project
    ev = threading.Event()
    ev.set()
    with pytest.raises(JobCancelled):
        warm_job_output(p, jobs["all"], config=config(ssd), cancel_event=ev)
    assert Cache(config(ssd)).status()["entries"] == 0  # nothing half-done stays
    seen = []
    fn = functools.partial(warm_job_output, p, jobs["sub"], config=config(ssd))  # as submit_task calls it
    res = fn(lambda f, m: seen.append((f, m)), threading.Event())
    assert res["mode"] == "subset" and res["bytes_copied"] > 0
    assert seen and seen[-1][0] == 1.0 and "cached" in seen[-1][1]
