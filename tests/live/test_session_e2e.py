"""Live sessions end to end: streaming, complete, compact, refuse while compacted, restore bit-identical."""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path

import pytest
from livehelpers import checksums, deliver

from cryodesk.base.errors import Refused, UsageError
from cryodesk.base.fsio import du_size
from cryodesk.core import sessions
from cryodesk.core.jobs import create_job
from cryodesk.core.runner import run_job
from cryodesk.engine.live import run_session


def _outputs(project, s) -> list[str]:
    return sorted(o["path"] for e in sessions.exposures(s) for o in (e.outputs or {}).values())


def _movie_sums(paths) -> dict:
    return {str(p): hashlib.sha256(Path(p).read_bytes()).hexdigest() for p in paths}


@pytest.fixture
def processed(project, session, movie_source, watched):
    """The session after three movies arrived and were processed, plus the movies' checksums."""
    delivered = deliver(movie_source, watched, 3)
    sessions.transition(project, session, "start")
    why, errors = run_session(project, session, idle_exit_s=0.3)
    assert (why, errors) == ("idle", [])
    return sessions.get_session(project, session.uid), _movie_sums(delivered)


def test_movies_written_while_it_runs_are_taken_once_they_stop_growing(project, session, movie_source, watched):
    # pieces come 0.12 s apart: a file still unchanged after 1 s has stopped growing (margin for a loaded machine)
    sessions.set_params(project, session, {"runner.settle_s": "1.0"})
    sessions.transition(project, session, "start")
    seen_partial = []

    def writer():
        deliver(movie_source[:2], watched)
        time.sleep(0.4)
        # a movie written slowly, in pieces: it must not be taken before it is complete
        data = movie_source[2].read_bytes()
        dest = watched / movie_source[2].name
        with open(dest, "wb") as f:
            for k in range(4):
                f.write(data[k * len(data) // 4:(k + 1) * len(data) // 4])
                f.flush()
                time.sleep(0.12)
                seen_partial.append(dest.stat().st_size)
        time.sleep(0.3)
        deliver(movie_source[3:], watched)

    t = threading.Thread(target=writer)
    t.start()
    try:
        why, errors = run_session(project, session, idle_exit_s=1.5)
    finally:
        t.join()
    assert errors == [] and why == "idle"
    d = sessions.describe(project, session)
    assert d["status"] == "running"  # idle exit: still running, a later start resumes it
    assert d["exposures_total"] == 4 and d["stage_counts"]["ready"] == 4
    assert sorted(Path(e["movie"]).name for e in d["exposures"]) == sorted(p.name for p in movie_source)
    slow = next(e for e in sessions.exposures(session) if Path(e.movie).name == movie_source[2].name)
    assert slow.movie_bytes == movie_source[2].stat().st_size  # taken whole, not while it grew
    assert len(set(seen_partial)) == 4
    for e in d["exposures"]:
        assert e["n_particles"] and e["defocus_A"] and e["judgement"] == "accepted"
        assert set(e["outputs"]) == {"micrograph", "thumbnail", "ctf_spectrum", "particles"}
    # outputs live in S1/, the movies stay where they were, untouched
    assert all(p.startswith("S1/") for p in _outputs(project, session))
    assert list(_movie_sums(movie_source).values()) == list(_movie_sums(watched / p.name for p in movie_source).values())
    assert sessions.get_session(project, session.uid).size_bytes == du_size(Path(project.directory) / "S1")


def test_complete_compact_refuse_restore_bit_identical(project, processed):
    s, movies = processed
    pdir = Path(project.directory)
    with pytest.raises(Refused, match="only a session marked completed"):
        sessions.compaction_plan(project, s)
    sessions.transition(project, s, "complete")
    before = checksums(pdir, _outputs(project, s))
    picks = {e.uid: e.picks for e in sessions.exposures(s)}
    plan = sessions.compaction_plan(project, s)
    assert set(plan.files_by_kind.values()) == {3} and all(plan.bytes_by_kind.values())
    assert plan.bytes == sum(du_size(pdir / r) for r in before)
    size_before = du_size(pdir / "S1")
    result = sessions.compact(project, s)
    assert result["freed_bytes"] == plan.bytes
    assert size_before - du_size(pdir / "S1") == plan.bytes  # disk bytes freed equal the plan
    assert not any((pdir / r).exists() for r in before)
    s = sessions.get_session(project, s.uid)
    assert s.status == "compacted" and {e.stage for e in sessions.exposures(s)} == {"compacted"}
    assert {e.uid: e.picks for e in sessions.exposures(s)} == picks  # picks, params, metadata kept
    assert all(e["defocus_A"] for e in sessions.describe(project, s)["exposures"])
    # every modification is refused while compacted, with a clear message
    for attempt in (lambda: sessions.set_params(project, s, {"thresholds.ctf_fit_min": "0.5"}),
                    lambda: sessions.transition(project, s, "start"),
                    lambda: sessions.set_manual(project, s, ["E1"], "reject"),
                    lambda: sessions.set_manual_picks(project, s, "E1", [(10, 10)]),
                    lambda: sessions.reset_failed(project, s)):
        with pytest.raises(Refused, match="compacted; it cannot be modified until it is restored"):
            attempt()
    with pytest.raises(Refused, match="compacted already"):
        sessions.compaction_plan(project, s)
    # restore: motion, CTF and extraction again, from the saved picks: the same bytes
    sessions.start_restore(project, s)
    why, errors = run_session(project, s)
    assert (why, errors) == ("restored", [])
    s = sessions.get_session(project, s.uid)
    assert s.status == "completed"
    assert checksums(pdir, _outputs(project, s)) == before
    assert {e.uid: e.picks for e in sessions.exposures(s)} == picks
    assert _movie_sums(movies) == movies  # raw data never touched


def test_thresholds_and_manual_choices_change_what_is_accepted(project, processed):
    """Also: the session runs the batch jobs' kernels (its micrograph is align_frames' sum, bit for bit)."""
    from cryodesk.jobs.preprocess_common import read_mrc
    from cryodesk.jobs.preprocess_motion import align_frames

    s, _ = processed
    e = sessions.exposures(s)[0]
    p = sessions.merged(s.params)["motion"]
    want, _ = align_frames(read_mrc(Path(e.movie)), e.results["psize_A"], p["bfactor"], p["max_shift_px"],
                           p["iterations"], p["tolerance_px"])
    assert (read_mrc(Path(project.directory) / e.outputs["micrograph"]["path"]) == want).all()
    fits = sorted(e["ctf_fit"] for e in sessions.describe(project, s)["exposures"])
    sessions.set_thresholds(project, s, ctf_fit_min=(fits[1] + fits[2]) / 2)  # while it could run: allowed
    d = sessions.describe(project, s)
    assert (d["accepted"], d["rejected"]) == (1, 2)
    worst = min(d["exposures"], key=lambda e: e["ctf_fit"])["uid"]
    sessions.set_manual(project, s, [worst], "accept")
    assert sessions.describe(project, s)["accepted"] == 2
    with pytest.raises(UsageError, match="unknown session parameter"):
        sessions.set_params(project, s, {"pick.diameterA": "80"})
    with pytest.raises(Refused, match="exposures were processed"):
        sessions.set_params(project, s, {"pick.diameter_A": "80"})


def test_manual_picks_then_export_feeds_restack_and_compaction_warns(project, processed):
    s, _ = processed
    e = sessions.exposures(s)[0]
    n = e.results["n_particles"]
    shape = e.results["shape"]
    with pytest.raises(UsageError, match="outside E1"):
        sessions.set_manual_picks(project, s, "E1", [(shape[1] + 5, 3)])
    sessions.set_manual_picks(project, s, "E1", [(shape[1] / 2, shape[0] / 2)])
    assert sessions.get_exposure(s, "E1").stage == "extraction"  # re-extracted with the manual pick
    sessions.transition(project, s, "start")
    run_session(project, s, idle_exit_s=0.2)
    e = sessions.get_exposure(s, "E1")
    assert e.stage == "ready" and e.results["n_particles"] == n + 1
    job = run_job(project, create_job(project, "session_export", None, (), {"session": s.uid}))
    assert job.status == "completed", job.error
    from cryodesk.core.jobs import InputSpec

    restack = run_job(project, create_job(project, "restack_particles", None,
                                          [InputSpec("particles", job.uid, "particles", None)]))
    assert restack.status == "completed", restack.error
    sessions.transition(project, s, "complete")
    plan = sessions.compaction_plan(project, s)
    assert any(f"{job.uid} (particles exported from S1) is used by {restack.uid}" in w and "restack" in w
               for w in plan.warnings)


def test_a_failing_exposure_is_reset_and_reprocessed(project, session, movie_source, watched):
    bad = watched / "broken.mrc"
    good = movie_source[0].read_bytes()
    bad.write_bytes(good[: len(good) // 2])  # truncated: the header promises more
    sessions.transition(project, session, "start")
    run_session(project, session, idle_exit_s=0.3)
    e = sessions.exposures(session)[0]
    assert e.stage == "failed" and e.failed_stage == "found"
    assert str(bad) in e.error and "corrupt MRC file" in e.error
    bad.write_bytes(good)  # the file is complete now
    assert sessions.reset_failed(project, session) == 1
    run_session(project, session, idle_exit_s=0.3)
    e = sessions.exposures(session)[0]
    assert e.stage == "ready" and e.error is None and e.results["n_particles"] > 0


def test_bad_input_gets_clear_errors(project, tmp_path):
    with pytest.raises(UsageError, match="needs --movies"):
        sessions.create(project, "")
    with pytest.raises(UsageError, match="inside the project directory"):
        sessions.create(project, str(Path(project.directory) / "raw" / "*.mrc"))
    with pytest.raises(UsageError, match="box_size_px must be an even number"):
        sessions.create(project, str(tmp_path / "*.mrc"), assignments={"extract.box_size_px": "33"})
    with pytest.raises(UsageError, match="is not float"):
        sessions.create(project, str(tmp_path / "*.mrc"), assignments={"pick.diameter_A": "big"})
