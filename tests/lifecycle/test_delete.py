"""``project delete``: a previewable plan, carried out through the deletion service; finals need a flag."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from cryodesk.base.errors import NotFound, Refused
from cryodesk.core import attach, deletion, finals, jobs, project_lifecycle, projects
from cryodesk.core.guard import ProjectReadOnly
from cryodesk.db.models import Change, Job, Project

from .helpers import build, tree


def test_dry_run_prints_the_plan_and_changes_nothing(dbs, tmp_path, cli):
    with dbs.use(dbs.a):
        p, _ = build("Plan", tmp_path / "plan", tmp_path / "raw")
        pdir = Path(p.directory)
        projects.create_session(p, "live")
        before = tree(pdir, skip_state=False)
    url = dbs.url[dbs.a]
    code, out, err = cli(url, "project", "delete", "P1", "--dry-run")
    assert code == 1 and "final results (J3)" in err and "--include-finals" in err and "--unset" in err
    code, out, err = cli(url, "project", "delete", "P1", "--dry-run", "--include-finals")
    assert code == 0, err
    plan = json.loads(out)
    assert plan["action"] == "delete_project" and plan["include_finals"] and plan["finals"] == ["J3"]
    items = plan["plan"]["items"]
    order = [i["job"] for i in items]
    assert set(order) == {"J1", "J2", "J3", "J4"} and order.index("J3") < order.index("J2") < order.index("J1")
    assert order.index("J4") < order.index("J1")  # children before parents
    assert all(i["action"] == "delete_project" and i["paths"] == [i["job"]] for i in items)
    by_job = {i["job"]: i for i in items}
    assert "final result" in by_job["J3"]["reason"] and "ancestor of a final" in by_job["J1"]["reason"]
    assert plan["sessions"][0]["uid"] == "S1" and {"path": "project.json"}.items() <= \
        next(r for r in plan["rest"] if r["path"] == "project.json").items()
    assert plan["links"] == 1 and plan["bytes"] >= plan["jobs_bytes"] > 0
    assert tree(pdir, skip_state=False) == before
    code, out, err = cli(url, "project", "delete", "P1", "--include-finals")  # stdin is not a terminal
    assert code == 1 and "without confirmation" in err and tree(pdir, skip_state=False) == before


def test_delete_removes_the_directory_and_rows_never_following_links(dbs, tmp_path, cli):
    with dbs.use(dbs.a):
        p, _ = build("Gone", tmp_path / "gone", tmp_path / "raw", final=False)
        pdir = Path(p.directory)
        outside = tmp_path / "outside"
        outside.mkdir()
        (outside / "keep.txt").write_text("not the project's")
        os.symlink(outside, pdir / "J2" / "dir_link")  # a link to a directory: removed as a link
        os.symlink(outside, pdir / "top_link")
        cursor = Change.select().count()
    url = dbs.url[dbs.a]
    code, out, err = cli(url, "project", "delete", "P1", "--yes")
    assert code == 0, err
    assert "deleted P1" in out
    assert not pdir.exists() and not list(pdir.parent.glob(".gone.cryodesk-deleted-*"))
    assert (outside / "keep.txt").read_text() == "not the project's"
    assert (tmp_path / "raw" / "movie.mrc").exists()
    with dbs.use(dbs.a):
        assert Project.select().count() == 0 and Job.select().count() == 0
        assert Change.select().where(Change.kind == "projects").count() > 0 and Change.select().count() > cursor
        with pytest.raises(NotFound):
            projects.get_project("P1")


def test_delete_is_refused_for_archived_detached_and_foreign_projects(dbs, tmp_path):
    with dbs.use(dbs.a):
        p, _ = build("No", tmp_path / "no", tmp_path / "raw", final=False)
        pdir = Path(p.directory)
        project_lifecycle.archive_project(p)
        with pytest.raises(ProjectReadOnly, match="P1 is archived.*deleted only while it is writable"):
            project_lifecycle.plan_delete(p)
        project_lifecycle.detach_project(p)
        with pytest.raises(NotFound, match="no project P1"):
            project_lifecycle.plan_delete("P1")
    with dbs.use(dbs.b):
        q = attach.attach_project(pdir)
        project_lifecycle.unarchive_project(q)
    with dbs.use(dbs.a):
        stale = attach.attach_project(pdir, force=True)  # A takes it back...
    with dbs.use(dbs.b):
        with pytest.raises(ProjectReadOnly, match="owned by another database"):  # ...so B may not delete it
            project_lifecycle.plan_delete(q)
    assert pdir.is_dir() and stale.uid == "P1"


def test_an_item_whose_recheck_fails_keeps_the_project(dbs, tmp_path):
    with dbs.use(dbs.a):
        p, _ = build("Recheck", tmp_path / "re", tmp_path / "raw", final=False)
        plan = project_lifecycle.plan_delete(p)
        assert plan.finals == [] and not plan.include_finals
        finals.set_final(p, [jobs.get_job(p, "J2")])  # marked final after the plan was made
        out = project_lifecycle.execute_delete(p, plan)
        assert not out["deleted"]
        assert any("J2" in e and "final" in e for e in out["errors"]), out["errors"]
        left = sorted(j.uid for j in Job.select().where(Job.project == p.id))
        assert "J2" in left and "J1" in left and "J3" not in left  # its ancestors stay, its descendant went
        assert Path(p.directory, "J2", "step.bin").is_file() and not deletion.pending(p)
        with pytest.raises(Refused, match="final results"):
            project_lifecycle.plan_delete(p)
