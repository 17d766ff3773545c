"""cryodesk's state inside a RELION project: ``.cryodesk/relion.json`` (RELION has no final flags).

Only cryodesk's own directory is written (a symlink in its place is refused); RELION
never reads it and a project copied elsewhere keeps its flags.
"""

from __future__ import annotations

import json
from pathlib import Path

from ...base.errors import DataError
from ...base.fsio import atomic_write

STATE_FILE = "relion.json"


def state_path(project_dir: Path) -> Path:
    return Path(project_dir) / ".cryodesk" / STATE_FILE


def read_finals(project_dir: Path) -> set[str]:
    """The job directories (``Refine3D/job029``) marked final, from the state file (empty if none)."""
    path = state_path(project_dir)
    if path.is_symlink():
        raise DataError(f"{path} is a symlink; cryodesk never follows one for its own state")
    try:
        doc = json.loads(path.read_text())
    except FileNotFoundError:
        return set()
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: cryodesk's RELION state is unreadable ({exc})") from None
    finals = doc.get("finals", []) if isinstance(doc, dict) else None
    if not isinstance(finals, list) or not all(isinstance(x, str) for x in finals):
        raise DataError(f"{path}: 'finals' is not a list of job directories")
    return set(finals)


def write_finals(project_dir: Path, finals) -> None:
    base = Path(project_dir) / ".cryodesk"
    if base.is_symlink():
        raise DataError(f"{base} is a symlink; cryodesk never follows one for its own state (nothing was changed)")
    try:
        base.mkdir(exist_ok=True)
        atomic_write(base / STATE_FILE, json.dumps({"format": 1, "finals": sorted(finals)}, indent=1))
    except OSError as exc:
        raise DataError(f"cannot write {base / STATE_FILE}: {exc.strerror or exc} (nothing was changed)") from None
