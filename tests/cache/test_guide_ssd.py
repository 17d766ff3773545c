"""The SSD caching guide's figures and defaults (issue 12, items 10 and 11)."""

from __future__ import annotations

import json

import pytest

from cryodesk.cache.estimate import describe_formula, estimate_formula
from cryodesk.cli.main import main
from cryodesk.core.units import decimal_bytes


@pytest.mark.parametrize("n, box, exact, decimal, binary", [
    (1_000_000, 256, 263_296_000_000, "263.3 GB", "245.2 GiB"),
    (2_000_000, 432, 1_495_296_000_000, "1.5 TB", "1.4 TiB"),
])
def test_size_calculator_reproduces_the_guide_by_default(n, box, exact, decimal, binary, tmp_path, monkeypatch,
                                                         capsys):
    res = estimate_formula(n, box)
    assert res["bytes"] == exact and res["nsymbt"] == 128 and res["header"] == 1024
    assert decimal_bytes(exact) == decimal
    text = describe_formula(res)
    assert text.startswith(f"{n:,} particles of box {box}: {exact:,} bytes ({decimal}; {binary})")
    assert "about" not in text and "upper bound" not in text
    monkeypatch.setenv("CRYODESK_DB", str(tmp_path / "db.sqlite"))
    assert main(["cache", "estimate", "--count", str(n), "--box", str(box)]) == 0
    assert capsys.readouterr().out.strip() == text
    assert main(["cache", "estimate", "--count", str(n), "--box", str(box), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["bytes"] == exact and d["decimal"] == decimal and d["binary"] == binary


def test_decimal_units():
    assert decimal_bytes(999) == "999 B" and decimal_bytes(1000) == "1.0 kB"
    assert decimal_bytes(10_000_000_000) == "10.0 GB"


def test_ssd_path_alone_means_no_quota_and_no_reserve_with_a_suggestion(tmp_path, monkeypatch, capsys):
    """Item 10: "if you specify the SSD path then the cache will be enabled with no quota or reserve"."""
    from cryodesk.base import settings
    from cryodesk.cache.config import resolve_config

    monkeypatch.setenv("CRYODESK_DB", str(tmp_path / "db.sqlite"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    for var in ("CRYODESK_SSD_PATH", "CRYODESK_SSD_QUOTA_MB", "CRYODESK_SSD_RESERVE_MB"):
        monkeypatch.delenv(var, raising=False)
    assert settings.default("ssd_reserve_mb") == 0 and settings.default("ssd_quota_mb") is None
    ssd = tmp_path / "ssd"
    ssd.mkdir()
    assert main(["worker", "connect", "--worker", "node1", "--ssdpath", str(ssd)]) == 0
    out = capsys.readouterr().out
    assert "quota none, reserve none" in out
    assert "--ssdreserve" in out and "suggest" in out  # the advice, not a silent default
    assert main(["worker", "list", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["ssd_quota_mb"] is None and row["ssd_reserve_mb"] == 0
    from cryodesk import db as dbmod

    dbmod.open_database(str(tmp_path / "db.sqlite"))
    try:
        with dbmod.db.connection_context():
            cfg = resolve_config("node1")
    finally:
        dbmod.close_database()
    assert cfg.usable and cfg.quota_bytes is None and cfg.reserve_bytes == 0
    assert main(["cache", "status", "--worker", "node1"]) == 0
    status = capsys.readouterr().out
    assert "reserve none" in status and "--ssdreserve" in status
    assert main(["worker", "connect", "--worker", "node1", "--update", "--ssdreserve", "10000"]) == 0
    assert "reserve 10000 MB" in capsys.readouterr().out
