"""Render resources/cryodesk.svg to the hicolor PNG sizes the desktop menus use.

Run after editing the SVG: ``.venv/bin/python packaging/render_icons.py``.
The PNGs are committed (the .deb build does not need Qt's SVG renderer), and
``--check`` reports PNGs that are missing or older than the SVG.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SVG = ROOT / "resources" / "cryodesk.svg"
HICOLOR = ROOT / "resources" / "icons" / "hicolor"
SIZES = (16, 22, 24, 32, 48, 64, 128, 256, 512)


def png_path(size: int) -> Path:
    return HICOLOR / f"{size}x{size}" / "apps" / "cryodesk.png"


def render(sizes=SIZES) -> list[Path]:
    """Render every size with QSvgRenderer; returns the files written."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QGuiApplication, QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer

    app = QGuiApplication.instance() or QGuiApplication([])  # noqa: F841  (fonts, image plugins)
    renderer = QSvgRenderer(str(SVG))
    if not renderer.isValid():
        raise SystemExit(f"render_icons: cannot parse {SVG}")
    written = []
    for size in sizes:
        image = QImage(size, size, QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(Qt.GlobalColor.transparent)
        painter = QPainter(image)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        renderer.render(painter)
        painter.end()
        out = png_path(size)
        out.parent.mkdir(parents=True, exist_ok=True)
        if not image.save(str(out), "PNG"):
            raise SystemExit(f"render_icons: cannot write {out}")
        written.append(out)
    return written


def stale() -> list[Path]:
    svg_mtime = SVG.stat().st_mtime
    return [png_path(s) for s in SIZES if not png_path(s).exists() or png_path(s).stat().st_mtime < svg_mtime]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report missing or stale PNGs")
    args = ap.parse_args(argv)
    if args.check:
        bad = stale()
        for p in bad:
            print(f"stale or missing: {p.relative_to(ROOT)}", file=sys.stderr)
        return 1 if bad else 0
    for p in render():
        print(p.relative_to(ROOT))
    return 0


if __name__ == "__main__":
    sys.exit(main())
