"""The engine is QtCore only: importing it (and the CLI that drives it) loads no QtWidgets/QtGui."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "cryodesk"


def test_engine_sources_use_qtcore_only():
    bad = re.compile(r"^\s*(from|import)\s+(PySide6\.(QtWidgets|QtGui)|pyqtgraph)\b", re.MULTILINE)
    offenders = [p.name for p in (ROOT / "engine").rglob("*.py") if bad.search(p.read_text())]
    assert offenders == []
    assert "PySide6" not in (ROOT / "core" / "lifecycle.py").read_text()


def test_importing_the_engine_and_its_cli_loads_no_gui_modules():
    code = ("import sys, cryodesk.engine, cryodesk.cli.engine_cmds, cryodesk.cli.main as m; m.build_parser()\n"
            "bad = [n for n in sys.modules if n.startswith(('PySide6.QtWidgets', 'PySide6.QtGui', 'pyqtgraph'))]\n"
            "print(bad); sys.exit(1 if bad else 0)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
