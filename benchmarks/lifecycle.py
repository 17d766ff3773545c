"""Benchmark: project move (rename; copy + verify across file systems) and ``db compact`` after a large delete.

Move: a project of ``--size-mb`` MB (large stacks and many small files, a few
symlinks) is moved from the disk to a tmpfs and back; baseline in the same
run: ``cp -a`` + ``sync`` + ``rm -rf`` of the same tree (no verification).
The page cache is dropped for the source first (``posix_fadvise`` DONTNEED),
as real data is cold.  Needs root (it mounts a tmpfs).

Compact: a project of ``--jobs`` jobs (rows with outputs) is deleted with
``project delete``, then ``db compact`` runs; sizes before and after, on
SQLite and (with ``CRYODESK_TEST_PG_URL``) PostgreSQL.

Usage::

    .venv/bin/python benchmarks/lifecycle.py [--size-mb 256] [--jobs 3000]
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from coldcache import evict_tree  # noqa: E402

from cryodesk import db as dbmod
from cryodesk.core import compact, project_lifecycle, project_move, projects, registry
from cryodesk.core.deletion import trash
from cryodesk.core.registry import JobType, OutputGroup
from cryodesk.db.models import ALL_MODELS, Job, JobWorkspace, OutputFile

registry.register(JobType("b_job", "bench", "utilities", outputs=(OutputGroup("out", "any"),)))
trash.SYNC = True


def _fill(pdir: Path, size_mb: int) -> None:
    big = max(1, size_mb * 3 // 4 // 32)
    for k in range(big):
        d = pdir / f"J{k + 1}"
        d.mkdir(exist_ok=True)
        with open(d / "stack.mrcs", "wb") as fh:
            for _ in range(32):
                fh.write(os.urandom(1 << 20))
    small = pdir / f"J{big + 1}"
    small.mkdir(exist_ok=True)
    for k in range(size_mb * 1024 // 4 // 16):  # a quarter in 16 KiB files
        (small / f"mic_{k:05d}.json").write_bytes(os.urandom(16 << 10))
    os.symlink("/nonexistent/raw/movies", pdir / "J1" / "raw_link")


def bench_move(size_mb: int) -> None:
    with tempfile.TemporaryDirectory(dir="/var/tmp") as tmp:
        tmp = Path(tmp)
        fs = tmp / "tmpfs"
        fs.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb * 3}m", "tmpfs", str(fs)], check=True)
        try:
            dbmod.open_database(str(tmp / "move.sqlite"))
            with dbmod.db.connection_context():
                p = projects.create_project("Move", tmp / "proj")
                _fill(Path(p.directory), size_mb)
                subprocess.run(["sync"], check=True)
                base = tmp / "base"
                subprocess.run(["cp", "-a", p.directory, str(base)], check=True)
                evict_tree(base)
                t = time.perf_counter()
                subprocess.run(["cp", "-a", str(base), str(fs / "base")], check=True)
                subprocess.run(["sync"], check=True)
                shutil.rmtree(base)
                cp_s = time.perf_counter() - t
                shutil.rmtree(fs / "base")
                evict_tree(Path(p.directory))
                out = project_move.move_project(p, fs / "proj")
                across_s = out["seconds"]
                (tmp / "back").mkdir()
                t = time.perf_counter()
                back = project_move.move_project(p, tmp / "back" / "proj")
                back_s = time.perf_counter() - t
                t = time.perf_counter()
                same = project_move.move_project(p, tmp / "proj2")
                same_s = time.perf_counter() - t
            dbmod.close_database()
            mb = out["bytes"] / 1e6
            print(f"move {mb:.0f} MB ({out['files']} files, {out['links']} link): disk -> tmpfs copy+verify "
                  f"{across_s:.2f} s ({mb / across_s:.0f} MB/s); baseline cp -a + sync + rm -rf {cp_s:.2f} s "
                  f"(ratio {across_s / cp_s:.2f}); tmpfs -> disk {back_s:.2f} s ({back['mode']}); "
                  f"same file system {same_s * 1000:.1f} ms ({same['mode']})")
        finally:
            subprocess.run(["umount", "-l", str(fs)], capture_output=True)


def _big(p, n: int) -> None:
    ws = projects.list_workspaces(p)[0]
    with dbmod.db.atomic():
        ids = [Job.create(project=p, number=i, type="b_job", title=f"job {i} {secrets.token_hex(200)}").id
               for i in range(1, n + 1)]
        JobWorkspace.insert_many([{"job": i, "workspace": ws.id} for i in ids]).execute()
        rows = [{"job": i, "group": "out", "kind": "blob", "version": v, "path": f"J{k}/{secrets.token_hex(60)}",
                 "size_bytes": 1} for k, i in enumerate(ids, 1) for v in range(5)]
        for k in range(0, len(rows), 500):
            OutputFile.insert_many(rows[k:k + 500]).execute()


def bench_compact(url: str, n: int, tmp: Path) -> None:
    database = dbmod.make_database(url)
    dbmod.db.initialize(database)
    with database.connection_context():
        if url.startswith("postgresql://"):
            database.drop_tables(ALL_MODELS, cascade=True)
    dbmod.open_database(url)
    with dbmod.db.connection_context():
        p = projects.create_project("Big", tmp / f"big-{secrets.token_hex(3)}")
        projects.create_workspace(p, "main")
        _big(p, n)
        full = compact.compact_database()
        t = time.perf_counter()
        project_lifecycle.execute_delete(p, project_lifecycle.plan_delete(p))
        delete_s = time.perf_counter() - t
        out = compact.compact_database()
    dbmod.close_database()
    print(f"db compact ({out['backend']}), {n} jobs deleted ({delete_s:.1f} s): {out['before_bytes']:,} -> "
          f"{out['after_bytes']:,} bytes (tables {out['before_tables_bytes']:,} -> {out['after_tables_bytes']:,}; "
          f"with the project: {full['after_tables_bytes']:,}) in {out['seconds']:.2f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--size-mb", type=int, default=256)
    ap.add_argument("--jobs", type=int, default=3000)
    args = ap.parse_args()
    bench_move(args.size_mb)
    with tempfile.TemporaryDirectory() as tmp:
        bench_compact(str(Path(tmp) / "compact.sqlite"), args.jobs, Path(tmp))
        if os.environ.get("CRYODESK_TEST_PG_URL"):
            bench_compact(os.environ["CRYODESK_TEST_PG_URL"], args.jobs, Path(tmp))


if __name__ == "__main__":
    main()
