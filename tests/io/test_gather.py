"""The gather's output stacks: reserved blocks (fallocate) and one check call per batch."""

from __future__ import annotations

import errno
import hashlib

import numpy as np
import pytest

from cryodesk.base.errors import DataError
from cryodesk.io import gather as gather_mod
from cryodesk.io.gather import execute_plan, plan_gather
from cryodesk.io.mrc import write_stack
from cryodesk.kernels.batch import ParticleTransform


def _sources(tmp_path):
    rng = np.random.default_rng(3)
    stacks = [rng.standard_normal((n, 12, 10)).astype(np.float32) for n in (7, 5, 9)]
    stacks[1][2, 4, 4] = np.nan
    for k, arr in enumerate(stacks):
        write_stack(tmp_path / f"s{k}.mrc", arr)
    items = [(2, 8), (0, 1), (0, 2), (0, 3), (1, 2), (2, 4), (2, 5), (0, 0), (1, 4), (1, 4), (2, 0)]
    return stacks, [(tmp_path / f"s{k}.mrc", i) for k, i in items], items


def _run(tmp_path, name, f16=False, **kw):
    _, items, _ = _sources(tmp_path)
    plan = plan_gather(items, tmp_path / name, particles_per_file=4)
    t = ParticleTransform(plan.n_items, plan.in_shape, plan.in_dtype, float16=f16)
    plan = plan.with_output(out_shape=t.out_shape, out_dtype=t.out_dtype, batch_bytes=3 * 12 * 10 * 4)
    return plan, t, execute_plan(plan, t, **kw)


def _digests(paths):
    return [hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]


@pytest.mark.parametrize("f16", [False, True])
def test_preallocated_stacks_are_the_same_bytes(tmp_path, f16):
    plan, t, pre = _run(tmp_path, "pre", f16)
    _, t2, plain = _run(tmp_path, "plain", f16, preallocate=False)
    assert [p.name for p in pre] == [p.name for p in plain]
    assert _digests(pre) == _digests(plain)
    for p, out in zip(pre, plan.outputs):  # exactly header + images: nothing reserved is left over
        assert p.stat().st_size == 1024 + out.count * plan.out_image_bytes
    assert t.flags.tolist() == t2.flags.tolist() and t.flagged(1).tolist() == [4]


def _fake_fallocate(monkeypatch, err):
    calls = []

    def fn(fd, mode, offset, length):
        calls.append((mode, offset, length))
        return -1

    monkeypatch.setattr(gather_mod, "_fallocate", (fn, lambda: err))
    return calls


def test_a_file_system_without_fallocate_writes_the_same_stacks(tmp_path, monkeypatch):
    _, _, ref = _run(tmp_path, "ref", preallocate=False)
    calls = _fake_fallocate(monkeypatch, errno.EOPNOTSUPP)
    plan, _, paths = _run(tmp_path, "out")
    assert len(calls) == len(plan.outputs) and calls[0] == (0, 0, 1024 + 4 * plan.out_image_bytes)
    assert _digests(paths) == _digests(ref)


def test_no_room_for_a_stack_is_a_disk_full_error_and_leaves_nothing(tmp_path, monkeypatch):
    _fake_fallocate(monkeypatch, errno.ENOSPC)
    with pytest.raises(DataError, match=r"disk full while writing .*batch_000\.mrc .*partial output was removed"):
        _run(tmp_path, "out")
    assert list((tmp_path / "out").iterdir()) == []


def test_checks_run_once_per_batch_on_every_item(tmp_path):
    stacks, items, raw = _sources(tmp_path)
    plan = plan_gather(items, tmp_path / "out", particles_per_file=4)
    plan = plan.with_output(batch_bytes=3 * 12 * 10 * 4)
    seen = []

    class Spy:
        out_shape, out_dtype = plan.out_shape, plan.out_dtype

        def inspect(self, images, first):
            seen.append((first, images.copy()))

        def __call__(self, src, dst, first):
            return src

    execute_plan(plan, Spy())
    seen.sort(key=lambda s: s[0])  # (two reading threads: in any order)
    assert [f for f, _ in seen] == [b.first for b in plan.batches]
    assert [len(x) for _, x in seen] == [b.count for b in plan.batches]
    got = np.concatenate([x for _, x in sorted(seen, key=lambda s: s[0])])
    np.testing.assert_array_equal(got, np.stack([stacks[k][i] for k, i in raw]))


@pytest.mark.parametrize("readers,depth", [(1, 2), (2, 1), (2, 4), (3, 3)])
def test_any_number_of_readers_writes_the_same_stacks(tmp_path, readers, depth):
    _, _, ref = _run(tmp_path, "ref", readers=1)
    _, t, paths = _run(tmp_path, f"r{readers}d{depth}", readers=readers, depth=depth)
    assert _digests(paths) == _digests(ref) and t.flagged(1).tolist() == [4]


def test_the_first_failing_batch_is_the_error_whatever_the_timing(tmp_path, monkeypatch):
    """Batches 1 and 3 fail; batch 1 fails last (slowly): the error is still batch 1's particle."""
    import os
    import time

    from cryodesk.io.gather import SourceError

    _, items, _ = _sources(tmp_path)
    plan = plan_gather(items, tmp_path / "out", particles_per_file=4).with_output(batch_bytes=3 * 12 * 10 * 4)
    bad = {1: 0.3, 3: 0.0}  # batch -> seconds before its first read fails
    first_of = {b.first: k for k, b in enumerate(plan.batches)}
    real = gather_mod._read_batch

    def read_batch(plan_, batch, buf, files, inspect=None):
        k = first_of[batch.first]
        if k in bad:
            time.sleep(bad[k])
            raise gather_mod._source_error(plan_.sources[0], "injected", 0, batch.first)
        return real(plan_, batch, buf, files, inspect)

    monkeypatch.setattr(gather_mod, "_read_batch", read_batch)
    with pytest.raises(SourceError) as err:
        execute_plan(plan, readers=2)
    assert err.value.item == plan.batches[1].first
    assert os.listdir(tmp_path / "out") == []


def test_a_source_removed_after_planning_is_named(tmp_path):
    from cryodesk.io.gather import SourceError

    _, items, _ = _sources(tmp_path)
    plan = plan_gather(items, tmp_path / "out", particles_per_file=4).with_output(batch_bytes=3 * 12 * 10 * 4)
    (tmp_path / "s1.mrc").unlink()
    with pytest.raises(SourceError, match=r"s1\.mrc"):
        execute_plan(plan)
    assert list((tmp_path / "out").iterdir()) == []


def test_batches_are_written_in_pieces_of_write_bytes(tmp_path, monkeypatch):
    import os

    _, _, ref = _run(tmp_path, "ref")
    sizes = []
    real = os.pwrite

    def pwrite(fd, data, offset):
        sizes.append(len(data))
        return real(fd, data, offset)

    monkeypatch.setattr(gather_mod, "WRITE_BYTES", 1000)
    monkeypatch.setattr(os, "pwrite", pwrite)
    _, _, paths = _run(tmp_path, "out")  # batches of 3 images of 480 bytes: 1440 bytes, two pieces
    assert max(sizes) == 1000 and sizes.count(1000) >= 3
    assert _digests(paths) == _digests(ref)


def test_workers_write_their_own_batches_and_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    """Each batch is read, checked, transformed and written by one worker thread; a disk full in the
    middle is the error, every worker has stopped when it is raised, and nothing is left."""
    import os
    import threading

    _, items, _ = _sources(tmp_path)
    plan = plan_gather(items, tmp_path / "out", particles_per_file=4).with_output(batch_bytes=3 * 12 * 10 * 4)
    where: dict[str, set] = {"inspect": set(), "call": set(), "write": set()}

    class Spy:
        out_shape, out_dtype = plan.out_shape, plan.out_dtype

        def inspect(self, images, first):
            where["inspect"].add(threading.current_thread().name)

        def __call__(self, src, dst, first):
            where["call"].add(threading.current_thread().name)
            return src

    real = os.pwrite
    writes = [0]

    def pwrite(fd, data, offset):
        where["write"].add(threading.current_thread().name)
        writes[0] += 1
        if writes[0] == 6:  # a header and a few batches in
            raise OSError(28, "No space left on device")
        return real(fd, data, offset)

    execute_plan(plan, Spy())  # first a good run: where everything runs
    assert where["call"] and all(n.startswith("gather-worker-") for s in where.values() for n in s)
    monkeypatch.setattr(os, "pwrite", pwrite)
    with pytest.raises(DataError, match=r"disk full while writing .*batch_00\d\.mrc"):
        execute_plan(plan.with_output(), Spy())
    assert not [t for t in threading.enumerate() if t.name.startswith("gather-worker-")]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [o.path.name for o in plan.outputs]  # the good run's


def _mrcfile_data(path):
    import mrcfile

    with mrcfile.open(path, permissive=False) as m:
        return np.array(m.data).reshape(-1, *m.data.shape[-2:])


def _batch_reads_one_at_a_time(sid, sidx):
    """The reads of one batch, worked out the plain way: sort by (source, index), then merge neighbours."""
    order = sorted(range(len(sid)), key=lambda p: (sid[p], sidx[p], p))
    rows = []
    for p in order:
        if rows and rows[-1][0] == sid[p] and rows[-1][1] + rows[-1][3] == sidx[p] and rows[-1][2] + rows[-1][3] == p:
            rows[-1][3] += 1
        else:
            rows.append([sid[p], sidx[p], p, 1])
    return rows


def test_every_batch_reads_what_a_plain_per_batch_plan_reads_and_the_stacks_hold_the_items(tmp_path):
    """The reads of all batches are planned in one pass (cut by batch, source, index and position)."""
    rng = np.random.default_rng(11)
    stacks = [rng.standard_normal((n, 6, 5)).astype(np.float32) for n in (30, 1, 17, 40)]
    for k, arr in enumerate(stacks):
        write_stack(tmp_path / f"s{k}.mrc", arr)
    for trial in range(12):
        n = int(rng.integers(1, 120))
        if trial % 3 == 0:  # long adjacent runs, across batch and output boundaries
            pairs = [(3, i % 40) for i in range(n)]
        else:  # scattered, with repeats
            pairs = [(int(s), int(rng.integers(0, len(stacks[s])))) for s in rng.integers(0, 4, n)]
        plan = plan_gather([(tmp_path / f"s{s}.mrc", i) for s, i in pairs], tmp_path / f"o{trial}",
                           particles_per_file=int(rng.integers(1, 50)),
                           batch_bytes=int(rng.integers(1, 12)) * 6 * 5 * 4)
        covered = 0
        for batch in plan.batches:
            assert batch.first == covered
            covered += batch.count
            got = batch.runs.tolist()
            want = _batch_reads_one_at_a_time(plan.src_id[batch.first:batch.first + batch.count].tolist(),
                                               plan.src_idx[batch.first:batch.first + batch.count].tolist())
            assert got == want
        assert covered == len(pairs)
        paths = execute_plan(plan)
        written = np.concatenate([_mrcfile_data(p) for p in paths])
        assert np.array_equal(written, np.stack([stacks[s][i] for s, i in pairs]))


@pytest.mark.parametrize("big", [False, True])
def test_the_one_pass_read_plan_matches_the_plain_one_whatever_the_ordering_and_the_numbers(big):
    from cryodesk.io.gather_plan import _runs

    rng = np.random.default_rng(5)
    for trial in range(60):
        n = int(rng.integers(1, 400))
        sid, sidx = rng.integers(0, 5, n), rng.integers(0, 30, n)
        if trial % 4 == 0:  # grouped by stack, in image order: no sort needed
            sid, sidx = np.sort(sid), np.arange(n) % 30
            sid = np.arange(n) // 30
        if big:  # indices too wide for one sort key: the other sort
            sidx = sidx + (1 << 40)
            sid = sid + (1 << 20)
        counts = []
        while sum(counts) < n:
            counts.append(min(int(rng.integers(1, 25)), n - sum(counts)))
        got = _runs(sid.astype(np.int64), sidx.astype(np.int64), np.array(counts, dtype=np.int64))
        assert len(got) == len(counts)
        b = 0
        for c, rows in zip(counts, got):
            assert rows.tolist() == _batch_reads_one_at_a_time(sid[b:b + c].tolist(), sidx[b:b + c].tolist())
            b += c


def _replace_by_rename(path, arr):
    """What another program does when it rewrites a stack safely: a new file renamed over the old name."""
    tmp = path.with_name(path.name + ".new")
    write_stack(tmp, arr)
    tmp.replace(path)


def test_a_source_replaced_by_a_rename_after_planning_is_named_and_nothing_is_left(tmp_path):
    from cryodesk.io.gather import SourceError

    stacks, items, _ = _sources(tmp_path)
    plan = plan_gather(items, tmp_path / "out", particles_per_file=4).with_output(batch_bytes=3 * 12 * 10 * 4)
    # the same shape, type and size: nothing but the file's identity tells the images apart
    _replace_by_rename(tmp_path / "s1.mrc", stacks[1] + 1)
    with pytest.raises(SourceError, match=r"s1\.mrc.*replaced by another file"):
        execute_plan(plan)
    assert list((tmp_path / "out").iterdir()) == []


def test_a_source_replaced_while_the_gather_runs_is_refused_when_it_is_opened_again(tmp_path, monkeypatch):
    """With more stacks than open descriptors, a stack is opened again later: the new file is not read."""
    from cryodesk.io.gather import SourceError

    monkeypatch.setattr(gather_mod, "_FD_CACHE", 1)  # every change of source reopens
    stacks, items, _ = _sources(tmp_path)
    plan = plan_gather(items, tmp_path / "out", particles_per_file=4).with_output(batch_bytes=3 * 12 * 10 * 4)
    t = ParticleTransform(plan.n_items, plan.in_shape, plan.in_dtype)
    inspect, done = t.inspect, []

    def inspect_then_replace(images, first):
        inspect(images, first)
        if not done:  # after the first batch was read: s0.mrc (read by it) is replaced
            done.append(first)
            _replace_by_rename(tmp_path / "s0.mrc", stacks[0] * 2)

    monkeypatch.setattr(t, "inspect", inspect_then_replace)
    with pytest.raises(SourceError, match=r"s0\.mrc.*replaced"):
        execute_plan(plan, t, readers=1)
    assert list((tmp_path / "out").iterdir()) == []


def test_an_unchanged_source_opened_again_reads_as_before(tmp_path, monkeypatch):
    monkeypatch.setattr(gather_mod, "_FD_CACHE", 1)
    plan, _, paths = _run(tmp_path, "a")
    monkeypatch.undo()
    _, _, again = _run(tmp_path, "b")
    assert _digests(paths) == _digests(again)
