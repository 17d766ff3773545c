"""The CLI in-process for tests: its own SQLite database and user config below ``tmp_path``."""

from __future__ import annotations


def cli_runner(tmp_path, monkeypatch, capsys):
    """``run(*argv) -> (exit code, stdout, stderr)`` of ``cryodesk`` with a database of its own."""
    from cryodesk.cli.main import main

    monkeypatch.setenv("CRYODESK_DB", str(tmp_path / "cli.sqlite"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))

    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run
