"""Issue 20 item 13: a database password is never shown, and a password holding ``#``, ``?``, ``/`` or ``@``
is parsed (it gave ``ValueError: Port could not be cast to integer value as 'S3c'`` — part of the password).

Every output path found for a database URL is run with a secret in it and its captured output grepped:
open errors, malformed URLs, ``settings show|set``, ``self-test``, ``lane show``, a lane's submission
script (owner-only when it carries the password), the detached worker's command line.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from cryodesk.base.dburl import has_password, parse_pg_url, redact
from cryodesk.base.errors import UsageError
from cryodesk.cli.main import main

SECRET = "S3cretPW"
#: passwords as users type them into a URL, unencoded
PASSWORDS = [SECRET, f"{SECRET}#x", f"S3c?{SECRET}", f"a/{SECRET}", f"{SECRET}@b", f"{SECRET}:x", "S3c%23retPW"]
DEAD = "127.0.0.1:1"  # nothing listens: the connection is refused at once


@pytest.fixture
def run(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.delenv("CRYODESK_DB", raising=False)

    def run(*argv):
        code = main(list(argv))
        out, err = capsys.readouterr()
        assert "Traceback" not in out + err
        return code, out + err

    yield run
    from cryodesk import db as dbmod

    if dbmod.db.obj is not None:
        dbmod.close_database()


@pytest.mark.parametrize("pw", PASSWORDS)
def test_password_is_parsed_and_never_shown(pw):
    url = f"postgresql://alice:{pw}@db.example.org:5433/cryo?sslmode=require"
    params = parse_pg_url(url)
    assert params == {"database": "cryo", "user": "alice", "password": pw.replace("%23", "#"),
                      "host": "db.example.org", "port": 5433, "sslmode": "require"}
    assert redact(url) == "postgresql://alice:***@db.example.org:5433/cryo?sslmode=require"
    assert has_password(url) and not has_password("postgresql://alice@h/db") and not has_password("/x.sqlite")


@pytest.mark.parametrize("url", [
    f"postgresql://alice:{SECRET}/cryo",            # the "@host" forgotten: the password looks like a port
    f"postgresql://alice:{SECRET}@h:{SECRET}/cryo",
    f"postgresql://alice:{SECRET}@h",               # no database name
    f"mysql://alice:{SECRET}@h/cryo",
])
def test_malformed_url_is_a_usage_error_without_the_password(run, url):
    code, text = run("--db", url, "project", "list")
    assert code == 2 and "database URL" in text and SECRET not in text and "***" in text, text
    with pytest.raises(UsageError) as err:
        parse_pg_url(url) if url.startswith("postgresql") else (_ for _ in ()).throw(UsageError(redact(url)))
    assert SECRET not in str(err.value)


@pytest.mark.parametrize("pw", PASSWORDS[:5])
def test_unreachable_server_error_hides_the_password(run, pw):
    code, text = run("--db", f"postgresql://alice:{pw}@{DEAD}/cryo", "project", "list")
    assert code == 1 and "cannot open the database postgresql://alice:***@127.0.0.1:1/cryo" in text, text
    assert SECRET not in text


def test_settings_show_and_set_hide_the_password(run, tmp_path):
    url = f"postgresql://alice:{SECRET}#x@{DEAD}/cryo"
    db = str(tmp_path / "s.sqlite")
    for argv in (("settings", "set", "db_url", url, "--user"), ("settings", "set", "db_url", url, "--user", "--json"),
                 ("--db", db, "settings", "show"), ("--db", db, "settings", "show", "--json")):
        code, text = run(*argv)
        assert code == 0 and SECRET not in text, (argv, text)
        assert "alice:***@" in text or argv[-1] == "show", (argv, text)  # the table shows the --db value
    os.environ.pop("CRYODESK_DB", None)  # set by --db above (the fixture restores the original)
    code, text = run("project", "list")  # the user setting is the database now: unreachable, said without it
    assert code == 1 and SECRET not in text and "alice:***@" in text, text


@pytest.mark.parametrize("pw", [SECRET, f"S3c#{SECRET}"])
def test_self_test_database_line_hides_the_password(tmp_path, pw):
    """``self-test`` printed the URL as given (and a '#' in it gave a ValueError naming part of the password)."""
    import io

    from cryodesk.cli import selftest_cmds

    out = io.StringIO()
    report = selftest_cmds._Report(out=out)
    report.step("database", selftest_cmds._database, f"postgresql://alice:{pw}@{DEAD}/cryo", tmp_path)
    text = out.getvalue()
    assert "FAIL  database" in text and "S3c" not in text and "Traceback" not in text, text
    pg = os.environ.get("CRYODESK_TEST_PG_URL")
    if pg and has_password(pg):  # a reachable server: the "ok" line shows the URL, redacted
        from cryodesk import db as dbmod

        secret = parse_pg_url(pg)["password"]
        report.step("database", selftest_cmds._database, pg, tmp_path)
        dbmod.close_database()
        text = out.getvalue()
        assert "ok    database" in text and f":{secret}@" not in text and ":***@" in text, text


def test_lane_show_and_submission_script_keep_the_password_to_the_owner(run, tmp_path):
    db = str(tmp_path / "cli.sqlite")
    node = f"postgresql://alice:{SECRET}?x@{DEAD}/cryo"
    run("--db", db, "project", "create", "--title", "X", "--dir", str(tmp_path / "x"))
    run("--db", db, "workspace", "create", "P1", "--title", "main")
    run("--db", db, "job", "create", "P1", "h_source")
    code, text = run("--db", db, "lane", "add", "L", "--type", "slurm", "--submit", "echo 4242",
                     "--status", "true", "--node-db-url", node)
    assert code == 0 and SECRET not in text, text
    for argv in (("lane", "show", "L"), ("lane", "show", "L", "--json"), ("lane", "list")):
        code, text = run("--db", db, *argv)
        assert code == 0 and SECRET not in text, (argv, text)
    code, text = run("--db", db, "job", "queue", "P1", "J1", "--lane", "L")
    assert code == 0 and "4242" in text and SECRET not in text, text
    script = tmp_path / "x" / "J1" / "lane" / "submit.sh"
    assert SECRET in script.read_text()  # the node needs it ...
    assert stat.S_IMODE(script.stat().st_mode) & 0o077 == 0  # ... and only its owner may read it


def test_detached_worker_gets_the_password_by_environment(monkeypatch, tmp_path):
    from cryodesk.engine import detach

    url = f"postgresql://alice:{SECRET}@{DEAD}/cryo"
    assert SECRET not in " ".join(detach.worker_command(url))  # ps shows every user's command lines
    assert detach.worker_command(str(tmp_path / "a.sqlite"))[-5:-3] == ["--db", str(tmp_path / "a.sqlite")]
    seen = {}

    class Popen:
        def __init__(self, cmd, env, **kw):
            seen.update(cmd=cmd, env=env)
            self.pid = 1

    monkeypatch.setattr(detach.subprocess, "Popen", Popen)
    monkeypatch.setattr(detach, "log_dir", lambda: tmp_path / "logs")
    detach.spawn_worker(url)
    assert SECRET not in " ".join(seen["cmd"]) and seen["env"]["CRYODESK_DB"] == url
    assert not any(SECRET in p.read_text() for p in Path(tmp_path / "logs").iterdir())
