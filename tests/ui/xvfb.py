"""Run the real app on a real X server (Xvfb, the xcb platform) and take screenshots of it.

Used by tests/ui/test_xvfb.py and resources/screenshots/make_screenshots.py.  Needs ``Xvfb``,
``xdotool`` and ImageMagick's ``import`` (Debian: xvfb, xdotool, imagemagick).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOLS = ("Xvfb", "xdotool", "import")


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


class Xvfb:
    """An X server of its own (a free display number, chosen by the server itself)."""

    def __init__(self, width: int = 1600, height: int = 1000) -> None:
        r, w = os.pipe()
        self.proc = subprocess.Popen(["Xvfb", "-displayfd", str(w), "-screen", "0", f"{width}x{height}x24",
                                      "-nolisten", "tcp"], pass_fds=(w,), stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        os.close(w)
        with os.fdopen(r) as fh:
            number = fh.readline().strip()
        if not number:
            self.proc.kill()
            raise RuntimeError("Xvfb did not start")
        self.display = f":{number}"

    def env(self, **extra) -> dict:
        env = dict(os.environ, DISPLAY=self.display, QT_QPA_PLATFORM="xcb", **extra)
        env.pop("WAYLAND_DISPLAY", None)
        return env

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


class App:
    """``cryodesk gui`` on ``x`` with database ``db``; its window id once it shows."""

    def __init__(self, x: Xvfb, db: str, home: Path, size=(1600, 1000), theme: str = "light",
                 pythonpath: str | None = None) -> None:
        self.x = x
        env = x.env(XDG_CONFIG_HOME=str(home / "config"), XDG_DATA_HOME=str(home / "data"),
                    XDG_STATE_HOME=str(home / "state"))
        env["PYTHONFAULTHANDLER"] = "1"  # a fatal signal prints every thread's Python stack into the log
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
        for attempt in (1, 2):
            self.log = open(home / f"gui-{size[0]}x{size[1]}-{theme}.log", "w")
            self.proc = subprocess.Popen([sys.executable, "-m", "cryodesk.cli.main", "--db", db, "gui",
                                          "--size", f"{size[0]}x{size[1]}", "--theme", theme],
                                         cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT)
            try:
                self.window = self._find_window()
                return
            except RuntimeError as exc:
                # the X server refusing a client is this machine's trouble, not the app's: once more
                if attempt == 2 or "could not connect to display" not in str(exc):
                    raise

    def _find_window(self, timeout: float = 60.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.log.flush()
                tail = Path(self.log.name).read_text(errors="replace").splitlines()[-40:]
                raise RuntimeError(f"the app exited with {self.proc.returncode}; the end of {self.log.name}:\n"
                                   + "\n".join(tail))
            out = self.xdotool("search", "--onlyvisible", "--name", "^cryodesk$", check=False)
            ids = out.split()
            if ids:
                return ids[0]
            time.sleep(0.2)
        raise RuntimeError("the app's window did not show")

    def xdotool(self, *args, check: bool = True) -> str:
        res = subprocess.run(["xdotool", *args], env=self.x.env(), capture_output=True, text=True)
        if check and res.returncode != 0:
            raise RuntimeError(f"xdotool {' '.join(args)}: {res.stderr}")
        return res.stdout

    def focus(self) -> None:
        """No window manager: a click (on the status bar, where it does nothing) activates the window."""
        x, y, _w, h = self.geometry()
        self.click(x + 4, y + h - 6)
        self.xdotool("windowfocus", "--sync", self.window, check=False)
        time.sleep(0.3)

    def key(self, *keys: str) -> None:
        """Real key strokes (XTEST), into the focused window (see :meth:`focus`)."""
        self.xdotool("key", "--delay", "30", *keys)

    def type(self, text: str) -> None:
        self.xdotool("type", "--delay", "30", text)

    def click(self, x: int, y: int, button: int = 1) -> None:
        self.xdotool("mousemove", "--sync", str(x), str(y), "click", str(button))

    def geometry(self) -> tuple[int, int, int, int]:
        geo = self.xdotool("getwindowgeometry", "--shell", self.window)
        vals = dict(line.split("=", 1) for line in geo.split() if "=" in line)
        return int(vals["X"]), int(vals["Y"]), int(vals["WIDTH"]), int(vals["HEIGHT"])

    def screenshot(self, path: Path) -> Path:
        """The screen where the main window is, its dialogs and menus included (no window manager:
        they are drawn over it), cropped to the main window."""
        x, y, w, h = self.geometry()
        subprocess.run(["import", "-window", "root", "-crop", f"{w}x{h}+{x}+{y}", "+repage", str(path)],
                       env=self.x.env(), check=True)
        return path

    def close(self) -> int:
        for _attempt in range(3):  # nothing runs: Ctrl+Q closes the window at once (once it has the focus)
            if self.proc.poll() is not None:
                break
            self.focus()
            self.key("ctrl+q")
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                continue
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        return self.proc.returncode


def colour_stats(path: Path) -> dict:
    """Distinct colours (sampled) and the share of the most common one, of a PNG (read with Qt)."""
    from PySide6.QtGui import QImage

    img = QImage(str(path))
    counts: dict[int, int] = {}
    n = 0
    for y in range(0, img.height(), 4):
        for x in range(0, img.width(), 4):
            rgb = img.pixel(x, y) & 0xFFFFFF
            counts[rgb] = counts.get(rgb, 0) + 1
            n += 1
    top = max(counts.values()) if counts else 0
    return {"width": img.width(), "height": img.height(), "colours": len(counts),
            "dominant_share": top / max(n, 1), "counts": counts}
