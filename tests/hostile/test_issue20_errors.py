"""Issue 20, item 12: a job's error is a sentence, never an exception's class and raw text.

Bad parameters are refused when they are set (naming the parameter): an int
beyond any real size (``particles_per_file=99999999999999999999`` ran until
``OverflowError``), a size that allocates terabytes (``MemoryError: Unable to
allocate 189. TiB``), ``5.5`` for an integer, ``nan``, a NUL byte (``embedded
null byte``).  What still goes wrong in a run (a full disk, memory, a binary
file read as text, a bug) is said as what was being done and where; the
traceback stays in ``job.log``.
"""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from cryodesk.base.errors import UsageError
from cryodesk.core import jobs, registry, runner
from cryodesk.core.registry import JobType, OutputGroup, Param
from cryodesk.db.models import Job

HUGE = "99999999999999999999"


@pytest.mark.parametrize("type_name, values, words", [
    ("restack_particles", {"particles_per_file": HUGE}, ["particles_per_file", "too large"]),
    ("restack_particles", {"particles_per_file": "0"}, ["particles_per_file", "at least 1"]),
    ("restack_particles", {"particles_per_file": "100000000000"}, ["particles_per_file", "at most"]),
    ("restack_particles", {"particles_per_file": "5.5"}, ["particles_per_file", "expects int"]),
    ("downsample_particles", {"new_box_size": "4000000"}, ["new_box_size", "at most 8192"]),
    ("class_2d", {"mask_radius_frac": "nan"}, ["mask_radius_frac", "finite"]),
    ("class_2d", {"num_classes": "-3"}, ["num_classes", "at least"]),
    ("h_source", {"nbytes": HUGE}, ["nbytes", "too large"]),
])
def test_bad_parameters_are_refused_when_set(project, type_name, values, words):
    with pytest.raises(UsageError) as err:
        jobs.create_job(project, type_name, "W1", params=values)
    assert all(w in str(err.value) for w in words), err.value
    j = jobs.create_job(project, "h_source", "W1")
    with pytest.raises(UsageError, match="nbytes"):
        jobs.set_params(project, j, {"nbytes": HUGE})
    assert not list(Path(project.directory).glob(f"J{j.number + 1}"))  # nothing half-made


def test_nul_byte_in_a_text_parameter_is_refused():
    p = Param("path", "", "str")
    with pytest.raises(UsageError, match="'path' contains a NUL byte"):
        p.coerce("a\x00b")
    with pytest.raises(UsageError, match="at most 4096"):
        p.coerce("x" * 5000)


def _raiser(exc_factory):
    def run(ctx):
        raise exc_factory(ctx)

    return run


def _nospace(ctx):
    return OSError(errno.ENOSPC, "No space left on device", str(ctx.job_dir / "restacked" / "batch_0001.mrc"))


CASES = {
    "h_err_value": (lambda ctx: ValueError("invalid literal for int() with base 10: 'x'"), "unexpected internal error"),
    "h_err_memory": (lambda ctx: MemoryError("Unable to allocate 189. TiB for an array with shape (99,)"),
                     "not enough memory (it needed 189. TiB)"),
    "h_err_unicode": (lambda ctx: b"\xff".decode("utf-8"), "not valid UTF-8"),
    "h_err_overflow": (lambda ctx: OverflowError("cannot convert float infinity to integer"), "too large"),
    "h_err_nospace": (_nospace, "No space left on device while writing J1/restacked/batch_0001.mrc"),
    "h_err_nulpath": (lambda ctx: open(str(ctx.job_dir) + "/a\x00b"), "unexpected internal error"),
}
for _name, (_factory, _) in CASES.items():
    registry.register(JobType(_name, "Test failure", "utilities", params=(),
                              outputs=(OutputGroup("particles", "particle"),), run=_raiser(_factory)))


@pytest.mark.parametrize("type_name", sorted(CASES))
def test_run_failure_is_a_sentence_and_the_detail_is_in_the_log(project, type_name):
    j = jobs.create_job(project, type_name, "W1")
    runner.run_job(project, j)
    j = Job.get_by_id(j.id)
    assert j.status == "failed"
    assert CASES[type_name][1] in j.error, j.error
    for raw in ("Error:", "Errno", "embedded null byte", "invalid literal", "codec can't decode", "Traceback"):
        assert raw not in j.error, j.error
    log = (Path(project.directory) / j.directory / "job.log").read_text()
    assert "Traceback" in log  # the detail is kept where a developer looks
