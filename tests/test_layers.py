"""The Qt-free layers never import Qt (DESIGN.md: data flows disk/DB -> core -> UI)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "cryodesk"
QT_FREE = ("db", "io", "kernels", "core", "jobs", "cache", "demo")
QT_IMPORT = re.compile(r"^\s*(from|import)\s+(PySide6|pyqtgraph|shiboken6)\b", re.MULTILINE)


def test_no_qt_imports_in_source():
    offenders = [str(p.relative_to(ROOT)) for d in QT_FREE if (ROOT / d).is_dir()
                 for p in (ROOT / d).rglob("*.py") if QT_IMPORT.search(p.read_text())]
    assert offenders == []


def test_importing_the_qt_free_layers_loads_no_qt():
    mods = [f"cryodesk.{d}" for d in QT_FREE if (ROOT / d).is_dir()]
    code = ("import sys\n" + "".join(f"import {m}\n" for m in mods)
            + "import cryodesk.core.registry as r; r.all_types()\n"
            + "bad=[m for m in sys.modules if m.split('.')[0] in ('PySide6','pyqtgraph','shiboken6')]\n"
            + "print(bad); sys.exit(1 if bad else 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
