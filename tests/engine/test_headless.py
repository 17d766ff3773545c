"""The headless engine's loop (``cryodesk job run``): a signal cancels, a body that ignores it is given up."""

from __future__ import annotations

import os
import signal
import threading

from cryodesk.engine import headless
from cryodesk.engine.headless import HeadlessEngine, run_until_idle


def test_a_body_that_ignores_the_cancel_is_given_up_after_the_grace_time(database, monkeypatch):
    monkeypatch.setattr(headless, "FORCE_AFTER_S", 0.3)
    engine = HeadlessEngine(io_threads=1)
    release, seen = threading.Event(), []

    def stuck(progress, cancel_event):  # (as a read from a hung mount: no cancellation point)
        release.wait(10)
        return "done"

    def force(signum):  # job run records the jobs killed and ends the process here
        seen.append(("force", signum, engine.is_idle))
        release.set()

    engine.submit_task("stuck", stuck)
    sent = []

    def tick():  # from inside the loop, so its handler is installed
        if not sent:
            sent.append(os.kill(os.getpid(), signal.SIGTERM))

    signum = run_until_idle(engine, tick=tick, tick_ms=50, on_interrupt=lambda s: seen.append(("interrupt", s)),
                            on_force=force)
    assert signum == signal.SIGTERM
    assert seen == [("interrupt", signal.SIGTERM), ("force", signal.SIGTERM, False)]
    assert engine.shutdown(5000)


def test_jobs_run_in_dependency_order_and_report_through_hooks(project):
    from cryodesk.core import jobs

    parent = jobs.create_job(project, "t_source", "W1", params={"nbytes": 100})
    child = jobs.create_job(project, "t_step", "W1", [jobs.InputSpec("particles", parent.uid)])
    engine = HeadlessEngine()
    events = []
    engine.job_started.connect(lambda pu, ju: events.append(("started", ju)))
    engine.job_finished.connect(lambda pu, ju, st: events.append((st, ju)))
    plan = engine.queue(project, [child.uid, parent.uid])
    assert sorted(j.uid for j in plan.jobs) == [parent.uid, child.uid]
    assert run_until_idle(engine) is None
    assert engine.shutdown(5000)
    assert events == [("started", parent.uid), ("completed", parent.uid), ("started", child.uid),
                      ("completed", child.uid)]
    assert [j.status for j in jobs.get_jobs(project, [parent.uid, child.uid])] == ["completed", "completed"]


def test_an_error_in_a_poll_is_logged_and_the_loop_goes_on(database, caplog):
    engine = HeadlessEngine(poll_interval_ms=20)
    engine.start()
    calls = []

    def failing_poll():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("database is locked")

    engine.poll = failing_poll
    release = threading.Event()
    engine.submit_task("wait", lambda progress, cancel: release.wait(5))
    threading.Timer(0.3, release.set).start()
    assert run_until_idle(engine) is None  # (not ended by the poll's error)
    assert len(calls) >= 2 and "engine: poll failed" in caplog.text
    assert engine.shutdown(5000)
