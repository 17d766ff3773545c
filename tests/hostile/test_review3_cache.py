"""Review 3, the SSD cache against a hostile user: its own files replaced by the wrong kind of thing.

What a user saw before the fixes:

* ``<ssd>/cryodesk_cache`` a dangling symlink or a plain file: ``cache status`` printed a
  ``FileExistsError`` traceback;
* ``cryodesk_cache`` (or its ``files/``) a symlink to a directory: the cache created its
  directories and lock file through it (``files/`` one: copied every stack through it, and
  ``cache clear`` reported the entries removed and their bytes freed while every file stayed);
  a job then failed on ``space.lock``;
* ``entries.lock`` or ``space.lock`` a directory, or a lock file this user cannot open:
  ``IsADirectoryError`` / ``PermissionError`` failed the job and ``cache status``.

Now the cache checks its own layout when it is opened: anything wrong is a
:class:`DataError` naming the path and what is wrong, before anything is written; a
job reads its particles from the project directory (as with a missing SSD) and the CLI
prints one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from cryodesk.base.errors import DataError
from cryodesk.cache.config import CacheConfig
from cryodesk.cache.staging import stage
from cryodesk.cache.store import Cache
from cryodesk.io.mrc import make_header


def _stacks(d: Path, k: int = 3) -> list[Path]:
    d.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(k):
        p = d / f"s{i}.mrc"
        data = np.random.default_rng(i).standard_normal((4, 16, 16)).astype(np.float32)
        p.write_bytes(make_header(16, 16, 4, 2, 1.5) + data.tobytes())
        out.append(p)
    return out


def _config(ssd: Path) -> CacheConfig:
    return CacheConfig(ssd_path=ssd, reserve_bytes=0)


def _cli_status(ssd: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, CRYODESK_DB=str(tmp_path / "cli.sqlite"), CRYODESK_SSD_PATH=str(ssd),
               XDG_CONFIG_HOME=str(tmp_path / "config"), PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    return subprocess.run([sys.executable, "-m", "cryodesk.cli.main", "cache", "status"], env=env,
                          capture_output=True, text=True, timeout=120)


def _tree(d: Path) -> list[str]:
    return sorted(str(p.relative_to(d)) for p in d.rglob("*"))


def _symlink_root(ssd, elsewhere):
    elsewhere.mkdir()
    (ssd / "cryodesk_cache").symlink_to(elsewhere)
    return ssd / "cryodesk_cache", "a symlink"


def _dangling_root(ssd, elsewhere):
    (ssd / "cryodesk_cache").symlink_to(elsewhere / "gone")
    return ssd / "cryodesk_cache", "a symlink"


def _file_root(ssd, elsewhere):
    (ssd / "cryodesk_cache").write_bytes(b"not a directory")
    return ssd / "cryodesk_cache", "not a directory"


def _symlink_files(ssd, elsewhere):
    elsewhere.mkdir()
    (ssd / "cryodesk_cache").mkdir()
    (ssd / "cryodesk_cache" / "files").symlink_to(elsewhere)
    return ssd / "cryodesk_cache" / "files", "a symlink"


def _symlink_subsets(ssd, elsewhere):
    elsewhere.mkdir()
    (ssd / "cryodesk_cache").mkdir()
    (ssd / "cryodesk_cache" / "subsets").symlink_to(elsewhere)
    return ssd / "cryodesk_cache" / "subsets", "a symlink"


def _dir_entries_lock(ssd, elsewhere):
    (ssd / "cryodesk_cache" / "entries.lock").mkdir(parents=True)
    return ssd / "cryodesk_cache" / "entries.lock", "not a regular file"


def _dir_space_lock(ssd, elsewhere):
    (ssd / "cryodesk_cache" / "space.lock").mkdir(parents=True)
    return ssd / "cryodesk_cache" / "space.lock", "not a regular file"


def _symlink_index(ssd, elsewhere):
    elsewhere.mkdir()
    (ssd / "cryodesk_cache").mkdir()
    (ssd / "cryodesk_cache" / "index.sqlite").symlink_to(elsewhere / "index.sqlite")
    return ssd / "cryodesk_cache" / "index.sqlite", "a symlink"


def _dir_index(ssd, elsewhere):
    (ssd / "cryodesk_cache" / "index.sqlite").mkdir(parents=True)
    return ssd / "cryodesk_cache" / "index.sqlite", "not a regular file"


LAYOUTS = [_symlink_root, _dangling_root, _file_root, _symlink_files, _symlink_subsets, _dir_entries_lock,
           _dir_space_lock, _symlink_index, _dir_index]


@pytest.mark.parametrize("make", LAYOUTS, ids=lambda f: f.__name__.strip("_"))
def test_a_wrong_kind_of_cache_file_is_a_clear_error_and_nothing_is_written_through_it(tmp_path, make):
    ssd = tmp_path / "ssd"
    ssd.mkdir()
    elsewhere = tmp_path / "elsewhere"
    bad, what = make(ssd, elsewhere)
    with pytest.raises(DataError) as err:
        Cache(_config(ssd))
    assert str(bad) in str(err.value) and what in str(err.value)
    if elsewhere.exists():
        assert _tree(elsewhere) == []  # nothing created through the symlink


@pytest.mark.parametrize("make", LAYOUTS, ids=lambda f: f.__name__.strip("_"))
def test_a_job_reads_the_originals_when_the_cache_layout_is_wrong(tmp_path, make, caplog):
    ssd = tmp_path / "ssd"
    ssd.mkdir()
    elsewhere = tmp_path / "elsewhere"
    bad, _ = make(ssd, elsewhere)
    files = _stacks(tmp_path / "proj")
    with stage(None, files, config=_config(ssd), cache_on=True, subset=False) as st:
        assert st.mode == "off" and str(bad) in st.reason
        assert [st.path_for(f) for f in files] == files
        assert [st.path_for(f).read_bytes() for f in files] == [f.read_bytes() for f in files]
    if elsewhere.exists():
        assert _tree(elsewhere) == []


@pytest.mark.parametrize("make", [_dangling_root, _file_root, _dir_space_lock, _dir_entries_lock],
                         ids=lambda f: f.__name__.strip("_"))
def test_cache_status_says_what_is_wrong_in_one_line(tmp_path, make):
    ssd = tmp_path / "ssd"
    ssd.mkdir()
    bad, what = make(ssd, tmp_path / "elsewhere")
    proc = _cli_status(ssd, tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "Error:" not in proc.stderr
    assert str(bad) in proc.stderr and what in proc.stderr


def test_a_lock_file_this_user_cannot_open_is_a_clear_error(tmp_path):
    ssd = tmp_path / "ssd"
    root = ssd / "cryodesk_cache"
    root.mkdir(parents=True)
    lock = root / "entries.lock"
    lock.touch()
    # an immutable file: EPERM on open for writing, even as root (another user's cache behaves the same)
    if subprocess.run(["chattr", "+i", str(lock)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not available here")
    try:
        with pytest.raises(DataError, match=r"cannot open the SSD cache lock file .*entries\.lock"):
            Cache(_config(ssd))
        files = _stacks(tmp_path / "proj")
        with stage(None, files, config=_config(ssd), cache_on=True, subset=False) as st:
            assert st.mode == "off" and str(lock) in st.reason
    finally:
        subprocess.run(["chattr", "-i", str(lock)], capture_output=True)


def test_a_good_layout_and_a_symlinked_ssd_path_still_cache(tmp_path):
    """The SSD path itself may be a symlink (/scratch -> /local/ssd): only the cache's own files may not."""
    real = tmp_path / "local_ssd"
    real.mkdir()
    ssd = tmp_path / "scratch"
    ssd.symlink_to(real)
    files = _stacks(tmp_path / "proj")
    for copied in (sum(f.stat().st_size for f in files), 0):
        with stage(None, files, config=_config(ssd), cache_on=True, subset=False) as st:
            assert st.mode == "files" and st.stats()["bytes_copied"] == copied
            assert all(str(st.path_for(f)).startswith(str(ssd / "cryodesk_cache" / "files")) for f in files)
            assert [st.path_for(f).read_bytes() for f in files] == [f.read_bytes() for f in files]


# -- the index: advisory, so anything wrong with it heals ---------------------------------------------------
#
# Before: an index whose table was not the cache's (another program's, an older layout) failed every
# fill ("no such column: state": every file read from the project directory, for ever) and status;
# an extra column or a text value in a number column made ``cache status`` raise TypeError; a page
# of the index overwritten in the middle ("database disk image is malformed", found by a query, not
# at open) failed the job with sqlite3.DatabaseError and status with a traceback, and never healed.


def _filled(tmp_path):
    import sqlite3

    from cryodesk.cache.index import drop_kept_connections

    ssd = tmp_path / "ssd"
    ssd.mkdir()
    files = _stacks(tmp_path / "proj")
    with stage(None, files, config=_config(ssd), cache_on=True, subset=False) as st:
        assert st.stats()["files_copied"] == len(files)
    drop_kept_connections()
    return ssd, files, ssd / "cryodesk_cache" / "index.sqlite", sqlite3


def _foreign_table(idx, sqlite3):
    idx.unlink()
    con = sqlite3.connect(idx)
    con.execute("CREATE TABLE entries (key TEXT)")
    con.execute("INSERT INTO entries VALUES ('x')")
    con.commit()
    con.close()


def _extra_column(idx, sqlite3):
    con = sqlite3.connect(idx)
    con.execute("ALTER TABLE entries ADD COLUMN note TEXT DEFAULT 'hand edit'")
    con.commit()
    con.close()


def _text_in_numbers(idx, sqlite3):
    con = sqlite3.connect(idx)
    con.execute("UPDATE entries SET size = 'big', last_access = 'yesterday'")
    con.commit()
    con.close()


def _malformed_page(idx, sqlite3):
    import time

    con = sqlite3.connect(idx)  # enough rows for pages in the middle, then a page overwritten
    con.executemany("INSERT INTO entries VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    [(f"/nowhere/{i:05d}" * 8, "file", f"files/nowhere/{i}", 1, 1, 1, "P1", "ready", 0, 0.0,
                      time.time()) for i in range(4000)])
    con.commit()
    con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    con.close()
    data = bytearray(idx.read_bytes())
    mid = len(data) // 2 // 4096 * 4096
    data[mid:mid + 8 * 4096] = b"\xff" * (8 * 4096)
    idx.write_bytes(bytes(data))


@pytest.mark.parametrize("spoil", [_foreign_table, _extra_column, _text_in_numbers, _malformed_page],
                         ids=lambda f: f.__name__.strip("_"))
def test_an_index_that_is_not_the_caches_heals(tmp_path, spoil):
    ssd, files, idx, sqlite3 = _filled(tmp_path)
    spoil(idx, sqlite3)
    st = Cache(_config(ssd)).status()  # no TypeError, no sqlite3 error
    assert st["used_bytes"] >= 0 and isinstance(st["entries"], int)
    for f in files:
        f.write_bytes(f.read_bytes())  # a new version: the fill must copy, so it needs the index
    with stage(None, files, config=_config(ssd), cache_on=True, subset=False) as st:
        assert st.mode == "files"
        assert st.stats()["files_copied"] == len(files), st.stats()
        assert [st.path_for(f).read_bytes() for f in files] == [f.read_bytes() for f in files]
        assert all(str(st.path_for(f)).startswith(str(ssd)) for f in files)
    st = Cache(_config(ssd)).status()
    assert st["entries"] == len(files)
    assert st["used_bytes"] == sum(f.stat().st_size for f in files)
    proc = _cli_status(ssd, tmp_path)
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr


def test_corruption_a_query_runs_into_after_the_open_heals_at_the_next_operation(tmp_path):
    import time

    from cryodesk.cache.index import Entry, Index, IndexCorrupt, drop_kept_connections

    root = tmp_path / "cache"
    root.mkdir()
    index = Index(root)
    now = time.time()
    with index.connect() as con:
        index.put_many([Entry(f"/k/{i:05d}" * 8, "file", f"files/k/{i}", 1, 1, 1, "P1", "ready", 0, now, now)
                        for i in range(4000)], con)
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    drop_kept_connections()
    assert len(index.all()) == 4000  # opened: nothing wrong yet
    data = bytearray(index.path.read_bytes())
    mid = len(data) // 2 // 4096 * 4096
    data[mid:mid + 8 * 4096] = b"\xff" * (8 * 4096)
    index.path.write_bytes(bytes(data))
    with pytest.raises(IndexCorrupt, match="moved aside"):
        index.all()
    assert index.all() == []  # a fresh index
    assert [p.name for p in root.iterdir() if ".corrupt-" in p.name]


# -- the message when a file gets no space ---------------------------------------------------------------
#
# Before: "need 6.3 MiB; cache holds 6.3 MiB (0 B held by running jobs), disk free 7.9 MiB, reserve 0 B"
# — a refusal whose numbers say it fits: the bytes promised to copies still in flight (this job's
# own, or another's) were left out.  Now they are said.


def test_a_denial_counts_the_bytes_promised_to_copies_in_flight(tmp_path):
    from mounts import small_tmpfs

    from cryodesk.cache.store import Item

    with small_tmpfs(tmp_path, "4m") as d:
        cache = Cache(_config(d))
        free = os.statvfs(d).f_bavail * os.statvfs(d).f_frsize
        size = free * 6 // 10  # one fits, two do not

        def item(name):
            dest = cache.file_dest(f"/src/{name}")
            it = Item(key=f"/src/{name}", kind="file", dest=dest, size=size, src_size=size, src_mtime_ns=1,
                      check=lambda: False, build=lambda *a: size)
            it.lock = cache.lock_for(it.key)
            assert it.lock.try_exclusive()
            return it

        a, b = item("a.mrc"), item("b.mrc")
        try:
            granted, denied, _ = cache.reserve([a], "P1")
            assert granted == [a]
            granted, denied, message = cache.reserve([b], "P1")
            assert denied == [b] and granted == []
            assert "in flight" in message, message
            from cryodesk.core.units import human_bytes

            assert human_bytes(size) in message  # the need, and the bytes promised to a's copy
            assert message.count(human_bytes(size)) >= 2, message
        finally:
            cache.release_reservation(a)
            a.lock.close()
            b.lock.close()


def test_a_source_that_shrinks_during_its_copy_is_named(tmp_path):
    """Before: "the source file shrank while it was being copied" — which one, in a job of 5,000 stacks?"""
    from cryodesk.cache.copy import SourceChanged, copy_into_cache, part_name

    src = _stacks(tmp_path / "proj", 1)[0]
    st = src.stat()
    dest = tmp_path / "cache" / "s0.mrc"
    dest.parent.mkdir()
    with pytest.raises(SourceChanged) as err:  # the size it had when the copy started: more than is there now
        copy_into_cache(src, dest, st.st_size + 4096, st.st_mtime_ns)
    assert str(src) in str(err.value) and "shrank" in str(err.value)
    assert not dest.exists() and not part_name(dest).exists()


def test_a_source_stack_that_changes_while_its_subset_is_packed_is_named(tmp_path, monkeypatch):
    """Before: "a source stack changed while its particles were being cached" — which one?"""
    import cryodesk.cache.subset as subset_mod
    from cryodesk.cache.copy import SourceChanged
    from cryodesk.cache.subset import subset_item, subset_spec_grouped

    srcs = [str(p) for p in _stacks(tmp_path / "proj", 2)]
    spec = subset_spec_grouped(srcs, np.array([0, 1]), np.array([1, 2]), 10000)
    (tmp_path / "ssd").mkdir()
    cache = Cache(_config(tmp_path / "ssd"))
    item = subset_item(cache, spec)
    real = subset_mod.execute_plan

    def touching(*a, **kw):  # the second stack is rewritten while the subset is packed
        out = real(*a, **kw)
        Path(srcs[1]).write_bytes(Path(srcs[1]).read_bytes())
        return out

    monkeypatch.setattr(subset_mod, "execute_plan", touching)
    with pytest.raises(SourceChanged) as err:
        item.build(lambda n: None, None)
    assert srcs[1] in str(err.value) and srcs[0] not in str(err.value)


# -- stacks whose path is not UTF-8 -----------------------------------------------------------------------
#
# Before: a job whose stacks live below a directory named in Latin-1 (legal on Linux) failed with
# "UnicodeEncodeError: 'utf-8' codec can't encode character '\udce9' ... surrogates not allowed" as soon as
# caching was on (the index keeps the source path as UTF-8 text); with caching off it ran.  Now such
# files are read from the project directory, with a line saying why; the others are cached.


def test_stacks_with_a_name_that_is_not_utf8_are_read_from_the_project(tmp_path):
    odd_dir = Path(os.fsdecode(os.fsencode(str(tmp_path)) + b"/proj_caf\xe9"))
    odd = _stacks(odd_dir, 2)
    plain = _stacks(tmp_path / "plain", 1)
    ssd = tmp_path / "ssd"
    ssd.mkdir()
    with stage(None, odd + plain, config=_config(ssd), cache_on=True, subset=False) as st:
        assert st.mode == "files"
        assert [st.path_for(f) for f in odd] == odd
        assert str(st.path_for(plain[0])).startswith(str(ssd))
        assert [st.path_for(f).read_bytes() for f in odd + plain] == [f.read_bytes() for f in odd + plain]
        stats = st.stats()
        assert stats["files_copied"] == 1 and stats["fallback_files"] == 2
        assert any("UTF-8" in m for m in stats["messages"]), stats["messages"]
    assert Cache(_config(ssd)).status()["entries"] == 1
