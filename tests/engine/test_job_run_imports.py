"""``cryodesk job run`` of a trivial job loads no Qt, numpy or cache: its fixed overhead stays small.

The headless engine (:mod:`cryodesk.engine.headless`) runs the GUI engine's
scheduler on plain threads, and only the types of the jobs run are loaded
(:data:`cryodesk.jobs.MODULES`); a new top-level import of Qt, numpy, numba
or the cache on this path fails here (benchmarks/job_overhead.py has the time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from cryodesk.cli.main import main

# the CLI in a fresh interpreter, then the heavy packages it ended up importing
_CODE = r"""
import sys
from cryodesk.cli.main import main
code = main(sys.argv[1:])
heavy = ("PySide6", "shiboken6", "numpy", "numba", "llvmlite", "mrcfile", "cryodesk.cache", "cryodesk.ui")
print("IMPORTED " + " ".join(sorted(n for n in sys.modules if n.startswith(heavy) and
                                    (n in heavy or n.startswith(tuple(h + "." for h in heavy))))), file=sys.stderr)
sys.exit(code)
"""


def test_job_run_of_a_trivial_job_imports_no_qt_numpy_or_cache(tmp_path, monkeypatch, capsys):
    db = tmp_path / "cli.sqlite"
    monkeypatch.setenv("CRYODESK_DB", str(db))
    assert main(["project", "create", "--title", "T", "--dir", str(tmp_path / "proj")]) == 0
    assert main(["workspace", "create", "P1", "--title", "main"]) == 0
    assert main(["job", "create", "P1", "external", "-p", "command=true", "--json"]) == 0
    capsys.readouterr()
    env = {**os.environ, "CRYODESK_DB": str(db)}
    proc = subprocess.run([sys.executable, "-c", _CODE, "job", "run", "P1", "J1", "--json"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["jobs"][0]["status"] == "completed"
    imported = next(line for line in proc.stderr.splitlines() if line.startswith("IMPORTED")).split()[1:]
    assert imported == [], f"job run of an external job imported {imported}"
    assert "P1 J1: started" in proc.stderr and "P1 J1: completed" in proc.stderr  # progress as before


def test_job_run_leaves_without_teardown_and_loses_nothing(tmp_path, monkeypatch, capsys):
    """``python -m cryodesk.cli.main job run`` ends by os._exit (cli.main.leave): the JSON on a pipe, the job's
    log and the exit status are all there, for a job that succeeds and one that fails."""
    db = tmp_path / "cli.sqlite"
    monkeypatch.setenv("CRYODESK_DB", str(db))
    assert main(["project", "create", "--title", "T", "--dir", str(tmp_path / "proj")]) == 0
    assert main(["workspace", "create", "P1", "--title", "main"]) == 0
    assert main(["job", "create", "P1", "external", "-p", "command=echo said-by-the-job", "--json"]) == 0
    assert main(["job", "create", "P1", "external", "-p", "command=false", "--json"]) == 0
    capsys.readouterr()
    env = {**os.environ, "CRYODESK_DB": str(db)}
    # an atexit hook that would print if the interpreter's teardown ran: it must not
    code = ("import atexit, runpy, sys; atexit.register(lambda: print('TEARDOWN', file=sys.stderr)); "
            "sys.argv[0] = 'cryodesk'; runpy.run_module('cryodesk.cli.main', run_name='__main__')")
    ok = subprocess.run([sys.executable, "-c", code, "job", "run", "P1", "J1", "--json"], env=env,
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["jobs"][0]["status"] == "completed"
    assert "TEARDOWN" not in ok.stderr
    log = next((tmp_path / "proj" / "J1").glob("*.log")).read_text()
    assert "said-by-the-job" in log and "completed" in log
    bad = subprocess.run([sys.executable, "-c", code, "job", "run", "P1", "J2", "--json"], env=env,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0 and json.loads(bad.stdout)["jobs"][0]["status"] == "failed"
    other = subprocess.run([sys.executable, "-c", code, "project", "list"], env=env,  # not job run: a normal exit
                           capture_output=True, text=True, timeout=120)
    assert other.returncode == 0 and "TEARDOWN" in other.stderr


def test_leave_waits_for_a_thread_still_working(monkeypatch):
    import threading

    from cryodesk.cli import main as cli_main

    gone = []
    monkeypatch.setattr(cli_main.os, "_exit", lambda rc: gone.append(rc))
    monkeypatch.setattr("logging.shutdown", lambda: gone.append("logs flushed"))
    stop = threading.Event()
    worker = threading.Thread(target=stop.wait, daemon=False)
    worker.start()
    try:
        try:
            cli_main.leave(3)
        except SystemExit as exc:  # the normal exit: it waits for the thread
            assert exc.code == 3
        else:
            raise AssertionError("leave() skipped the teardown while a thread was working")
        assert gone == []
    finally:
        stop.set()
        worker.join()
    cli_main.leave(4)
    assert gone == ["logs flushed", 4]
