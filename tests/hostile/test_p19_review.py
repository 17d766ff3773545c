"""Review of the Qt-free job run path, the hourly temp walk and the float16 restack (p19): regressions."""

from __future__ import annotations

import pytest

from cryodesk.cli.main import main


@pytest.mark.parametrize("argv", [["--help", "job"], ["-h", "job", "run"], ["--db", "x.sqlite", "-h", "cleanup"]])
def test_top_level_help_before_a_command_still_lists_every_command(argv, capsys):
    # the parser of only the named command is built; a -h before that name is the whole program's help
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("job", "cleanup", "project", "worker", "lane", "settings"):
        assert f"    {command} " in out, out
