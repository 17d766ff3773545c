"""Take the README's screenshots from the real demo (medium size) in a real X server (Xvfb), light and dark.

Builds the medium demo in a temporary directory (about two minutes), then runs ``cryodesk gui``
on Xvfb (the xcb platform, as on a workstation) and drives it with real key strokes and clicks
(xdotool), taking each picture with ImageMagick's ``import``.  Needs: xvfb, xdotool, imagemagick.

Usage: python resources/screenshots/make_screenshots.py [--out resources/screenshots] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(REPO), str(REPO / "tests" / "ui")]

import xvfb  # noqa: E402  (tests/ui/xvfb.py: the Xvfb and app drivers the Xvfb test uses)


def build_demo(work: Path) -> str:
    db = str(work / "demo.sqlite")
    subprocess.run([sys.executable, "-m", "cryodesk.cli.main", "--db", db, "demo", "--size", "medium",
                    "--dir", str(work / "demo")], cwd=REPO, check=True)
    return db


def settings_for(home: Path, scope: str) -> None:
    """The app's remembered scope (QSettings, INI on Linux): the window opens there."""
    conf = home / "config" / "cryodesk"
    conf.mkdir(parents=True, exist_ok=True)
    (conf / "cryodesk.conf").write_text(f"[last]\nscope={scope}\n")


def wait(seconds: float) -> None:
    time.sleep(seconds)


def shoot(x, db: str, work: Path, out: Path, name: str, *, scope="P1/W1", size=(1600, 1000), theme="light",
          steps=()) -> Path:
    home = work / f"home-{name}"
    shutil.rmtree(home, ignore_errors=True)
    settings_for(home, scope)
    app = xvfb.App(x, db, home, size=size, theme=theme)
    try:
        wait(6)  # the tree loads and paints
        app.focus()
        for step in steps:
            step(app)
        path = out / f"{name}.png"
        app.screenshot(path)
        print(f"{path}: {xvfb.colour_stats(path)['colours']} colours", flush=True)
        return path
    finally:
        app.close()


def find(uid: str):
    def step(app) -> None:
        app.key("ctrl+f")
        app.type(uid)
        app.key("Return")
        wait(1.0)
    return step


def restack_next_step(app) -> None:
    """Job menu > Next step > Restack particles… on the selected job (the builder, its input connected)."""
    app.key("alt+j")
    wait(0.5)
    app.key("x")
    wait(0.5)
    app.key("r")
    wait(3.0)


def cleanup(app) -> None:
    """Data > Cleanup Data…, then tick "Motion correction" and "Clear intermediate results" (1600x1000)."""
    app.key("alt+d")
    wait(0.5)
    app.key("c")
    wait(4.0)
    app.click(270, 222)
    wait(1.5)
    app.click(258, 335)
    wait(2.5)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(HERE))
    ap.add_argument("--keep", help="work in this directory and keep it (default: a temporary one)")
    args = ap.parse_args()
    missing = xvfb.missing_tools()
    if missing:
        print(f"needs {', '.join(missing)}: apt-get install xvfb xdotool imagemagick", file=sys.stderr)
        return 2
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="cryodesk-shots-"))
    work.mkdir(parents=True, exist_ok=True)
    out = Path(args.out)
    db = str(work / "demo.sqlite") if (work / "demo.sqlite").exists() else build_demo(work)
    os.environ.pop("CRYODESK_DB", None)
    x = xvfb.Xvfb(1600, 1000)
    try:
        shoot(x, db, work, out, "main-window", steps=[find("J8")])
        shoot(x, db, work, out, "main-window-dark", theme="dark", steps=[find("J8")])
        shoot(x, db, work, out, "workspace-ghosts", scope="P1/W2", steps=[find("J5")])
        shoot(x, db, work, out, "workspace-ghosts-dark", scope="P1/W2", theme="dark", steps=[find("J5")])
        shoot(x, db, work, out, "job-builder", steps=[find("J7"), restack_next_step])
        shoot(x, db, work, out, "window-1024x700", size=(1024, 700), steps=[find("J5")])
        shoot(x, db, work, out, "cleanup-data", steps=[cleanup])
    finally:
        x.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
