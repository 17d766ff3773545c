"""The README's settings table is the settings module's, so the two cannot drift apart."""

from __future__ import annotations

import re
from pathlib import Path

from cryodesk.base import settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_has_the_table_and_the_precedence():
    text = README.read_text()
    assert text.count(settings.markdown_table()) == 1, "regenerate: python -c 'from cryodesk.base import " \
        "settings; print(settings.markdown_table())'"
    assert f"**precedence: {settings.PRECEDENCE}**" in text
    assert settings.PRECEDENCE == " > ".join(settings.LEVELS)


def test_every_environment_variable_named_in_the_readme_is_in_the_table():
    """No other list of variables: every ``CRYODESK_*`` the README names is a setting's
    (``CRYODESK_TEST_*`` switch the test suite's optional parts, not cryodesk)."""
    named = {n for n in re.findall(r"CRYODESK_[A-Z0-9_]+", README.read_text()) if not n.startswith("CRYODESK_TEST_")}
    known = {s.env for s in settings.SETTINGS.values() if s.env}
    assert named <= known, named - known
