"""The CLI of issue 16: project open, relion clean/delete, cryosparc preview (the same services as the GUI)."""

from __future__ import annotations

import json

from cryodesk.cli.main import main

from .cryosparc_fixtures import build
from .relion_fixtures import build_project


def _run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_relion_open_clean_delete(tmp_path, capsys):
    db = str(tmp_path / "cli.sqlite")
    root = build_project(tmp_path / "rel", "5.0")
    code, out, _ = _run(capsys, "--db", db, "project", "open", str(root))
    assert code == 0 and "as P1" in out and "(relion)" in out and "Trash/" in out
    code, out, _ = _run(capsys, "--db", db, "relion", "clean", "P1", "--intermediate", "--dry-run")
    plan = json.loads(out)
    assert code == 0 and [i["action"] for i in plan["items"]] == ["relion_intermediate"] and plan["bytes"] > 0
    assert (root / "Class2D/job005/run_it001_data.star").exists()  # a dry run changes nothing
    code, out, _ = _run(capsys, "--db", db, "relion", "clean", "P1", "--harsh", "--jobs", "J4")
    assert code == 0 and "freed" in out and not (root / "Extract/job004/Movies").exists()
    code, out, _ = _run(capsys, "--db", db, "relion", "delete", "P1", "J7")
    assert code == 0 and (root / "Trash/Class3D/job007/deleted_pipeline.star").is_file()
    code, out, err = _run(capsys, "--db", db, "project", "list")
    assert "P1" in out and "relion" in out
    _run(capsys, "--db", db, "project", "create", "--title", "mine", "--dir", str(tmp_path / "mine"))
    _run(capsys, "--db", db, "workspace", "create", "P2", "--title", "main")
    code, out, err = _run(capsys, "--db", db, "job", "import-from", "P1", "J4", "--into", "P2")
    assert code == 0 and "created P2 J1" in out, err


def test_cryosparc_open_and_refusals(tmp_path, capsys, realdata_dir):
    db = str(tmp_path / "cli.sqlite")
    root = build(tmp_path / "cs", realdata_dir / "cryosparc_job_docs")
    code, out, _ = _run(capsys, "--db", db, "project", "open", str(root))
    assert code == 0 and "managed by CryoSPARC — read-only" in out
    code, out, _ = _run(capsys, "--db", db, "cryosparc", "preview", "P1", "--json")
    assert json.loads(out)["tabs"]["killed"]["jobs"][0]["uid"] == "J2"
    code, out, err = _run(capsys, "--db", db, "job", "final", "P1", "J2")
    assert code != 0 and "managed by CryoSPARC — read-only" in err
    code, out, err = _run(capsys, "--db", db, "project", "open", str(tmp_path))
    assert code == 2 and "not a project cryodesk knows" in err
