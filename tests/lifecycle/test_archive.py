"""An archived project is read-only: every modifying command refused ("P1 is archived"), reads still work.

Through the command line (the same services as the app), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cryodesk.base.errors import DataError, Refused, UsageError
from cryodesk.core import attach, lifecycle, project_lifecycle, projects
from cryodesk.db.models import Job, Project

from .helpers import build, manifests, rows, tree

MODIFYING = [
    ("workspace", "create", "P1", "--title", "x"),
    ("job", "create", "P1", "l_source", "-w", "W1"),
    ("job", "final", "P1", "J2"),
    ("job", "final", "P1", "J3", "--unset"),
    ("job", "clear", "P1", "J2"),
    ("job", "delete", "P1", "J4"),
    ("job", "mark-complete", "P1", "J5"),
    ("job", "link", "P1", "J4", "-w", "W2"),
    ("job", "unlink", "P1", "J1", "-w", "W2"),
    ("job", "move", "P1", "J4", "-w", "W2"),
    ("job", "clone", "P1", "J4", "-w", "W1"),
    ("job", "set-param", "P1", "J4", "nbytes=5"),
    ("job", "run", "P1", "J4"),
    ("job", "queue", "P1", "J4"),
    ("cleanup", "P1", "--failed", "delete", "--yes"),
    ("project", "set", "P1", "delete_intermediate=false"),
    ("project", "set-default", "P1", "cache_particles=false"),
    ("settings", "set", "delete_intermediate", "false", "--project", "P1"),
    ("settings", "unset", "delete_intermediate", "--project", "P1"),
    ("settings", "set", "delete_intermediate", "false", "--job", "P1", "J4"),
    ("project", "delete", "P1", "--yes", "--include-finals"),
]

READING = [
    ("project", "list", "--json"),
    ("project", "show", "P1", "--json"),
    ("project", "size", "P1", "--refresh", "--json"),
    ("job", "list", "P1", "--json"),
    ("job", "show", "P1", "J3", "--json"),
    ("job", "select", "P1", "--ancestors", "J3"),
    ("cleanup", "P1", "--failed", "delete", "--dry-run"),
    ("job", "delete", "P1", "J4", "--dry-run"),
    ("settings", "show", "--project", "P1", "--json"),
]


@pytest.fixture
def archived(dbs, tmp_path):
    """P1 (W1, W2; J1 in both, J5 failed), archived."""
    with dbs.use(dbs.a):
        p, _ = build("Archive me", tmp_path / "arch", tmp_path / "raw")
        projects.create_workspace(p, "second")
        from cryodesk.core import actions, jobs

        actions.link(p, [jobs.get_job(p, "J1")], "W2")
        j5 = jobs.create_job(p, "l_source", "W1")
        Job.update(status="failed").where(Job.id == j5.id).execute()
        from cryodesk.core import sizes

        sizes.refresh_project_size(p)  # (measuring is allowed while archived: measured before, to compare)
        project_lifecycle.archive_project(p)
        yield dbs.url[dbs.a], Project.get_by_id(p.id)


def test_every_modifying_command_is_refused_and_changes_nothing(archived, dbs, cli):
    url, p = archived
    pdir = Path(p.directory)
    with dbs.use(dbs.a):
        before_rows = rows(p)
    before_disk, before_manifests = tree(pdir, skip_state=False), manifests(pdir)
    for argv in MODIFYING:
        code, out, err = cli(url, *argv)
        assert code == 1, (argv, code, out, err)
        assert "P1 is archived" in err and "unarchive" in err, (argv, err)
    with dbs.use(dbs.a):
        assert rows(p) == before_rows
    assert tree(pdir, skip_state=False) == before_disk and manifests(pdir) == before_manifests
    code, _, err = cli(url, "project", "archive", "P1")
    assert code == 2 and "already archived" in err


def test_browsing_sizes_and_exports_still_work(archived, cli):
    url, p = archived
    for argv in READING:
        code, out, err = cli(url, *argv)
        assert code == 0, (argv, err)
    code, out, _ = cli(url, "project", "list", "--json")
    assert json.loads(out)[0]["state"] == "archived" and json.loads(out)[0]["archived_at"]
    code, out, _ = cli(url, "project", "list")
    assert "archived" in out


def test_archive_is_recorded_in_the_manifest_and_survives_detach_attach(archived, dbs):
    url, p = archived
    doc = json.loads((Path(p.directory) / "project.json").read_text())
    assert doc["archived_at"] and doc["id"] == p.uuid
    with dbs.use(dbs.a):
        project_lifecycle.detach_project(p)
    with dbs.use(dbs.b):
        q = attach.attach_project(p.directory)
        assert q.archived_at is not None
        with pytest.raises(DataError, match="P1 is archived"):
            projects.create_workspace(q, "no")


def test_unarchive_checks_the_directory_is_the_same_project_and_rebinds_it(archived, dbs, tmp_path):
    url, p = archived
    old = Path(p.directory)
    away = tmp_path / "tape" / "apo"
    away.parent.mkdir()
    os.rename(old, away)  # to long-term storage and back, to another place
    with dbs.use(dbs.a):
        assert rows(p)["jobs"]  # browsing works while the directory is away
        with pytest.raises(DataError, match="holds no project.json.*--path"):
            project_lifecycle.unarchive_project(p)
        other, _ = build("Other", tmp_path / "other", tmp_path / "raw")
        with pytest.raises(DataError, match="holds another project"):
            project_lifecycle.unarchive_project(p, other.directory)
        q = project_lifecycle.unarchive_project(p, away)
        assert q.directory == str(away) and q.archived_at is None
        assert json.loads((away / "project.json").read_text())["archived_at"] is None
        projects.create_workspace(q, "writable again")
        with pytest.raises(UsageError, match="is not archived"):
            project_lifecycle.unarchive_project(q)


def test_archive_is_refused_while_a_job_is_queued(dbs, tmp_path):
    with dbs.use(dbs.a):
        p, _ = build("Busy", tmp_path / "busy", tmp_path / "raw")
        from cryodesk.core import jobs

        plan = lifecycle.plan_queue(p, [jobs.get_job(p, "J4")])
        lifecycle.mark_queued(plan.jobs)
        with pytest.raises(Refused, match=r"cannot archive it while jobs are queued or running: J4 \(queued\)"):
            project_lifecycle.archive_project(p)
        assert Project.get_by_id(p.id).archived_at is None

