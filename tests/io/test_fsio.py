"""The one atomic writer (``base.fsio``): never a half-written file at the final name, no temp left."""

from __future__ import annotations

import errno
import os
import stat

import pytest
from mounts import small_tmpfs

from cryodesk.base.fsio import AtomicFile, atomic_write, atomic_write_json, is_temp_name, replace_from


def leftovers(directory, *keep):
    """Names in ``directory`` other than ``keep``: temp files a writer forgot."""
    return sorted(set(os.listdir(directory)) - set(keep))


def test_commit_publishes_and_names_the_temp_file(tmp_path):
    target = tmp_path / "out.bin"
    with AtomicFile(target) as f:
        f.fh.write(b"new")
        assert not target.exists()
        assert is_temp_name(f.tmp.name, "out.bin") and f.tmp.parent == tmp_path
    assert target.read_bytes() == b"new"
    assert leftovers(tmp_path, "out.bin") == []


@pytest.mark.parametrize("how", ["exception", "callable", "abort"])
def test_failure_midway_keeps_the_old_file(tmp_path, how):
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")

    def half(fh):
        fh.write(b"x" * 100_000)
        raise RuntimeError("boom")

    if how == "callable":
        with pytest.raises(RuntimeError):
            atomic_write(target, half)
    elif how == "exception":
        with pytest.raises(RuntimeError), AtomicFile(target) as f:
            half(f.fh)
    else:
        f = AtomicFile(target)
        f.fh.write(b"half")
        f.abort()
        f.abort()  # idempotent
    assert target.read_bytes() == b"old"
    assert leftovers(tmp_path, "out.bin") == []


def test_full_disk_keeps_the_old_file(tmp_path):
    with small_tmpfs(tmp_path, "1m") as disk:
        target = disk / "out.json"
        atomic_write_json(target, {"version": 1})
        old = target.read_bytes()
        with pytest.raises(OSError) as err:
            atomic_write(target, b"\0" * (2 << 20))  # more than the disk holds
        assert err.value.errno == errno.ENOSPC
        assert target.read_bytes() == old
        assert leftovers(disk, "out.json") == []


def test_umask_default_and_explicit_mode(tmp_path):
    old = os.umask(0o027)
    try:
        atomic_write(tmp_path / "a", b"")
        atomic_write(tmp_path / "b", b"", mode=0o600)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "a").st_mode) == 0o640  # as open() would give
    assert stat.S_IMODE(os.stat(tmp_path / "b").st_mode) == 0o600


def test_symlink_at_target_is_replaced_not_followed(tmp_path):
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    (tmp_path / "link").symlink_to(victim)
    atomic_write(tmp_path / "link", b"new")
    assert victim.read_bytes() == b"keep"
    assert not (tmp_path / "link").is_symlink() and (tmp_path / "link").read_bytes() == b"new"


def test_fixed_temp_name_deferred_publish(tmp_path):
    target, part = tmp_path / "copy", tmp_path / ".copy.part"
    part.write_bytes(b"a dead writer's partial file")
    f = AtomicFile(target, durable=False, tmp=part)
    f.fh.write(b"complete")
    f.close()  # complete under the temp name; published later (after one sync for a batch)
    assert part.read_bytes() == b"complete" and not target.exists()
    replace_from(part, target)
    assert target.read_bytes() == b"complete" and not part.exists()
    g = AtomicFile(target, tmp=part)
    g.fh.write(b"v2")
    g.commit()
    part.write_bytes(b"the next writer's file")
    g.abort()  # after commit: must not remove a file that is someone else's now
    assert part.exists() and target.read_bytes() == b"v2"


def test_replace_from_failure_removes_the_temp(tmp_path):
    busy = tmp_path / "busy"
    (busy / "inside").mkdir(parents=True)  # a non-empty directory cannot be replaced
    tmp_file = tmp_path / ".busy.tmp"
    tmp_file.write_bytes(b"x")
    with pytest.raises(OSError):
        replace_from(tmp_file, busy)
    assert not tmp_file.exists()
    tmp_dir = tmp_path / "busy.part"
    (tmp_dir / "sub").mkdir(parents=True)
    with pytest.raises(OSError):
        replace_from(tmp_dir, busy)
    assert not tmp_dir.exists() and (busy / "inside").is_dir()


def test_unbuffered_file_for_descriptor_writers(tmp_path):
    target = tmp_path / "out.bin"
    with AtomicFile(target, durable=True, buffered=False) as f:
        os.pwrite(f.fh.fileno(), b"abc", 0)
        assert not target.exists()
    assert target.read_bytes() == b"abc" and not list(tmp_path.glob(".*"))
    f = AtomicFile(target, buffered=False)
    f.fh.write(b"xyz")
    f.abort()
    assert target.read_bytes() == b"abc" and not list(tmp_path.glob(".*"))
