"""The parallel size scan (worker processes) finds exactly what a serial walk finds."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from cryodesk.core import sizes


def test_parallel_scan_in_processes_equals_serial(tmp_path):
    root = tmp_path / "proj"
    (root).mkdir()
    (root / "project.json").write_text("{}")
    raw = tmp_path / "raw.bin"
    raw.write_bytes(b"r" * 999)
    for n in range(1, sizes.PARALLEL_MIN_TASKS + 10):
        d = root / f"J{n}"
        (d / "sub").mkdir(parents=True)
        (d / "job.json").write_text("{}")
        (d / "a.bin").write_bytes(b"a" * n)
        (d / "sub" / "b.bin").write_bytes(b"b" * (2 * n))
        if n % 7 == 0:
            (d / "link.mrc").symlink_to(raw)
    serial = sizes.scan_project_dir(root, workers=1)
    parallel = sizes.scan_project_dir(root, workers=2)
    assert parallel.jobs == serial.jobs and parallel.total == serial.total
    assert parallel.linked_bytes == serial.linked_bytes == 999  # one target, reported apart, once
    j10 = root / "J10"
    # du -sb: the files, the manifest and the two directories' own entries
    assert serial.jobs[10] == 30 + 2 + os.lstat(j10).st_size + os.lstat(j10 / "sub").st_size


def test_scan_worker_protocol(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"12345")
    (tmp_path / "d" / "job.json").write_bytes(b"{}")
    request = {"paths": [str(tmp_path / "d")], "apart": "job.json"}
    proc = subprocess.run([sys.executable, "-m", "cryodesk.cli.main", "_scan-worker"],
                          input=json.dumps(request), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    (stats,) = json.loads(proc.stdout)
    assert stats["bytes"] == 7 and stats["files"] == 2 and stats["apart_bytes"] == 2
