"""Live sessions on PostgreSQL: stream, complete, compact (journal), restore bit-identical."""

from __future__ import annotations

from pathlib import Path

import pytest
from livehelpers import PARAMS, checksums, deliver
from throwaway import PG_URL, pg_project

from cryodesk.core import sessions
from cryodesk.engine.live import run_session

pytestmark = pytest.mark.skipif(not PG_URL, reason="set CRYODESK_TEST_PG_URL to test against PostgreSQL")


def test_session_round_trip_on_postgres(tmp_path, movie_source):
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    with pg_project(tmp_path) as p:
        s = sessions.create(p, str(incoming / "*.mrc"), "pg", dict(PARAMS))
        deliver(movie_source[:2], incoming)
        sessions.transition(p, s, "start")
        assert run_session(p, s, idle_exit_s=0.5) == ("idle", [])
        sessions.transition(p, s, "complete")
        rels = sorted(o["path"] for e in sessions.exposures(s) for o in e.outputs.values())
        sums = checksums(Path(p.directory), rels)
        plan = sessions.compaction_plan(p, s)
        assert sessions.compact(p, s)["freed_bytes"] == plan.bytes > 0
        assert sessions.get_session(p, s.uid).status == "compacted"
        sessions.start_restore(p, s)
        assert run_session(p, s) == ("restored", [])
        assert checksums(Path(p.directory), rels) == sums
