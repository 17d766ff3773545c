"""``cryodesk self-test`` in-process: every step passes and the screenshot shows a drawn window."""

from __future__ import annotations

import io

import pytest

from cryodesk import _runtime


@pytest.fixture
def keep_env(monkeypatch):
    # configure() sets NUMBA_CACHE_DIR for the process: undo it for the tests that follow.
    import os

    monkeypatch.setattr(_runtime, "_configured", {})
    monkeypatch.setenv("NUMBA_CACHE_DIR", os.environ.get("NUMBA_CACHE_DIR") or str(_runtime.numba_cache_dir()))


def test_selftest_passes_and_renders_the_main_window(qapp, tmp_path, keep_env, artifacts_dir):
    from PySide6.QtGui import QImage

    from cryodesk.cli.selftest_cmds import run_selftest

    shot = tmp_path / "selftest.png"
    out = io.StringIO()
    code = run_selftest(screenshot=str(shot), out=out)
    text = out.getvalue()
    assert code == 0, text
    for step in ("runtime", "database", "kernels.checks", "qt platform", "main window"):
        assert f"ok    {step}" in text, text
    assert text.rstrip().endswith("self-test passed")
    image = QImage(str(shot))
    assert image.width() >= 800 and image.height() >= 600
    # not blank: many colours, and a fair share of dark (text) pixels on the light window
    step = 4
    pixels = [image.pixelColor(x, y) for x in range(0, image.width(), step) for y in range(0, image.height(), step)]
    assert len({p.rgb() for p in pixels}) > 20
    dark = sum(p.lightness() < 100 for p in pixels) / len(pixels)
    assert dark > 0.002, f"only {dark:.4%} dark pixels: no text drawn?"
    image.save(str(artifacts_dir / "packaging-selftest.png"))


def test_selftest_reports_a_failed_step_and_exits_1(qapp, tmp_path, keep_env):
    from cryodesk.cli.selftest_cmds import run_selftest

    out = io.StringIO()
    code = run_selftest(db_url=str(tmp_path / "no-such-dir" / "x.sqlite") + "://bad", out=out)
    assert code == 1
    assert "FAIL  database" in out.getvalue() and "self-test FAILED: database" in out.getvalue()


def test_selftest_is_a_cli_command_without_db(tmp_path):
    from cryodesk.cli.main import build_parser

    args = build_parser().parse_args(["self-test", "--screenshot", str(tmp_path / "s.png")])
    assert args.needs_db is False and args.screenshot.endswith("s.png")
