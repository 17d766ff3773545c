"""The menu entry and icons that the .deb installs (resources/)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from configparser import ConfigParser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DESKTOP = ROOT / "resources" / "cryodesk.desktop"
HICOLOR = ROOT / "resources" / "icons" / "hicolor"


@pytest.mark.skipif(shutil.which("desktop-file-validate") is None,
                    reason="desktop-file-validate not installed (apt-get install desktop-file-utils)")
def test_desktop_file_validates():
    proc = subprocess.run(["desktop-file-validate", str(DESKTOP)], capture_output=True, text=True)
    assert proc.returncode == 0 and not proc.stdout.strip(), proc.stdout + proc.stderr


def test_desktop_file_starts_the_gui_with_our_icon():
    entry = ConfigParser(interpolation=None)
    entry.optionxform = str
    entry.read(DESKTOP)
    d = entry["Desktop Entry"]
    assert d["Exec"] == "cryodesk gui" and d["Icon"] == "cryodesk" and d["Terminal"] == "false"


def test_every_icon_png_has_the_size_its_directory_says():
    pngs = sorted(HICOLOR.glob("*/apps/cryodesk.png"))
    assert {p.parts[-3] for p in pngs} >= {"16x16", "32x32", "48x48", "256x256"}
    for png in pngs:
        head = png.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n", png
        width, height = struct.unpack(">II", head[16:24])
        assert f"{width}x{height}" == png.parts[-3], png
    assert (ROOT / "resources" / "cryodesk.svg").read_text().lstrip().startswith("<?xml")
