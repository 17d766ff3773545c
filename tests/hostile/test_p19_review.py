"""Review of the Qt-free job run path, the hourly temp walk and the float16 restack (p19): regressions."""

from __future__ import annotations

import pytest

from cryodesk.cli.main import main


@pytest.mark.parametrize("argv", [["--help", "job"], ["-h", "job", "run"], ["--db", "x.sqlite", "-h", "cleanup"]])
def test_top_level_help_before_a_command_still_lists_every_command(argv, capsys):
    # the parser of only the named command is built; a -h before that name is the whole program's help
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for command in ("job", "cleanup", "project", "worker", "lane", "settings"):
        assert f"    {command} " in out, out


def test_float16_restack_gives_the_same_nan_bits_with_numpy_as_with_numba():
    # a restack below 1 GiB now casts with numpy; its NaN pixels (kept by a float16 restack) must get the
    # bits the numba kernel (every float16 restack before) writes: numpy keeps a signalling NaN signalling
    import numpy as np

    from cryodesk.kernels.batch import ParticleTransform

    bits = np.zeros((2, 4, 4), np.uint32)
    bits[0].flat[:10] = [0x7FA00000, 0x7F800001, 0xFF800001, 0x7F802001, 0x7FC00000, 0xFFC00000, 0x7FBFFFFF,
                         0x7F801FFF, 0x3F800000, 0xFFA00000]
    x = bits.view(np.float32)
    got = {}
    for kernel in ("numpy", "numba"):
        t = ParticleTransform(2, (4, 4), np.float32, float16=True, float16_kernel=kernel)
        t.inspect(x, 0)
        got[kernel] = t(x, np.empty((2, 4, 4), np.float16), 0).view(np.uint16).tolist()
    assert got["numpy"] == got["numba"]


def test_an_error_in_a_workers_tick_is_logged_and_the_worker_goes_on(database, caplog):
    # worker run adopts queued jobs in the tick: one it cannot take (a job type unknown here) must not
    # end the worker and cut its running jobs short, as it did not when the tick was a Qt timer's slot
    import os
    import signal

    from cryodesk.base.errors import UsageError
    from cryodesk.engine.headless import HeadlessEngine, run_until_idle

    engine = HeadlessEngine()
    engine.start()
    calls = []

    def tick():
        calls.append(1)
        if len(calls) == 1:
            raise UsageError("unknown job type 'bogus'")
        os.kill(os.getpid(), signal.SIGTERM)  # a worker is stopped by a signal

    assert run_until_idle(engine, stop_when_idle=False, tick=tick, tick_ms=20) == signal.SIGTERM
    assert len(calls) >= 2 and "unknown job type 'bogus'" in caplog.text
    assert engine.shutdown(5000)


def test_a_worker_leaves_a_queued_job_of_a_type_it_does_not_know_and_runs_the_others(project):
    # a job queued with a type this process cannot load (a newer cryodesk's, a plugin not installed
    # here): claiming it stopped the worker and left the jobs claimed with it queued for ever
    from cryodesk.core import jobs, lifecycle
    from cryodesk.db.models import Job
    from cryodesk.engine.headless import HeadlessEngine, run_until_idle

    odd = jobs.create_job(project, "h_source", "W1", params={"nbytes": 10})
    good = jobs.create_job(project, "h_source", "W1", params={"nbytes": 10})
    lifecycle.mark_queued([odd, good])
    Job.update(type="newer_type").where(Job.id == odd.id).execute()
    engine = HeadlessEngine()
    taken = engine.adopt_queued(project)
    assert [j.uid for j in taken] == [good.uid]
    assert run_until_idle(engine) is None
    assert engine.shutdown(5000)
    assert [j.status for j in jobs.get_jobs(project, [odd.uid, good.uid])] == ["queued", "completed"]
    assert [j.uid for j in lifecycle.claimable(project)] == [odd.uid]  # still there for a worker that knows it


def test_a_job_type_whose_module_fails_to_import_is_a_clear_error(monkeypatch, tmp_path, capsys):
    # types load on demand now: a broken module (a library missing) is met by the command that needs
    # its type, which says so in a sentence (it was a traceback)
    import cryodesk.jobs as job_types
    from cryodesk.base.errors import CryodeskError
    from cryodesk.core import registry

    monkeypatch.setitem(job_types.MODULES, "broken_type", "_no_such_module")
    with pytest.raises(CryodeskError, match=r"cannot load job type 'broken_type'.*_no_such_module"):
        registry.get("broken_type")


def test_two_job_runs_racing_never_queue_a_job_the_other_already_queued_or_started(project):
    # two `job run`s of one job: both planned it while it was building; the second to queue it took it
    # over while the first ran it, then its start was refused and it marked the running job failed,
    # with no owner (a cleanup could then delete a running job's files)
    from cryodesk.core import jobs, lifecycle
    from cryodesk.engine.headless import HeadlessEngine

    job = jobs.create_job(project, "h_source", "W1", params={"nbytes": 10})
    late = HeadlessEngine()
    plan = lifecycle.plan_queue(project, [job], late.owner)  # planned while still building
    first = lifecycle.new_owner()
    lifecycle.mark_queued([job], first)
    jobs.set_status(jobs.get_job(project, job.uid), "running")  # the first one runs it
    assert lifecycle.mark_queued(plan.jobs, late.owner) == []
    row = jobs.get_job(project, job.uid)
    assert (row.status, row.owner_engine) == ("running", first["engine"])
    got = late.queue(project, [job.uid])  # through the engine: refused, said why
    assert got.jobs == [] and got.refused and "running" in got.refused[0][1]
    late.shutdown(5000)


def test_job_run_with_a_cpu_pool_size_below_one_runs_on_one_thread(project):
    # `job run --cpu-threads -1`: the Qt pool took it as one thread; the thread pool raised (a traceback)
    from cryodesk.core import jobs
    from cryodesk.engine.headless import HeadlessEngine, run_until_idle

    job = jobs.create_job(project, "h_source", "W1", params={"nbytes": 10})
    engine = HeadlessEngine(cpu_threads=-1, io_threads=0)
    engine.queue(project, [job.uid])
    assert run_until_idle(engine) is None
    assert engine.shutdown(5000)
    assert jobs.get_job(project, job.uid).status == "completed"


def test_listing_jobs_with_one_of_an_unknown_type_lists_them_all(project):
    # a job of a type this process does not know (a newer cryodesk's, a plugin not installed) is
    # shown, never run; `job list` / `job show` failed on it for the whole project
    from cryodesk.core import jobs
    from cryodesk.db.models import Job

    odd = jobs.create_job(project, "h_source", "W1", params={"nbytes": 10})
    plain = jobs.create_job(project, "h_source", "W1", params={"nbytes": 10})
    Job.update(type="newer_type").where(Job.id == odd.id).execute()
    got = jobs.describe_jobs(project, jobs.get_jobs(project, [odd.uid, plain.uid]))
    assert [(d["uid"], d["type"], d["category"]) for d in got] == [(odd.uid, "newer_type", None),
                                                                    (plain.uid, "h_source", "import")]
