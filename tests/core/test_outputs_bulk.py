"""``replace_outputs`` records thousands of outputs with a statement per 500 rows: every row, in order,
with the values peewee would store (numpy integers too), on SQLite and on PostgreSQL."""

from __future__ import annotations

import numpy as np
import pytest
from throwaway import PG_URL, pg_project

from cryodesk.core import jobs
from cryodesk.core.context import OutputFileRef
from cryodesk.db.models import OutputFile


def _check(project):
    job = jobs.create_job(project, "t_source")
    refs = [("particles", OutputFileRef("dataset", f"{job.uid}/a.cs", 0, 10)),
            ("particles", OutputFileRef("blob", f"{job.uid}/imported/\u00e9t\u00e9's \"x\".mrc", np.int64(2),
                                        np.uint64(2**40)))]
    refs += [("zz" if k % 7 else "particles", OutputFileRef("blob", f"{job.uid}/imported/s{k}.mrc", k % 3, k))
             for k in range(1201)]  # 2 full batches of 500 and a shorter one
    jobs.replace_outputs(job, refs[:3])
    jobs.replace_outputs(job, refs)  # replaced, not added to
    rows = list(OutputFile.select(OutputFile.group, OutputFile.kind, OutputFile.version, OutputFile.path,
                                  OutputFile.size_bytes).where(OutputFile.job == job.id).order_by(OutputFile.id).tuples())
    assert rows == [(g, r.kind, int(r.version), r.path, int(r.size_bytes)) for g, r in refs]
    assert all(type(v) is int for row in rows for v in (row[2], row[4]))
    jobs.replace_outputs(job, [])
    assert OutputFile.select().where(OutputFile.job == job.id).count() == 0


def test_many_outputs_sqlite(project):
    _check(project)


@pytest.mark.skipif(not PG_URL, reason="set CRYODESK_TEST_PG_URL to test against PostgreSQL")
def test_many_outputs_postgres(tmp_path):
    with pg_project(tmp_path) as p:
        _check(p)
