"""The Qt-free services behind the app's builder, menus and error messages: builder, availability, explain."""

from __future__ import annotations

import pytest

from cryodesk.base.errors import UsageError
from cryodesk.core import availability, builder, jobs, runner


def test_catalogue_groups_types_by_category_in_pipeline_order():
    cat = builder.catalogue()
    names = [g["category"] for g in cat]
    assert names[0] == "import" and names.index("extraction") < names.index("utilities")
    restack = next(t for g in cat for t in g["types"] if t["name"] == "restack_particles")
    assert restack["category_title"] == "Utilities" and restack["description"] and restack["runnable"]
    (slot,) = restack["inputs"]
    assert (slot["name"], slot["type"], slot["required"], slot["multiple"]) == ("particles", "particle", True, False)
    assert {p["name"] for p in restack["params"]} >= {"particles_per_file", "output_f16"}


def test_check_params_reports_each_field():
    values, errors = builder.check_params("downsample_particles", {"new_box_size": "abc", "particles_per_file": "x"})
    assert "expects int, got 'abc'" in errors["new_box_size"]
    assert "expects int" in errors["particles_per_file"] and values == {}
    # an empty box is allowed (consolidation keeps the box) and is not sent as a value
    values, errors = builder.check_params("downsample_particles", {"new_box_size": ""})
    assert errors == {} and "new_box_size" not in values
    values, errors = builder.check_params("downsample_particles", {"new_box_size": " 64 ", "output_f16": True})
    assert errors == {} and values == {"new_box_size": 64, "output_f16": True}


def test_output_choices_build_and_next_steps(project):
    src = jobs.create_job(project, "t_source", "W1")
    runner.run_job(project, src)
    it = jobs.create_job(project, "t_iter", "W1", [jobs.InputSpec("particles", src.uid)], {"iterations": 3})
    runner.run_job(project, it)
    choices = builder.output_choices(project, "particle", "W1")
    by = {(c.uid, c.output): c for c in choices}
    assert by[(it.uid, "classes")].versions[-1] >= 1 and by[(src.uid, "particles")].versions == [0]
    assert choices[0].uid == it.uid  # newest first
    assert "(v0)" in by[(src.uid, "particles")].label
    with pytest.raises(UsageError, match="connect the required input"):
        builder.build_job(project, "t_step", "W1", {}, [])
    made = builder.build_job(project, "t_step", "W1", {"nbytes": "10"},
                             [builder.InputChoice("particles", it.uid, "classes", 1)], title="  from the form ")
    d = jobs.describe_jobs(project, [made])[0]
    assert d["inputs"] == [{"slot": "particles", "parent": it.uid, "output": "classes", "version": 1}]
    assert d["params"]["nbytes"] == 10 and d["title"] == "from the form"
    steps = builder.next_steps(project, src.uid)
    assert [s["type"] for s in steps] == ["restack_particles", "downsample_particles", "export_particles"]
    assert all(s["output"] == "particles" and s["slot"] == "particles" for s in steps)


def test_availability_judges_actions_with_the_rules_words():
    done = availability.JobState("J3", "t_step", "completed", False, False)
    final = availability.JobState("J5", "t_step", "completed", True, False)
    running = availability.JobState("J7", "t_step", "running", False, False)
    assert availability.judge("mark_final", [done]) == (True, "")
    ok, why = availability.judge("mark_final", [final])
    assert not ok and "already marked as final" in why
    ok, why = availability.judge("delete", [final, running])
    assert not ok and "J5: it is marked as a final result" in why and "J7: it is running" in why
    assert availability.judge("kill", [done, running])[0]  # one job it applies to is enough
    assert "clear it before running it again" in availability.why_not("run", done)
    assert availability.why_not("warm", availability.JobState("J2", "t_step", "building", False, False)).startswith(
        "J2 has no outputs now")
    assert availability.judge("clear", [])[1] == "select a job first"


def test_explain_names_the_cleared_job(project):
    from cryodesk.core import actions
    from cryodesk.core.explain import explain

    src = jobs.create_job(project, "t_source", "W1")
    runner.run_job(project, src)
    step = jobs.create_job(project, "t_step", "W1", [jobs.InputSpec("particles", src.uid)])
    runner.run_job(project, step)
    actions.clear_jobs(project, [jobs.get_job(project, src.uid)])
    msg = f"cannot cache {project.directory}/{src.uid}/out.bin: No such file or directory"
    text = explain(project, msg, step.uid)
    assert text.startswith(f"{step.uid} reads files of {src.uid}, and {src.uid} was cleared")
    assert f"re-run {src.uid}" in text and msg in text
    assert explain(project, f"{project.directory}/J999/x: No such file or directory").startswith("J999 was deleted")
    assert explain(project, "disk full") == "disk full"
