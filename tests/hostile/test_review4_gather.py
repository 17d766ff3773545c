"""Hostile review of the two-worker gather (each worker reads, checks, transforms and writes its own batches).

What a racing process, an unlucky machine or an impatient user does to ``execute_plan``: a second
Ctrl-C while the workers are being stopped, a source that disappears before the reader reaches it
while an earlier batch fails, stacks of both byte orders in one particle set, thousands of small
output stacks (descriptors), and two workers transforming at once (the same bytes as one).
"""

from __future__ import annotations

import hashlib
import os
import signal
import threading
import time

import mrcfile
import numpy as np
import pytest

from cryodesk.io.gather import SourceError, execute_plan, plan_gather
from cryodesk.io.mrc import write_stack
from cryodesk.kernels.batch import Float16Overflow, ParticleTransform

SHAPE = (8, 8)
FRAME = SHAPE[0] * SHAPE[1] * 4


def _stacks(tmp_path, n_stacks=6, n=10, spoil=None):
    rng = np.random.default_rng(7)
    arrays = [rng.standard_normal((n, *SHAPE)).astype(np.float32) for _ in range(n_stacks)]
    if spoil is not None:
        spoil(arrays)
    for k, a in enumerate(arrays):
        write_stack(tmp_path / f"s{k}.mrc", a)
    items = [(tmp_path / f"s{k}.mrc", i) for k in range(n_stacks) for i in range(n)]
    return arrays, items


def _digests(paths):
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


def _workers():
    return [t for t in threading.enumerate() if t.name.startswith("gather-worker-")]


class _Passthrough:
    def __init__(self, plan, fail_at=()):
        self.out_shape, self.out_dtype, self.fail_at = plan.out_shape, plan.out_dtype, set(fail_at)

    def __call__(self, src, dst, first):
        if first in self.fail_at:
            raise Float16Overflow(first, 1e9)
        return src


def test_a_later_source_gone_does_not_hide_an_earlier_batchs_error(tmp_path):
    """The read-ahead advice opens the sources of batches far ahead: a source the reader has not reached yet
    that is gone must not be the error when batch 0 itself fails (the first failing batch in order is)."""
    _, items = _stacks(tmp_path)
    plan = plan_gather(items, tmp_path / "out", particles_per_file=100).with_output(batch_bytes=5 * FRAME)
    (tmp_path / "s5.mrc").rename(tmp_path / "s5.gone")  # particles 50..59, batches 10 and 11
    with pytest.raises(Float16Overflow) as err:
        execute_plan(plan, _Passthrough(plan, fail_at={0}))
    assert err.value.item == 0
    # without an earlier failure the missing source is still the error, naming its first particle
    with pytest.raises(SourceError, match=r"s5\.mrc") as err:
        execute_plan(plan.with_output(), _Passthrough(plan))
    assert err.value.item == 50
    assert list((tmp_path / "out").iterdir()) == [] and not _workers()


def test_a_second_interrupt_while_the_workers_stop_still_removes_every_temp_file(tmp_path):
    """Ctrl-C, then Ctrl-C again while execute_plan waits for its workers: no temp file and no worker survive."""
    _, items = _stacks(tmp_path, n_stacks=2)
    plan = plan_gather(items, tmp_path / "out", particles_per_file=100).with_output(batch_bytes=2 * FRAME)
    main = threading.main_thread().ident
    assert threading.get_ident() == main
    cancelled = threading.Event()

    class Slow(_Passthrough):
        def __call__(self, src, dst, first):
            if first > 0 and cancelled.wait(5):
                time.sleep(0.2)  # the main thread is now joining this worker
                signal.pthread_kill(main, signal.SIGINT)  # the user presses Ctrl-C again
                time.sleep(0.3)
            return src

    def check_cancel():
        if not cancelled.is_set():
            cancelled.set()
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        execute_plan(plan, Slow(plan), check_cancel=check_cancel)
    assert not _workers()
    assert sorted(os.listdir(tmp_path / "out")) == []


def test_stacks_of_both_byte_orders_in_one_set_are_read_right(tmp_path):
    """A big-endian stack (old software, other machines) next to a little-endian one: every particle keeps its
    values (not its raw bytes read in the other order)."""
    a = np.arange(3 * 4 * 4, dtype=np.float32).reshape(3, 4, 4) - 20.5
    write_stack(tmp_path / "le.mrc", a)
    with mrcfile.new(str(tmp_path / "be.mrc"), overwrite=True) as m:
        m.set_data(a.astype(">f4"))
    items = [(tmp_path / "le.mrc", 0), (tmp_path / "be.mrc", 1), (tmp_path / "be.mrc", 2), (tmp_path / "le.mrc", 2)]
    for f16 in (False, True):
        plan = plan_gather(items, tmp_path / f"out{f16}", particles_per_file=10)
        t = ParticleTransform(plan.n_items, plan.in_shape, plan.in_dtype, float16=f16)
        plan = plan.with_output(out_shape=t.out_shape, out_dtype=t.out_dtype, batch_bytes=2 * 4 * 4 * 4)
        (path,) = execute_plan(plan, t)
        with mrcfile.open(str(path)) as m:
            np.testing.assert_array_equal(m.data.astype(np.float32), a[[0, 1, 2, 2]].astype(t.out_dtype))
        assert t.flags.tolist() == [0, 0, 0, 0]


def test_thousands_of_small_stacks_keep_few_descriptors_open(tmp_path):
    """One particle per output stack: each stack's descriptor is closed once it is complete."""
    _, items = _stacks(tmp_path, n_stacks=3, n=100)

    def open_fds():
        return len(os.listdir("/proc/self/fd"))

    before = open_fds()
    peak = [0]

    def on_write(fd, offset, nbytes):  # on the worker threads, after every batch
        peak[0] = max(peak[0], open_fds())

    plan = plan_gather(items, tmp_path / "out", particles_per_file=1).with_output(batch_bytes=FRAME)
    paths = execute_plan(plan, None, on_write=on_write, drop_written=True)
    assert len(paths) == 300 and all(p.stat().st_size == 1024 + FRAME for p in paths)
    assert peak[0] - before < 20  # (3 sources per worker and for the advice, a few outputs in flight)
    assert open_fds() == before and not _workers()


def test_two_workers_crop_and_convert_the_same_bytes_as_one(tmp_path):
    """The transform runs on two threads at once (per-thread scratch): the stacks and flags are one worker's."""
    pytest.importorskip("numba")
    def spoil(arrays):
        arrays[2][3, 1, 1] = np.nan
        arrays[1][4] = 0.0

    _, items = _stacks(tmp_path, n_stacks=4, n=25, spoil=spoil)
    items = items[::-1]
    out = {}
    for readers in (1, 2):
        plan = plan_gather(items, tmp_path / f"r{readers}", particles_per_file=30)
        t = ParticleTransform(plan.n_items, plan.in_shape, plan.in_dtype, new_shape=6, float16=True)
        plan = plan.with_output(out_shape=t.out_shape, out_dtype=t.out_dtype, batch_bytes=3 * FRAME)
        out[readers] = (_digests(execute_plan(plan, t, readers=readers)), t.flags.tolist())
    assert out[1] == out[2]
    assert sum(out[2][1]) == 1 + 2  # one NaN image, one all-zero image


def test_an_overflow_in_batch_k_loses_to_a_slower_read_error_in_batch_k_minus_1(tmp_path, monkeypatch):
    """Batch 3 overflows float16 at once; batch 2's read fails later on the other worker: batch 2's error is raised."""
    from cryodesk.io import gather as gather_mod

    def spoil(arrays):
        arrays[1][5, 2, 2] = 1e6  # item 15: batch 3 (5 items a batch)

    _, items = _stacks(tmp_path, spoil=spoil)
    plan = plan_gather(items, tmp_path / "out", particles_per_file=100)
    t = ParticleTransform(plan.n_items, plan.in_shape, plan.in_dtype, float16=True)
    plan = plan.with_output(out_shape=t.out_shape, out_dtype=t.out_dtype, batch_bytes=5 * FRAME)
    real = gather_mod._read_batch

    def read_batch(plan_, batch, buf, files, inspect=None):
        if batch.first == 10:
            time.sleep(0.4)
            raise gather_mod._source_error(plan_.sources[1], "injected EIO", 0, 10)
        return real(plan_, batch, buf, files, inspect)

    monkeypatch.setattr(gather_mod, "_read_batch", read_batch)
    with pytest.raises(SourceError) as err:
        execute_plan(plan, t)
    assert err.value.item == 10
    monkeypatch.setattr(gather_mod, "_read_batch", real)
    with pytest.raises(Float16Overflow) as err:
        execute_plan(plan.with_output(out_shape=t.out_shape, out_dtype=t.out_dtype, batch_bytes=5 * FRAME), t)
    assert err.value.item == 15
    assert list((tmp_path / "out").iterdir()) == [] and not _workers()


@pytest.mark.parametrize("when", [0, 1, 3, 7, 11])
@pytest.mark.parametrize("what", [KeyboardInterrupt, RuntimeError])
def test_a_cancel_at_any_point_leaves_nothing(tmp_path, when, what):
    """check_cancel (or progress) raising at its n-th call: no stack, no temp file, no worker, no descriptor."""
    _, items = _stacks(tmp_path)
    plan = plan_gather(items, tmp_path / "out", particles_per_file=7).with_output(batch_bytes=2 * FRAME)
    calls = [0]

    def check_cancel():
        calls[0] += 1
        if calls[0] > when:
            raise what("cancelled")

    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(what):
        execute_plan(plan, None, check_cancel=check_cancel, drop_written=True)
    with pytest.raises(what):
        execute_plan(plan, None, progress=lambda *a: check_cancel())
    assert list((tmp_path / "out").iterdir()) == [] and not _workers()
    assert len(os.listdir("/proc/self/fd")) == before


def test_a_source_truncated_after_planning_names_the_particle(tmp_path):
    _, items = _stacks(tmp_path)
    plan = plan_gather(items, tmp_path / "out", particles_per_file=100).with_output(batch_bytes=5 * FRAME)
    os.truncate(tmp_path / "s3.mrc", 1024 + 4 * FRAME + 10)  # images 0..3 of s3 complete: item 34 is cut
    with pytest.raises(SourceError, match=r"particle 34 .*s3\.mrc.*truncated") as err:
        execute_plan(plan)
    assert err.value.index == 4
    assert list((tmp_path / "out").iterdir()) == [] and not _workers()


def test_a_transform_returning_the_wrong_array_is_refused_not_spilled_into_the_next_batch(tmp_path):
    """float64 where the plan writes float32 was written as it was: twice the bytes, over the next batch's place
    and past the stack's end, under a header that looks fine.  A view (not contiguous) is copied and written."""
    _, items = _stacks(tmp_path, n_stacks=2)
    plan = plan_gather(items, tmp_path / "out", particles_per_file=100).with_output(batch_bytes=4 * FRAME)

    class Wide(_Passthrough):
        def __call__(self, src, dst, first):
            return src.astype(np.float64)

    class Flip(_Passthrough):
        def __call__(self, src, dst, first):
            return src[:, :, ::-1]

    with pytest.raises(TypeError, match=r"Wide returned \(4, 8, 8\) float64 .*writes \(4, 8, 8\) float32"):
        execute_plan(plan, Wide(plan))
    assert list((tmp_path / "out").iterdir()) == [] and not _workers()
    (path,) = execute_plan(plan, Flip(plan))
    with mrcfile.open(str(path)) as m:
        want = np.stack([mrcfile.read(str(p))[i] for p, i in items])
        np.testing.assert_array_equal(m.data, want[:, :, ::-1])


def test_an_interrupt_right_after_a_stacks_rename_removes_that_stack_too(tmp_path, monkeypatch):
    """Ctrl-C while thousands of stacks are renamed lands right after a rename(2) (where the time goes): that
    stack was published but not yet listed, and stayed behind when the others were removed."""
    from cryodesk.base import fsio

    _, items = _stacks(tmp_path, n_stacks=2)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "batch_003.mrc").write_bytes(b"an older file, never replaced")
    plan = plan_gather(items, tmp_path / "out", particles_per_file=4).with_output(batch_bytes=4 * FRAME)
    real, calls = os.replace, [0]

    def replace(src, dst):
        real(src, dst)
        calls[0] += 1
        if calls[0] == 3:
            raise KeyboardInterrupt  # the signal, checked as the system call returns

    monkeypatch.setattr(fsio.os, "replace", replace)
    with pytest.raises(KeyboardInterrupt):
        execute_plan(plan)
    assert sorted(os.listdir(tmp_path / "out")) == ["batch_003.mrc"]
    assert (tmp_path / "out" / "batch_003.mrc").read_bytes() == b"an older file, never replaced"

    def failing(src, dst):  # a failed rename of a stack that never got there leaves what is there
        if "003" in str(dst):
            raise OSError(5, "Input/output error")
        real(src, dst)

    monkeypatch.setattr(fsio.os, "replace", failing)
    with pytest.raises(OSError):
        execute_plan(plan.with_output())
    assert sorted(os.listdir(tmp_path / "out")) == ["batch_003.mrc"]


@pytest.mark.parametrize("depth,readers", [(0, 0), (1, 1), (-3, -3), (10**6, 10**6), (1, 10**6)])
def test_odd_depths_and_reader_counts_write_the_same_stacks(tmp_path, depth, readers):
    _, items = _stacks(tmp_path)
    ref = execute_plan(plan_gather(items, tmp_path / "ref", particles_per_file=7).with_output(batch_bytes=3 * FRAME))
    plan = plan_gather(items, tmp_path / "out", particles_per_file=7).with_output(batch_bytes=3 * FRAME)
    assert _digests(execute_plan(plan, None, depth=depth, readers=readers)) == _digests(ref)
    single = plan_gather(items[:2], tmp_path / "one", particles_per_file=7)  # one batch
    assert len(single.batches) == 1 and len(execute_plan(single, None, depth=depth, readers=readers)) == 1
    assert not _workers()


def test_two_workers_count_clipped_particles_once_each(tmp_path):
    """clip_f16 from two threads at once: the shared count (under its lock) and the bytes are one worker's."""
    def spoil(arrays):
        for k, a in enumerate(arrays):
            a[k::3, 1, 1] = 1e6 * (1 + k)  # every third particle of each stack: 4 + 3 + 3 + ... of 60

    _, items = _stacks(tmp_path, spoil=spoil)
    got = {}
    for readers in (1, 2):
        plan = plan_gather(items, tmp_path / f"r{readers}", particles_per_file=8)
        t = ParticleTransform(plan.n_items, plan.in_shape, plan.in_dtype, float16=True, clip_f16=True)
        plan = plan.with_output(out_shape=t.out_shape, out_dtype=t.out_dtype, batch_bytes=2 * FRAME)
        got[readers] = (_digests(execute_plan(plan, t, readers=readers)), t.clipped)
    assert got[1] == got[2] and got[2][1] == sum(len(range(k, 10, 3)) for k in range(6))


def test_a_source_replaced_by_a_fifo_after_planning_is_an_error_not_a_hang(tmp_path):
    """The planner refuses a FIFO where a stack should be; one put there after planning was opened by the gather
    (its read-ahead, under the feed's lock, or a worker) with a blocking open(2): every worker, and then the
    cancel waiting for them, hung for ever.  Run in a child process, with a time limit."""
    import subprocess
    import sys
    import textwrap
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    code = textwrap.dedent("""
        import os, sys
        from pathlib import Path
        sys.path[:0] = [sys.argv[2], sys.argv[2] + "/tests"]
        from hostile.test_review4_gather import FRAME, _stacks
        from cryodesk.io.gather import SourceError, execute_plan, plan_gather
        tmp = Path(sys.argv[1])
        _, items = _stacks(tmp)
        plan = plan_gather(items, tmp / "out", particles_per_file=100).with_output(batch_bytes=5 * FRAME)
        os.unlink(tmp / "s4.mrc")
        os.mkfifo(tmp / "s4.mrc")
        for readahead in (0, 1 << 28):
            try:
                execute_plan(plan.with_output(), readahead_bytes=readahead)
            except SourceError as exc:
                print(exc.item, exc)
        print(sorted(os.listdir(tmp / "out")))
    """)
    try:
        done = subprocess.run([sys.executable, "-c", code, str(tmp_path), str(repo)], capture_output=True,
                              text=True, timeout=20, cwd=repo)
    except subprocess.TimeoutExpired:
        pytest.fail("a FIFO put in place of a source stack after planning hung the gather")
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(lines) == 3 and all(line.startswith("40 ") and "s4.mrc" in line and "FIFO" in line for line in lines[:2])
    assert lines[2] == "[]"


def test_progress_from_two_workers_is_monotonic_and_ends_at_the_totals(tmp_path):
    _, items = _stacks(tmp_path)
    plan = plan_gather(items, tmp_path / "out", particles_per_file=7).with_output(batch_bytes=2 * FRAME)
    seen, threads = [], set()

    def progress(*args):
        seen.append(args)
        threads.add(threading.current_thread().name)

    execute_plan(plan, None, progress=progress, on_write=lambda *a: threads.add(threading.current_thread().name))
    assert len(seen) == len(plan.batches) and seen[-1] == (60, 60, 60 * FRAME, 60 * FRAME)
    assert all(a[0] < b[0] and a[2] < b[2] for a, b in zip(seen, seen[1:]))
    assert "MainThread" in threads and any(n.startswith("gather-worker-") for n in threads)  # progress: the caller's
