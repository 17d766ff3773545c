"""The RELION round trip on PostgreSQL too (CI's server; skipped without CRYODESK_TEST_PG_URL)."""

from __future__ import annotations

import pytest
from throwaway import PG_URL, empty_database

from cryodesk import db as dbmod
from cryodesk.base.fsio import du_size
from cryodesk.core import finals, jobs
from cryodesk.core.foreign import relion_clean
from cryodesk.core.foreign.service import open_project
from cryodesk.io.relion_pipeline import read_pipeline

from .relion_fixtures import build_project


@pytest.mark.skipif(not PG_URL, reason="set CRYODESK_TEST_PG_URL")
def test_relion_on_postgresql(tmp_path):
    empty_database(PG_URL)
    try:
        with dbmod.db.obj.connection_context():
            root = build_project(tmp_path / "r", "5.0")
            project, info = open_project(root)
            assert info["jobs"] == 7 and info["size"]["measured_bytes"] == du_size(root)
            finals.set_final(project, [jobs.get_job(project, "J6")])
            plan = relion_clean.plan_cleanup(project, preprocessing=True, intermediate=True, failed=True)
            assert all(r.ok for r in relion_clean.execute(project, plan))
            assert read_pipeline(root / "default_pipeline.star").version == "50001"
            project, info = open_project(root)
            assert info["jobs"] == 6 and jobs.get_job(project, "J6").is_final
    finally:
        dbmod.close_database()
