"""Issue 20, data loss: symlinked state directories, crafted journal items, running readers, bad job uids.

Each test first reproduced its failure on the code it was written against
(or, where the consolidation had fixed it already, fails when the fix is
reverted); see the issue's items 1, 2, 5 and 9.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import pytest

from cryodesk.cli.main import main
from cryodesk.core import jobs, runner


@pytest.fixture
def cli(qapp, tmp_path, monkeypatch, capsys):
    """``run(*argv) -> (code, out, err)`` of the real CLI on P1 with W1 (a QApplication exists first, as in the
    GUI tests: ``job run`` would otherwise make a QCoreApplication, and a later widget test would abort)."""
    monkeypatch.setenv("CRYODESK_DB", str(tmp_path / "cli.sqlite"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))

    def run(*argv):
        code = main([str(a) for a in argv])
        out, err = capsys.readouterr()
        return code, out, err

    assert run("project", "create", "--title", "X", "--dir", tmp_path / "p")[0] == 0
    assert run("workspace", "create", "P1", "--title", "main")[0] == 0
    run.pdir = tmp_path / "p"
    return run


def _outside_gc(tmp_path: Path) -> Path:
    """A directory outside the project holding an ``x.gc`` directory (someone else's data)."""
    out = tmp_path / "elsewhere"
    (out / "x.gc" / "inner").mkdir(parents=True)
    (out / "x.gc" / "inner" / "f.txt").write_text("keep me")
    (out / "trash").mkdir()
    (out / "trash" / "y.gc").mkdir()
    (out / "trash" / "y.gc" / "f.txt").write_text("keep me too")
    return out


# -- item 1: a symlinked .cryodesk/trash or .cryodesk ---------------------------------------------

COMMANDS = [("project", "show", "P1"), ("cleanup", "P1", "--non-final", "clear", "--yes"),
            ("job", "clear", "P1", "J1"), ("trash-empty",)]


@pytest.mark.parametrize("which", ["trash", "state"])
def test_symlinked_state_dir_never_collects_where_it_points(cli, tmp_path, which):
    """``project show``, ``cleanup``, ``job clear`` and emptying the trash, with the link in place."""
    from cryodesk.base import trashworker
    from cryodesk.core import deletion

    assert cli("job", "create", "P1", "h_source")[0] == 0
    assert cli("job", "run", "P1", "J1")[0] == 0
    out = _outside_gc(tmp_path)
    state = cli.pdir / ".cryodesk"
    state.mkdir(exist_ok=True)
    if which == "trash":
        import shutil

        shutil.rmtree(state / "trash", ignore_errors=True)
        (state / "trash").symlink_to(out)
    else:
        for e in state.iterdir():  # (lock and reserve files: moved with it, as a user's mv would)
            os.rename(e, out / e.name) if not (out / e.name).exists() else None
        state.rmdir()
        state.symlink_to(out)
    for argv in COMMANDS:
        if argv == ("trash-empty",):  # the emptier, in this process and as its own process's main
            code, err = trashworker.main([str(cli.pdir)]), "\n".join(deletion.empty_now(cli.pdir))
        else:
            code, _, err = cli(*argv)
        deletion.wait_for_emptiers()
        assert (out / "x.gc" / "inner" / "f.txt").read_text() == "keep me", (argv, code, err)
        assert (out / "trash" / "y.gc" / "f.txt").read_text() == "keep me too", (argv, code, err)
        assert "Traceback" not in err
        if argv[0] in ("cleanup", "job"):
            # a deletion needs the state directory: refused, with the reason, and nothing was cleared
            assert code != 0 and "is a symlink" in err and ".cryodesk" in err, (argv, code, err)
            assert (cli.pdir / "J1" / "data.bin").exists()
        else:
            assert code == 0, (argv, err)
        if argv[0] == "project":  # a read command says what is wrong (and changes nothing)
            assert "is a symlink" in err and "nothing in this project can be cleared or deleted" in err, err


# -- item 2: every action rechecks a crafted or stale journal item against a final job and an ancestor of final --

def _final_pair(project):
    """J1 (source) -> J2 (step, final): J1 is an ancestor of final.  Returns (J1, J2)."""
    from cryodesk.core import finals

    a = jobs.create_job(project, "h_source", "W1", params={"nbytes": 50})
    runner.run_job(project, a)
    b = jobs.create_job(project, "h_step", "W1", [jobs.InputSpec("particles", a.uid)], params={"nbytes": 20})
    runner.run_job(project, b)
    assert finals.set_final(project, [b]).ok
    return a, b


_FILE = {"J1": "data.bin", "J2": "step.bin"}


def _crafted_item(project, action, uid: str, require: dict, include_finals: bool) -> dict:
    paths = [uid] if action.whole_dir else [f"{uid}/{_FILE[uid]}"]
    versions = {"require": {**require, "project_id": project.uuid, "include_finals": include_finals},
                "groups": {"particles": [0]}}
    if action.name.startswith("relion_"):
        versions["dir"] = "Trash/Class2D/job001" if action.jobless else "Class2D/job001"
        if action.jobless:  # (RELION's trash: the entry itself)
            paths = [versions["dir"]]
    return {"job": uid, "action": action.name, "paths": paths, "versions": versions}


def _job_actions():
    from cryodesk.core.deletion import ACTIONS
    from cryodesk.core.deletion.plan import JOB_UID

    return sorted(n for n, a in ACTIONS.items() if a.uid_pattern is JOB_UID)


@pytest.mark.parametrize("origin", ["crafted", "stale"])
@pytest.mark.parametrize("target", ["final", "ancestor"])
def test_journal_items_of_every_action_never_remove_a_final_or_an_ancestor(project, target, origin):
    """A journal item of every registered action against a final job / an ancestor of final.

    ``crafted``: a journal this database never made, claiming every condition (a project delete
    "with its finals"): before, a ``delete_project`` item deleted the final job and a ``clear``
    item cleared its ancestor.  ``stale``: a plan this database made before the job became final
    (or an ancestor of one): each action's own recheck must refuse it.
    """
    from cryodesk.core import deletion
    from cryodesk.core.deletion import ACTIONS
    dexec = importlib.import_module("cryodesk.core.deletion.execute")  # (the package exports the function)
    from cryodesk.db.models import Job, OutputFile

    a, b = _final_pair(project)
    pdir = Path(project.directory)
    victim = b if target == "final" else a
    jdir = pdir / ".cryodesk" / "journal"
    jdir.mkdir(parents=True, exist_ok=True)
    claims = {"allow_ancestor": True, "status_in": ["completed"]} if origin == "crafted" else {}
    users = pdir / "Trash" / "Class2D" / "job001"  # a user's directory in a cryodesk project, not RELION's trash
    users.mkdir(parents=True)
    (users / "keep.txt").write_text("mine")
    for k, name in enumerate(_job_actions()):
        plan_id = f"{k + 1:012x}"
        item = _crafted_item(project, ACTIONS[name], victim.uid, claims, include_finals=origin == "crafted")
        (jdir / f"{plan_id}.json").write_text(json.dumps({"id": plan_id, "project": project.uid, "items": [item]}))
        if origin == "stale":
            dexec._register(plan_id)  # (as execute does before it writes a journal)
        results = deletion.recover(project)
        said = [(r.action, r.ok, r.message) for r in results]
        row = Job.get_or_none(Job.id == victim.id)
        assert row is not None, (name, said)
        assert row.status == "completed" and OutputFile.select().where(OutputFile.job == row).exists(), (name, said)
        assert (pdir / victim.uid / _FILE[victim.uid]).exists(), (name, said)
        assert not deletion.pending(project), (name, said)
        assert not any(r.ok for r in results), (name, said)
        if origin == "crafted":  # set aside, with the reason, never replayed again
            assert (jdir / "rejected" / f"{plan_id}.json").exists(), (name, said)
            assert "did not make the plan" in (jdir / "rejected" / f"{plan_id}.why").read_text()
    assert (users / "keep.txt").read_text() == "mine"
    assert {"clear", "delete", "clear_versions", "discard", "discard_temp", "delete_project",
            "relion_empty_trash"} <= set(_job_actions())


# -- item 9 (part): a journal item whose job is ``..`` (or any uid that escapes) ----------------------------

BAD_UIDS = ["..", "../J1", "/etc", "", "J1\0", "J0", "J99999999999999999999", "S1/.."]


def test_journal_naming_an_escaping_job_is_set_aside_and_every_command_works(cli):
    assert cli("job", "create", "P1", "h_source")[0] == 0
    assert cli("job", "run", "P1", "J1")[0] == 0
    jdir = cli.pdir / ".cryodesk" / "journal"
    jdir.mkdir(parents=True, exist_ok=True)
    items = [{"job": uid, "action": action, "paths": [f"{uid}/x" if uid else "x"]}
             for uid in BAD_UIDS for action in ("clear", "delete")]
    (jdir / "0123456789ab.json").write_text(json.dumps({"id": "0123456789ab", "project": "P1", "items": items}))
    for argv in (("project", "show", "P1"), ("job", "list", "P1"), ("job", "show", "P1", "J1")):
        code, _, err = cli(*argv)  # read commands never replay a journal, and never crash on one
        assert code == 0 and "Traceback" not in err, (argv, err)
    code, out, err = cli("job", "final", "P1", "J1")  # a write: the journal is replayed first
    assert code == 0 and "Traceback" not in err, err
    warnings = [line for line in err.splitlines() if line.strip()]
    assert len(warnings) == 1 and "set aside" in warnings[0] and "is not a job uid" in warnings[0], err
    assert not (jdir / "0123456789ab.json").exists()
    why = (jdir / "rejected" / "0123456789ab.why").read_text()
    assert f"{len(items)} item(s) refused" in why, why
    code, _, err = cli("job", "final", "P1", "J1", "--unset")  # not retried: nothing more to say
    assert code == 0 and err.strip() == "", err
    assert (cli.pdir / "J1" / "data.bin").exists()


def test_a_journal_this_database_made_with_an_escaping_job_is_set_aside_too(project):
    """Even a journal this database made (its intent recorded) is set aside when an item is refused."""
    from cryodesk.core import deletion

    dexec = importlib.import_module("cryodesk.core.deletion.execute")
    a = jobs.create_job(project, "h_source", "W1", params={"nbytes": 10})
    runner.run_job(project, a)
    jdir = Path(project.directory) / ".cryodesk" / "journal"
    jdir.mkdir(parents=True)
    items = [{"job": uid, "action": "clear", "paths": [f"{uid}/data.bin"]} for uid in BAD_UIDS]
    items.append({"job": a.uid, "action": "clear", "paths": [f"{a.uid}/data.bin"]})
    (jdir / "abcdefabcdef.json").write_text(json.dumps({"id": "abcdefabcdef", "project": project.uid,
                                                        "items": items}))
    dexec._register("abcdefabcdef")
    results = deletion.recover(project)
    assert [r.action for r in results if r.action == "journal"] == ["journal"], results
    assert not deletion.pending(project)
    assert f"{len(BAD_UIDS)} item(s) refused" in (jdir / "rejected" / "abcdefabcdef.why").read_text()
    assert deletion.recover(project) == []  # never retried
