"""The app on a real X server (Xvfb, the xcb platform): it starts, draws the tree, and its screenshots are
not blank, at 1600x1000 and at 1024x700 (where the docks must still fit); real keys through xdotool."""

from __future__ import annotations

import os
import time

import pytest

from . import xvfb

pytestmark = pytest.mark.skipif(bool(xvfb.missing_tools()),
                                reason=f"needs {', '.join(xvfb.missing_tools())} (apt-get install xvfb xdotool "
                                       "imagemagick)")

COMPLETED_GREEN = 0x34A853
SELECTION_PINK = 0xFF2D95


@pytest.fixture
def x_server():
    server = xvfb.Xvfb(1600, 1000)
    yield server
    server.close()


def _wait_for(app, path, colour: int, least: int, timeout: float = 40.0) -> dict:
    """Screenshots until at least ``least`` sampled pixels have ``colour`` (or the time is up)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = xvfb.colour_stats(app.screenshot(path))
        if stats["counts"].get(colour, 0) >= least or time.monotonic() > deadline:
            return stats
        time.sleep(0.5)


@pytest.mark.parametrize("size", [(1600, 1000), (1024, 700)])
def test_the_app_under_xvfb_draws_a_real_window(demo, ui_db, x_server, tmp_path, artifacts_dir, size):
    site = tmp_path / "site"
    site.mkdir()
    # the app process knows the test job types (their categories colour the cards)
    (site / "sitecustomize.py").write_text(
        f"import sys\nsys.path.insert(0, {str(xvfb.REPO / 'tests')!r})\nimport jobtypes\n"
        "jobtypes.family('ui', step_fill='repeat', iter_bytes=(3000, 0))\n")
    app = xvfb.App(x_server, ui_db.database, tmp_path, size=size,
                   pythonpath=os.pathsep.join([str(site), str(xvfb.REPO)]))
    try:
        shot = artifacts_dir / f"xvfb_main_window_{size[0]}x{size[1]}.png"
        stats = _wait_for(app, shot, COMPLETED_GREEN, 20)  # the cards' 'completed' stripes
        assert (stats["width"], stats["height"]) == size
        assert stats["colours"] > 40 and stats["dominant_share"] < 0.8, stats  # not blank, not one colour
        assert stats["counts"].get(COMPLETED_GREEN, 0) > 20  # the job cards are drawn
        # real keys: Ctrl+F, a uid, Enter selects the job; the inspector shows it
        for _attempt in range(3):  # (without a window manager the first focus may not have landed yet)
            app.focus()
            app.key("ctrl+f", "ctrl+a")
            app.type("J5")
            app.key("Return")
            after = _wait_for(app, artifacts_dir / f"xvfb_selected_{size[0]}x{size[1]}.png", SELECTION_PINK, 6, 8)
            if after["counts"].get(SELECTION_PINK, 0) >= 6:
                break
        assert after["counts"].get(SELECTION_PINK, 0) >= 6  # the selection outline
    finally:
        code = app.close()
    assert code == 0
