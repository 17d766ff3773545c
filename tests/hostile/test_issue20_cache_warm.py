"""Issue 20 item 8: ``cryodesk cache warm`` of a truncated stack must say so and cache nothing.

The stack's MRC header promises more images than the file holds (a copy cut
short).  Before the fix the whole-file path copied it anyway and reported
"cached": a later job read garbage or failed far from the cause.  Now the
warm fails with an error naming the file and what is wrong, exit code 1, and
the SSD cache holds no entry and no file.
"""

from __future__ import annotations

import os
import shutil

import pytest

from cryodesk.cache import Cache, resolve_config
from cryodesk.cli.main import main


@pytest.fixture
def truncated_job(tmp_path, realdata_dir, monkeypatch):
    from cryodesk import db as dbmod
    from cryodesk.core import jobs, projects, runner
    from cryodesk.io.cs import read_cs, write_cs

    ssd = tmp_path / "ssd"
    ssd.mkdir()
    monkeypatch.setenv("CRYODESK_SSD_PATH", str(ssd))
    monkeypatch.setenv("CRYODESK_SSD_RESERVE_MB", "0")
    url = str(tmp_path / "warm.sqlite")
    dbmod.open_database(url)
    with dbmod.db.connection_context():
        _setup(tmp_path, realdata_dir, projects, jobs, runner, read_cs, write_cs)
    dbmod.close_database()
    stack = tmp_path / "raw" / "a.mrc"
    os.truncate(stack, stack.stat().st_size - 1000)  # the last image is cut short
    yield url, ssd, stack
    dbmod.close_database()


def _setup(tmp_path, realdata_dir, projects, jobs, runner, read_cs, write_cs):
    p = projects.create_project("Warm", tmp_path / "proj")
    projects.create_workspace(p, "main")
    raw = tmp_path / "raw"
    raw.mkdir()
    stack = raw / "a.mrc"
    shutil.copy(realdata_dir / "empiar_10076_7.mrc", stack)
    rows = read_cs(realdata_dir / "empiar_10076_7.cs").copy()
    rows["blob/path"] = ["a.mrc"] * len(rows)
    write_cs(raw / "a.cs", rows)
    j = jobs.create_job(p, "import_particles", "W1", params={"particle_meta_path": str(raw / "a.cs")})
    assert runner.run_job(p, j).status == "completed"


@pytest.mark.parametrize("subset", ["never", "always", "auto"])
def test_warm_of_a_truncated_stack_is_a_clear_error_and_caches_nothing(truncated_job, capsys, subset):
    url, ssd, stack = truncated_job
    code = main(["--db", url, "cache", "warm", "P1", "J1", "--subset", subset])
    out, err = capsys.readouterr()
    assert code == 1, (out, err)
    assert "Traceback" not in err and "cached (" not in out
    assert str(stack.name) in err and "truncated" in err, err
    status = Cache(resolve_config()).status()
    assert status["entries"] == 0 and status["used_bytes"] == 0
    cached = [p for p in (ssd / "cryodesk_cache" / "files").rglob("*") if p.is_file()]
    assert cached == [], cached
