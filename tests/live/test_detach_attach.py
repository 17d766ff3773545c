"""A live session survives detach → attach (and a move) exactly: ``S<n>/session.json``.

Parameters, status, lane, thresholds and every exposure (movie reference, stage, outputs with sizes,
CTF fit, automatic picks, manual picks, manual accept/reject) come back as they were; a compacted
session can still be restored afterwards; a crafted or corrupt ``session.json`` is a clear error
that attaches nothing and writes nothing.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from livehelpers import PARAMS, checksums, deliver, js
from throwaway import PG_URL, disk_files, pg_project

from cryodesk.base.errors import DataError
from cryodesk.base.fsio import du_size
from cryodesk.core import attach, project_lifecycle, sessions
from cryodesk.db.models import Exposure, Project, Session
from cryodesk.engine.live import run_session


def _rows(project) -> list[dict]:
    """Every column of the project's session and exposure rows but the database ids."""
    out = []
    for s in Session.select().where(Session.project == project.id).order_by(Session.number):
        row = {k: v for k, v in s.__data__.items() if k not in ("id", "project")}
        row["exposures"] = [{k: v for k, v in e.__data__.items() if k not in ("id", "session")}
                            for e in Exposure.select().where(Exposure.session == s.id).order_by(Exposure.number)]
        out.append(row)
    return out


def doc_text(pdir: Path) -> bytes:
    return (pdir / "S1" / "session.json").read_bytes()


def _edited_session(p, incoming: Path, movie_source):
    """S1 with two processed exposures, manual picks on E1, E2 rejected by hand, changed thresholds, paused."""
    s = sessions.create(p, str(incoming / "*.mrc"), "edited", dict(PARAMS))
    deliver(movie_source[:2], incoming)
    sessions.transition(p, s, "start")
    assert run_session(p, s, idle_exit_s=0.3) == ("idle", [])
    sessions.set_manual_picks(p, s, "E1", [(40.5, 50), (100, 120.25)])
    sessions.set_manual(p, s, ["E2"], "reject")
    sessions.set_thresholds(p, s, ctf_fit_min=0.01, particles_max=500)
    sessions.transition(p, s, "pause")
    sessions.update_size(p, s)
    return s


def _round_trip_after_a_move(p, tmp_path, movie_source):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    s = _edited_session(p, incoming, movie_source)
    before, rows = sessions.describe(p, s.uid), _rows(p)
    e1 = next(e for e in before["exposures"] if e["uid"] == "E1")
    assert e1["n_manual_picks"] == 2 and e1["stage"] == "extraction" and e1["n_picks"]
    assert before["params"]["thresholds"]["particles_max"] == 500.0
    movies = checksums(incoming, sorted(os.listdir(incoming)))
    project_lifecycle.detach_project(p)
    assert Session.select().count() == Exposure.select().count() == 0
    old = Path(p.directory)
    doc = json.loads((old / "S1" / "session.json").read_text())
    assert doc["uid"] == "S1" and len(doc["exposures"]) == 2
    moved = tmp_path / "moved"
    shutil.move(old, moved)
    files = disk_files(moved, skip_state=True)
    q = attach.attach_project(moved)
    after = sessions.describe(q, "S1")
    assert after.pop("directory") == str(moved / "S1")
    before.pop("directory")
    # S1/ now holds its session.json too: its size is what du -sb says, and the same as before but that file
    assert after.pop("size_bytes") == du_size(moved / "S1") == before.pop("size_bytes") + len(doc_text(moved))
    assert after == before
    after_rows = _rows(q)
    for r in after_rows + rows:
        r.pop("size_bytes")
    assert after_rows == rows  # every other column, dates and JSON included
    assert disk_files(moved, skip_state=True) == files  # attach wrote nothing (but its lock)
    assert checksums(incoming, sorted(os.listdir(incoming))) == movies  # movies never touched
    # the attached session goes on: E1 is re-extracted with its manual picks
    sessions.transition(q, "S1", "start")
    assert run_session(q, sessions.get_session(q, "S1"), idle_exit_s=0.3) == ("idle", [])
    assert sessions.get_exposure(sessions.get_session(q, "S1"), "E1").stage == "ready"


def test_detach_move_attach_gives_the_same_session_sqlite(project, tmp_path, movie_source):
    _round_trip_after_a_move(project, tmp_path, movie_source)


@pytest.mark.skipif(not PG_URL, reason="set CRYODESK_TEST_PG_URL to test against PostgreSQL")
def test_detach_move_attach_gives_the_same_session_postgres(tmp_path, movie_source):
    with pg_project(tmp_path) as p:
        _round_trip_after_a_move(p, tmp_path, movie_source)


def test_cli_a_compacted_session_survives_detach_attach_and_is_restored(cli, tmp_path, movie_source):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    proj = tmp_path / "proj"
    assert cli("project", "create", "--title", "Live", "--dir", str(proj))[0] == 0
    params = [a for k, v in PARAMS.items() for a in ("-p", f"{k}={v}")]
    js(cli, "session", "create", "P1", "--movies", str(incoming / "*.mrc"), *params)
    deliver(movie_source[:2], incoming)
    js(cli, "session", "start", "P1", "S1", "--exit-when-idle", "0.3")
    js(cli, "session", "reject", "P1", "S1", "E2")
    js(cli, "session", "set", "P1", "S1", "thresholds.ctf_fit_min=0.02")
    js(cli, "session", "complete", "P1", "S1")
    rels = sorted(o["path"] for e in js(cli, "session", "show", "P1", "S1")["exposures"] for o in e["outputs"].values())
    sums = checksums(proj, rels)
    js(cli, "session", "compact", "P1", "S1")
    code, shown, err = cli("session", "show", "P1", "S1", "--json")
    assert code == 0 and json.loads(shown)["status"] == "compacted"
    assert cli("project", "detach", "P1")[0] == 0
    assert cli("project", "attach", str(proj))[0] == 0
    code, again, err = cli("session", "show", "P1", "S1", "--json")
    assert code == 0
    again, shown = json.loads(again), json.loads(shown)
    # the same but the size, which now counts S1/session.json (du -sb); a second round trip changes nothing
    assert again.pop("size_bytes") == shown.pop("size_bytes") + len(doc_text(proj)) == du_size(proj / "S1")
    assert again == shown
    code, first, _ = cli("session", "show", "P1", "S1", "--json")
    assert cli("project", "detach", "P1")[0] == 0 and cli("project", "attach", str(proj))[0] == 0
    assert cli("session", "show", "P1", "S1", "--json") == (0, first, "")  # identical `session show --json`
    code, _, err = cli("session", "reject", "P1", "S1", "E1")
    assert code == 1 and "compacted" in err  # still refused until restored
    d = js(cli, "session", "restore", "P1", "S1", "--exit-when-idle", "0.3")
    assert d["status"] == "completed" and d["stage_counts"]["ready"] == 2
    assert checksums(proj, rels) == sums  # bit-identical to what compaction removed
    d = js(cli, "session", "show", "P1", "S1")
    e2 = next(e for e in d["exposures"] if e["uid"] == "E2")
    assert e2["manual_status"] == "reject" and d["params"]["thresholds"]["ctf_fit_min"] == 0.02
    # a crafted session.json: the CLI says it in words (no traceback), attaches nothing; repaired, it attaches
    assert cli("project", "detach", "P1")[0] == 0
    where = proj / "S1" / "session.json"
    good = where.read_text()
    where.write_text('{"uid": "S1", "exposures": [{"uid": "E1", "movie": "/m.mrc", "outputs": '
                     '{"micrograph": {"path": "S1/../../outside", "bytes": 1}}}]}')
    code, out, err = cli("project", "attach", str(proj))
    assert code == 1 and str(where) in err and "is not a file inside S1/" in err and "Traceback" not in err
    assert cli("project", "list", "--json")[1].strip() == "[]"
    where.write_text(good)
    assert js(cli, "project", "attach", str(proj))["uid"] == "P1"


# -- crafted or corrupt session.json ------------------------------------------------------------
def _crafts(doc: dict):
    e = doc["exposures"][0]

    def change(fn):
        d = json.loads(json.dumps(doc))
        fn(d, d["exposures"][0])
        return d

    kind = next(iter(e["outputs"]))
    yield "not valid JSON", "{ not json"
    yield "is not a JSON object", "[1, 2]"
    yield "does not match its directory", change(lambda d, x: d.update(uid="S7"))
    yield "is not a file inside S1/", change(lambda d, x: x["outputs"][kind].update(path="S1/../J1/job.json"))
    yield "is not a file inside S1/", change(lambda d, x: x["outputs"][kind].update(path="/etc/passwd"))
    yield "is not a file inside S1/", change(lambda d, x: x["outputs"].update(evil={"path": "S1/x", "bytes": 1}))
    yield "is not an absolute path", change(lambda d, x: x.update(movie="incoming/m.mrc"))
    yield "belongs to two exposures", change(lambda d, x: d["exposures"].append(dict(x, uid="E9")))
    yield "appears twice", change(lambda d, x: d["exposures"].append(dict(x, movie="/elsewhere/m.mrc")))
    yield "unknown stage", change(lambda d, x: x.update(stage="done"))
    yield "unknown status", change(lambda d, x: d.update(status="flying"))
    yield "unknown parameter", change(lambda d, x: d["params"].update(rm_rf=True))
    yield "params.thresholds.ctf_fit_min", change(lambda d, x: d["params"]["thresholds"].update(ctf_fit_min="high"))
    yield "box_size_px", change(lambda d, x: d["params"]["extract"].update(box_size_px=7))
    yield "manual_picks is not a list", change(lambda d, x: x.update(manual_picks=[[1, "a"]]))
    yield "picks is not a list", change(lambda d, x: x.update(picks={"x": 1}))
    yield "manual_status", change(lambda d, x: x.update(manual_status="maybe"))
    yield "size_bytes", change(lambda d, x: d.update(size_bytes=-5))
    yield "found_at", change(lambda d, x: x.update(found_at="yesterday"))
    yield "results.ctf", change(lambda d, x: x["results"].update(ctf={"df1_A": "deep"}))
    yield "results.n_particles", change(lambda d, x: x["results"].update(n_particles=-1))
    yield "results.shape", change(lambda d, x: x["results"].update(shape="big"))
    yield "lane", change(lambda d, x: d.update(lane=""))


def test_a_crafted_or_corrupt_session_json_is_a_clear_error(project, tmp_path, movie_source):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    _edited_session(project, incoming, movie_source)
    project_lifecycle.detach_project(project)
    pdir = Path(project.directory)
    where = pdir / "S1" / "session.json"
    good = where.read_text()
    files = disk_files(tmp_path)
    for expected, text in _crafts(json.loads(good)):
        where.write_text(text if isinstance(text, str) else json.dumps(text))
        with pytest.raises(DataError) as info:
            attach.attach_project(pdir)
        assert str(where) in str(info.value) and expected in str(info.value), (expected, str(info.value))
        assert Project.select().count() == 0  # nothing attached
    # a symlink instead of the file is refused, never followed
    where.unlink()
    (tmp_path / "elsewhere.json").write_text(good)
    where.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(DataError, match="symlink"):
        attach.attach_project(pdir)
    where.unlink()
    where.write_text(good)
    (tmp_path / "elsewhere.json").unlink()
    assert disk_files(tmp_path) == files  # nothing but the test's own edits changed anywhere


def test_archive_writes_the_session_manifest_with_its_size(project, session):
    sessions.set_thresholds(project, session, particles_min=3)
    project_lifecycle.archive_project(project)
    sdir = Path(project.directory) / "S1"
    doc = json.loads((sdir / "session.json").read_text())
    assert doc["params"]["thresholds"]["particles_min"] == 3.0 and doc["status"] == "paused"
    assert doc["exposures"] == [] and doc["lane"] == "local"
    # it records S1/'s size with itself in place, and the database has the same number
    assert doc["size_bytes"] == du_size(sdir) == sessions.get_session(project, "S1").size_bytes
