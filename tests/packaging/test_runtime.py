"""cryodesk._runtime.configure(): where numba caches compiled kernels."""

from __future__ import annotations

import os

import pytest

from cryodesk import __version__, _runtime


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(_runtime, "_configured", {})
    monkeypatch.delenv("NUMBA_CACHE_DIR", raising=False)
    return monkeypatch


def test_cache_dir_is_per_user_and_per_version(fresh, tmp_path):
    fresh.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    env = _runtime.configure()
    assert env["NUMBA_CACHE_DIR"] == str(tmp_path / "xdg" / "cryodesk" / __version__ / "numba")
    assert os.environ["NUMBA_CACHE_DIR"] == env["NUMBA_CACHE_DIR"]
    assert _runtime.configure() == env  # idempotent


def test_a_cache_dir_set_by_the_user_is_kept(fresh, tmp_path):
    fresh.setenv("NUMBA_CACHE_DIR", str(tmp_path / "mine"))
    assert _runtime.configure()["NUMBA_CACHE_DIR"] == str(tmp_path / "mine")


def test_unwritable_home_cache_falls_back_to_temp(fresh, tmp_path):
    blocked = tmp_path / "file-not-dir"
    blocked.write_text("x")
    fresh.setenv("XDG_CACHE_HOME", str(blocked))
    (tmp_path / "tmp").mkdir()
    fresh.setenv("TMPDIR", str(tmp_path / "tmp"))
    import tempfile

    fresh.setattr(tempfile, "tempdir", None)
    path = _runtime.numba_cache_dir()
    assert str(path).startswith(str(tmp_path / "tmp")) and path.is_dir()


def test_frozen_build_id_names_its_own_cache(fresh, tmp_path):
    (tmp_path / _runtime.BUILD_ID_FILE).write_text("abc123def456\n")
    fresh.setattr("sys._MEIPASS", str(tmp_path), raising=False)
    fresh.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert _runtime.numba_cache_dir() == tmp_path / "xdg" / "cryodesk" / __version__ / "numba" / "abc123def456"


@pytest.mark.parametrize("preset,mark,want,child", [(None, None, "1", "-"), ("3", None, "3", "3"),
                                                     ("1", None, "1", "1"), ("1", "1", "1", "-"), ("3", "1", "3", "3")])
def test_openblas_runs_one_thread_unless_the_user_says_otherwise(tmp_path, preset, mark, want, child):
    """Set before numpy loads, in a fresh process as the CLI starts (numpy's OpenBLAS reads it at load), and
    marked as ours: a program cryodesk starts that is not cryodesk (foreign_env: an external job's command,
    sbatch) gets its BLAS's own default, a value the user set stays; ours passed on to a cryodesk process
    (marked) is ours again."""
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_NUM_THREADS", "CRYODESK_OPENBLAS_DEFAULT")}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    if preset is not None:
        env["OPENBLAS_NUM_THREADS"] = preset
    if mark is not None:
        env["CRYODESK_OPENBLAS_DEFAULT"] = mark
    code = ("import os, sys, subprocess; import cryodesk.cli.main as m; assert 'numpy' not in sys.modules; "
            "from cryodesk._runtime import configure, foreign_env; got = configure()['OPENBLAS_NUM_THREADS']; "
            "import numpy; tasks = len(os.listdir('/proc/self/task')); "
            "show = [sys.executable, '-c', 'import os; print(os.environ.get(\"OPENBLAS_NUM_THREADS\", \"-\"))']; "
            "sub = subprocess.run(show, env=foreign_env(), capture_output=True, text=True).stdout.strip(); "
            "print(got, os.environ['OPENBLAS_NUM_THREADS'], sub, tasks)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    got, now, sub, tasks = out.split()
    assert (got, now, sub) == (want, want, child)
    if want == "1":
        assert tasks == "1"  # numpy's OpenBLAS started no threads of its own


def test_an_external_jobs_command_does_not_get_our_openblas_setting(monkeypatch):
    from cryodesk._runtime import foreign_env

    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setenv("CRYODESK_OPENBLAS_DEFAULT", "1")
    assert "OPENBLAS_NUM_THREADS" not in foreign_env() and "CRYODESK_OPENBLAS_DEFAULT" not in foreign_env()
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")  # the user's own, beside a stale mark
    assert foreign_env()["OPENBLAS_NUM_THREADS"] == "4"
