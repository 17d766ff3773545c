"""default_pipeline.star: the real 3.1 tutorial and built 4.0/5.0 layouts, read, written back, read again."""

from __future__ import annotations

import pytest
import starfile

from cryodesk.base.errors import DataError
from cryodesk.io.relion_pipeline import parse_pipeline, read_pipeline, write_pipeline

from .relion_fixtures import pipeline_text


def test_real_31_tutorial(realdata_dir, tmp_path):
    src = realdata_dir / "relion31_tutorial" / "default_pipeline.star"
    p = read_pipeline(src)
    assert (p.layout, p.version, p.job_counter, len(p.processes)) == ("3.1", "30001", 32, 31)
    c2d = p.process("Class2D/job008/")
    assert (c2d.alias, c2d.type, c2d.status, c2d.kind, c2d.number) == ("Class2D/LoG/", "8", "Succeeded", "Class2D", 8)
    assert p.parents()["Class2D/job008/"] == ["Extract/job007/"]
    oracle = starfile.read(src, always_dict=True)
    assert len(oracle["pipeline_nodes"]) == len(p.nodes)
    assert len(oracle["pipeline_input_edges"]) == len(p.input_edges)
    out = tmp_path / "default_pipeline.star"
    again = write_pipeline(out, p)
    assert again == p
    text = out.read_text()
    assert text.lstrip().startswith("# version 30001") and "_rlnPipeLineProcessType #3" in text
    back = starfile.read(out, always_dict=True)  # an independent reader agrees
    assert back["pipeline_processes"]["rlnPipeLineProcessStatus"].tolist() == [2] * 31


@pytest.mark.parametrize("layout", ["4.0", "5.0"])
def test_built_layouts_round_trip(layout, tmp_path):
    p = parse_pipeline(pipeline_text(layout))
    assert p.layout == layout and p.version == ("50001" if layout == "5.0" else "30001")
    assert [x.status for x in p.processes][-1] == "Failed"
    assert p.process("Class2D/job005/").type == "relion.class2d"
    assert p.parents()["Select/job006/"] == ["Class2D/job005/"]
    assert p.nodes[0].depth == ("1" if layout == "5.0" else None)
    out = write_pipeline(tmp_path / "p.star", p)
    assert out == p
    text = (tmp_path / "p.star").read_text()
    assert ("_rlnPipeLineNodeTypeLabelDepth" in text) == (layout == "5.0")
    assert "_rlnPipeLineProcessStatusLabel" in text and "_rlnPipeLineProcessStatus #" not in text


def test_without_splits_like_relion_delete():
    p = parse_pipeline(pipeline_text("5.0"))
    kept, gone = p.without({"Class3D/job007/", "Select/job006/"})
    assert [x.name for x in gone.processes] == ["Select/job006/", "Class3D/job007/"]
    assert [n.name for n in gone.nodes] == ["Select/job006/particles.star"]
    assert ("Select/job006/particles.star", "Class3D/job007/") in gone.input_edges
    assert all(e[1] not in ("Class3D/job007/", "Select/job006/") for e in kept.input_edges)
    assert len(kept.processes) + len(gone.processes) == len(p.processes)


def test_bad_pipelines_are_named(tmp_path):
    with pytest.raises(DataError, match="not found"):
        read_pipeline(tmp_path / "default_pipeline.star")
    bad = pipeline_text("3.1" if False else "4.0").replace("relion.class3d Failed", "relion.class3d")
    with pytest.raises(DataError):
        parse_pipeline(bad, "x.star")
    with pytest.raises(DataError, match="not a RELION pipeline"):
        parse_pipeline("data_particles\nloop_\n_rlnX #1\n1\n", "y.star")
    three = (tmp_path / "s.star")
    three.write_text("data_pipeline_processes\nloop_\n_rlnPipeLineProcessName #1\n_rlnPipeLineProcessAlias #2\n"
                     "_rlnPipeLineProcessType #3\n_rlnPipeLineProcessStatus #4\nA/job001/ None 0 9\n")
    with pytest.raises(DataError, match="status '9'"):
        read_pipeline(three)


def _procs(*rows: str) -> str:
    return ("data_pipeline_processes\nloop_\n_rlnPipeLineProcessName #1\n_rlnPipeLineProcessAlias #2\n"
            "_rlnPipeLineProcessType #3\n_rlnPipeLineProcessStatus #4\n" + "".join(r + "\n" for r in rows))


def test_duplicate_and_overlong_job_names_are_clear_errors(tmp_path):
    with pytest.raises(DataError, match=r"p\.star: job number 1 appears twice"):
        parse_pipeline(_procs("Class2D/job001/ None 8 2", "Class2D/job001/ None 8 2"), "p.star")
    with pytest.raises(DataError, match="job number 3 appears twice"):
        parse_pipeline(_procs("Class2D/job003/ None 8 2", "Class3D/job003/ None 9 2"), "p.star")
    long = "Class2D/job007" + "A" * 200_000 + "/"
    with pytest.raises(DataError, match=r"200015 characters.*not a RELION job name") as err:
        parse_pipeline(_procs(f"{long} None 8 2"), "p.star")
    assert len(str(err.value)) < 300  # the message names it, without the 200,000 characters
    for bad in ("../victim/Class2D/job003/", "/tmp/x/job004/", "Class2D/job006x/"):
        with pytest.raises(DataError, match="not a RELION job name"):
            parse_pipeline(_procs(f"{bad} None 8 2"), "p.star")


def test_project_open_of_a_bad_pipeline_is_a_clear_cli_error(tmp_path, capsys, monkeypatch):
    from cryodesk.cli.main import main

    root = tmp_path / "rel"
    (root / "Class2D/job001").mkdir(parents=True)
    (root / "default_pipeline.star").write_text(_procs("Class2D/job001/ None 8 2", "Class2D/job001/ None 8 2"))
    monkeypatch.setenv("CRYODESK_DB", str(tmp_path / "db.sqlite"))
    assert main(["project", "open", str(root)]) != 0
    err = capsys.readouterr().err
    assert "job number 1 appears twice" in err and "Traceback" not in err and "IntegrityError" not in err


def test_a_type_name_too_long_for_the_file_system_opens_with_the_job_unreadable(tmp_path, database):
    from cryodesk.core.foreign.service import open_project

    root = tmp_path / "rel"
    root.mkdir()
    name = "C" + "x" * 300 + "/job001/"  # a valid RELION name whose directory cannot exist (NAME_MAX 255)
    (root / "default_pipeline.star").write_text(_procs(f"{name} None 8 2"))
    project, info = open_project(root)
    assert info["jobs"] == 1
