"""Shared by the lane tests."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
#: how the node starts cryodesk: this checkout with this interpreter
NODE_CMD = f"env PYTHONPATH={REPO} QT_QPA_PLATFORM=offscreen {sys.executable} -m cryodesk.cli.main"
