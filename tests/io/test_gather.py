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
    assert [f for f, _ in seen] == [b.first for b in plan.batches]
    assert [len(x) for _, x in seen] == [b.count for b in plan.batches]
    got = np.concatenate([x for _, x in sorted(seen, key=lambda s: s[0])])
    np.testing.assert_array_equal(got, np.stack([stacks[k][i] for k, i in raw]))
